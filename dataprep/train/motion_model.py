"""The reference ``cnn-lstm``: a clip classifier that learns motion from small data.

Chosen on the motion benchmark (``benchmarks/bench_motion.py``, six generated families at 100,
200 and 400 training clips; ``docs/training.md`` has the table). What the earlier model did, and
what was measured to go wrong with it:

- Its LSTM read each frame's 64 global-max features ("what") and their changes next to the
  feature positions. On 100-400 clips it memorized the training clips by their appearance
  (colour, size, texture): train accuracy 1.0 with validation near chance, even on plain shapes
  over a flat ground, and more epochs did not help. Dropping the "what" features cured the
  direction families but cannot solve classes that depend on what moves (shape x direction).
- So appearance stays, and memorizing it is made useless instead: **clip-consistent in-model
  augmentation** (:class:`ClipAugment`, training only): per clip a random permutation of the
  colour channels with a gain and an offset per channel, and per batch a wrap-around shift of
  every frame by the same random offset. A clip's colour and place change every epoch; its
  motion and its shapes do not, and no label changes (no flips, no time reversal).
- **Frame differences** (:class:`FrameDifference`): each frame goes to the trunk with its
  difference from the previous frame, so a moving edge is visible in a single input; the
  trunk's filters see motion locally instead of the LSTM inferring it from positions alone.
- **A cheaper trunk**: one convolution at full resolution instead of two (the second one was
  58% of the trunk's multiply-adds at 64x64), then Conv 32 at H/2, Conv 64, Conv 64 at H/4.
  The head keeps the spatial soft-argmax (where, 128) and the global maxima (what, 64).

Everything is plain ``keras.layers``/``keras.ops``/``keras.random``: it builds and trains on the
TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

TRUNK_NAME = "motion_trunk"


def describe_augmentation(model) -> str | None:
    """One line saying what in-model augmentation a built model applies (None: none)."""
    for layer in getattr(model, "layers", []):
        if layer.__class__.__name__ == "ClipAugment":
            parts = []
            if layer.colour:
                parts.append(f"colour (channel order, gain/offset ±{layer.colour:g} per clip)")
            if layer.shift:
                parts.append(f"wrap-around shift (up to {layer.shift:g} of the frame per batch)")
            return "in-model, clip-consistent, training only: " + ", ".join(parts)
    return None


def motion_trunk(frame_shape, name: str = TRUNK_NAME):
    """Frame ``[H, W, C]`` to ``[192]``: where (soft-argmax x, y of 64 maps) and what (their
    maxima). Conv 32 (full size), MaxPool, Conv 32, MaxPool, Conv 64, Conv 64 at H/4 (``same``
    padding, batch norm, ReLU)."""
    import keras
    from keras import layers

    from dataprep.train.layers import conv_bn, custom_layers

    inputs = keras.Input(frame_shape, name="frame")
    x = conv_bn(inputs, 32, "m1")
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = conv_bn(x, 32, "m2")
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = conv_bn(x, 64, "m3a")
    x = conv_bn(x, 64, "m3b")
    where = custom_layers()["SpatialSoftArgmax"](name="keypoints")(x)
    what = layers.GlobalMaxPooling2D(name="max_features")(x)
    return keras.Model(inputs, layers.Concatenate(name="features")([where, what]), name=name)


def _motion_encoder(input_shape, *, dropout, lstm_units, augment, difference, seed):
    """The clip encoder shared by ``cnn-lstm`` and ``siamese-lstm``: ``(inputs, [B, units])``
    (augmentation, frame differences, the motion trunk per frame, deltas, Dense 128, LSTM)."""
    import keras
    from keras import layers

    from dataprep.train.layers import custom_layers

    custom = custom_layers()
    inputs = keras.Input(tuple(input_shape), name="clip")
    mask = custom["PaddedFrameMask"](name="frame_mask")(inputs)
    x = inputs
    if augment:
        x = custom["ClipAugment"](seed=seed, name="clip_augment")(x)
    channels = input_shape[-1]
    if difference:
        x = custom["FrameDifference"](name="frame_difference")(x)
        channels *= 2
    trunk = motion_trunk((*input_shape[1:-1], channels))
    x = layers.TimeDistributed(trunk, name="frame_encoder")(x)
    x = custom["TemporalDeltas"](name="deltas")(x)
    x = layers.TimeDistributed(layers.Dense(128, activation="relu"), name="frame_fc")(x)
    x = layers.Dropout(dropout, name="drop_frames")(x)
    x = layers.LSTM(lstm_units, name="lstm")(x, mask=mask)
    return inputs, layers.Dropout(dropout, name="drop_lstm")(x)


def build_cnn_lstm(
    input_shape,
    num_classes: int,
    *,
    dropout: float = 0.1,
    lstm_units: int = 64,
    augment: bool = True,
    difference: bool = True,
    seed: int | None = None,
):
    """The reference ``cnn-lstm`` (see the module docstring).

    Args:
        input_shape: ``(T, H, W, C)``.
        num_classes: size of the softmax.
        dropout: dropout before and after the LSTM.
        lstm_units: LSTM width.
        augment: the in-model clip-consistent augmentation (:class:`ClipAugment`).
        difference: feed each frame with its difference from the previous one.
        seed: seed of the augmentation's random draws.
    """
    import keras
    from keras import layers

    inputs, x = _motion_encoder(
        input_shape,
        dropout=dropout,
        lstm_units=lstm_units,
        augment=augment,
        difference=difference,
        seed=seed,
    )
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name="cnn_lstm")


def build_siamese_lstm(
    input_shape,
    embedding_dim: int = 64,
    *,
    dropout: float = 0.1,
    lstm_units: int = 64,
    augment: bool = True,
    difference: bool = True,
    seed: int | None = None,
):
    """``siamese-lstm``: the ``cnn-lstm`` encoder (the same layers up to the LSTM) to an
    L2-normalized embedding of ``embedding_dim`` (Dense, unit length). Arguments as
    :func:`build_cnn_lstm`."""
    import keras

    from dataprep.train.layers import embedding_head

    inputs, x = _motion_encoder(
        input_shape,
        dropout=dropout,
        lstm_units=lstm_units,
        augment=augment,
        difference=difference,
        seed=seed,
    )
    return keras.Model(inputs, embedding_head(x, embedding_dim), name="siamese_lstm")
