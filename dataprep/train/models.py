"""The reference models: ``cnn``, ``cnn-bn`` and ``cnn-lstm``, in plain Keras 3.

Only ``keras.layers`` and ``keras.ops`` are used, so the same models build and train on the
TensorFlow, JAX and PyTorch backends (``KERAS_BACKEND``). Keras is imported inside the functions:
importing this module is cheap, and the backend is chosen by whoever imports Keras first.

- ``cnn``: the tutorial baseline, exactly Conv2D 32 (3x3, relu), Conv2D 32, MaxPool 2, Conv2D 32,
  MaxPool 2, Conv2D 64, Conv2D 64, MaxPool 2, Flatten, Dense 64 relu, Dense n softmax, all with
  ``valid`` padding: 79,626 parameters at 32x32x3 and 10 classes.
- ``cnn-bn``: the same family made to generalize: ``same`` padding, batch norm after each
  convolution, dropout, mild in-model augmentation (shift, rotation, zoom; no flips, which would
  change digits and gestures), L2 weight decay (AdamW) and a cosine learning-rate schedule (set by
  :func:`compile_model`).
- ``cnn-lstm``: the ``cnn-bn`` trunk applied to every frame (``TimeDistributed``), then an LSTM over
  time and a softmax over clip classes. Global average pooling would throw position away, and
  motion is a change of position, so the per-frame head keeps it explicitly: a spatial
  soft-argmax gives each feature map's expected (x, y), next to its maximum (what). The LSTM
  reads each frame's features and their change since the previous frame (``TemporalDeltas``).
  Padded frames (all-zero: the loaders zero every frame past a clip's real ``length``) are
  masked (``PaddedFrameMask``), and the mask goes to the LSTM.
"""

from __future__ import annotations

from typing import Any

from dataprep.train.layers import conv_bn, custom_layers, embedding_head

MODEL_NAMES = ("cnn", "cnn-bn", "cnn-lstm", "siamese", "siamese-lstm")
CLIP_MODELS = ("cnn-lstm", "siamese-lstm")
EMBEDDING_MODELS = ("siamese", "siamese-lstm")
# The per-frame feature extractor of every model but the reference cnn (--init-from copies it).
TRUNK_NAMES = ("cnn_bn_trunk", "backbone_trunk", "motion_trunk")


def custom_objects() -> dict[str, Any]:
    """The custom objects needed by ``keras.models.load_model`` for our saved models."""
    return dict(custom_layers())


def is_clip_model(name: str) -> bool:
    """True for models that take clips ``[B, T, H, W, C]`` instead of images."""
    return name in CLIP_MODELS


def is_embedding_model(name: str) -> bool:
    """True for models that output an L2-normalized embedding instead of class probabilities."""
    return name in EMBEDDING_MODELS


def build_model(
    name: str,
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    augment_in_model: bool = True,
    dropout: float | None = None,
    lstm_units: int = 64,
    embedding_dim: int = 64,
    backbone: str = "none",
    weights: str = "none",
):
    """Builds one of the reference models (not compiled).

    Args:
        name: ``cnn``, ``cnn-bn``, ``cnn-lstm``, ``siamese`` or ``siamese-lstm``.
        input_shape: ``(H, W, C)`` for frame models, ``(T, H, W, C)`` for clip models.
        num_classes: size of the softmax (classifiers; ignored by embedding models).
        augment_in_model: frame models but ``cnn``: random shift/rotation/zoom layers (active
            in training).
        dropout: dropout rate (default 0.3 for frame models, 0.1 for clip models, whose
            per-frame positions are what they need and too precious to drop often).
        lstm_units: LSTM width of the clip models.
        embedding_dim: size of the L2-normalized embedding of ``siamese`` and ``siamese-lstm``.
        backbone: ``none`` (the cnn-bn trunk; the motion trunk for the clip models) or a
            Keras Applications network
            (``MobileNetV3Small``, ``EfficientNetB0``) as the per-frame trunk; it takes pixels
            in 0..255 and applies its own preprocessing.
        weights: the backbone's weights: ``imagenet``, ``none`` or a weights file.

    Raises:
        ValueError: for an unknown name or an input shape of the wrong rank.
        UsageError: when backbone weights cannot be had.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; use one of {', '.join(MODEL_NAMES)}")
    want = 4 if is_clip_model(name) else 3
    if len(input_shape) != want:
        raise ValueError(f"model {name} needs an input shape of rank {want}, got {input_shape}")
    if name == "cnn":
        return _reference_cnn(tuple(input_shape), num_classes)
    if name == "cnn-lstm" and (not backbone or backbone == "none"):
        from dataprep.train.motion_model import build_cnn_lstm

        return build_cnn_lstm(
            tuple(input_shape),
            num_classes,
            dropout=0.1 if dropout is None else dropout,
            lstm_units=lstm_units,
            augment=augment_in_model,
        )
    if name == "siamese-lstm" and (not backbone or backbone == "none"):
        from dataprep.train.motion_model import build_siamese_lstm

        return build_siamese_lstm(
            tuple(input_shape),
            embedding_dim,
            dropout=0.1 if dropout is None else dropout,
            lstm_units=lstm_units,
            augment=augment_in_model,
        )
    frame_shape = tuple(input_shape[1:]) if is_clip_model(name) else tuple(input_shape)
    if dropout is None:
        dropout = 0.1 if is_clip_model(name) else 0.3
    if backbone and backbone != "none":
        from dataprep.train.backbones import build_backbone

        trunk = build_backbone(backbone, frame_shape, weights)
    else:
        head = "keypoints" if is_clip_model(name) else "flatten"
        trunk = bn_trunk(frame_shape, dropout, head=head)
    if is_clip_model(name):
        out = num_classes if name == "cnn-lstm" else None
        return _cnn_lstm(tuple(input_shape), trunk, dropout, lstm_units, out, embedding_dim)
    if name == "cnn-bn":
        return _cnn_bn(frame_shape, trunk, num_classes, augment_in_model, dropout)
    return _siamese(frame_shape, trunk, embedding_dim, augment_in_model, dropout)


def _reference_cnn(input_shape, num_classes):
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(input_shape, name="image"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(num_classes, activation="softmax", dtype="float32", name="probs"),
        ],
        name="cnn",
    )


def bn_trunk(input_shape, dropout: float = 0.3, name: str = "cnn_bn_trunk", head: str = "flatten"):
    """The ``cnn-bn`` feature extractor: a frame ``[H, W, C]`` to a vector that keeps position.

    Conv 32, Conv 32, MaxPool, Conv 32, MaxPool, Conv 64, Conv 64 (``same`` padding, batch norm,
    ReLU), then one of two heads:

    - ``flatten`` (``cnn-bn``): MaxPool, spatial dropout, ``Flatten`` over the
      ``H/8 x W/8 x 64`` map: every feature at every place.
    - ``keypoints`` (``cnn-lstm``): the expected (x, y) position of each of the 64 feature maps
      at ``H/4 x W/4`` (spatial soft-argmax: *where*), next to each map's global maximum
      (*what*). 192 numbers per frame, cheap to feed an LSTM and exactly what motion needs.
    """
    import keras
    from keras import layers

    inputs = keras.Input(input_shape, name="frame")
    x = conv_bn(inputs, 32, "b1a")
    x = conv_bn(x, 32, "b1b")
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = conv_bn(x, 32, "b2a")
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = conv_bn(x, 64, "b3a")
    x = conv_bn(x, 64, "b3b")
    if head == "keypoints":
        where = custom_layers()["SpatialSoftArgmax"](name="keypoints")(x)
        what = layers.GlobalMaxPooling2D(name="max_features")(x)
        x = layers.Concatenate(name="features")([where, what])
    elif head == "flatten":
        x = layers.MaxPooling2D(2, name="pool3")(x)
        x = layers.SpatialDropout2D(dropout / 2, name="drop_map")(x)
        x = layers.Flatten(name="flatten")(x)
    else:
        raise ValueError(f"unknown trunk head {head!r}; use flatten or keypoints")
    return keras.Model(inputs, x, name=name)


def _augmented(inputs, augment_in_model):
    from keras import layers

    x = inputs
    if augment_in_model:
        x = layers.RandomTranslation(0.08, 0.08, fill_mode="nearest", name="aug_shift")(x)
        x = layers.RandomRotation(0.03, fill_mode="nearest", name="aug_rotate")(x)
        x = layers.RandomZoom(0.08, fill_mode="nearest", name="aug_zoom")(x)
    return x


def _siamese(input_shape, trunk, embedding_dim, augment_in_model, dropout):
    """Frames to an L2-normalized embedding: the cnn-bn trunk (or a backbone), dropout, a linear
    projection to ``embedding_dim``, unit length."""
    import keras
    from keras import layers

    inputs = keras.Input(input_shape, name="image")
    x = trunk(_augmented(inputs, augment_in_model))
    x = layers.Dropout(dropout, name="drop_features")(x)
    return keras.Model(inputs, embedding_head(x, embedding_dim), name="siamese")


def _cnn_bn(input_shape, trunk, num_classes, augment_in_model, dropout):
    import keras
    from keras import layers

    inputs = keras.Input(input_shape, name="image")
    x = trunk(_augmented(inputs, augment_in_model))
    x = layers.Dropout(dropout, name="drop_features")(x)
    x = layers.Dense(64, use_bias=False, name="fc")(x)
    x = layers.BatchNormalization(name="fc_bn")(x)
    x = layers.Activation("relu", name="fc_relu")(x)
    x = layers.Dropout(dropout, name="drop_fc")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name="cnn_bn")


def _cnn_lstm(input_shape, trunk, dropout, lstm_units, num_classes, embedding_dim):
    """The clip models on a ``--backbone`` trunk per frame: ``num_classes`` set gives ``cnn-lstm``
    (softmax), None gives ``siamese-lstm`` (the same encoder to an L2-normalized embedding).
    Without a backbone both are built by :mod:`dataprep.train.motion_model`."""
    import keras
    from keras import layers

    mask_layer = custom_layers()["PaddedFrameMask"]
    inputs = keras.Input(input_shape, name="clip")
    mask = mask_layer(name="frame_mask")(inputs)
    x = layers.TimeDistributed(trunk, name="frame_encoder")(inputs)
    x = custom_layers()["TemporalDeltas"](name="deltas")(x)
    x = layers.TimeDistributed(layers.Dense(128, activation="relu"), name="frame_fc")(x)
    x = layers.Dropout(dropout, name="drop_frames")(x)
    x = layers.LSTM(lstm_units, name="lstm")(x, mask=mask)
    x = layers.Dropout(dropout, name="drop_lstm")(x)
    if num_classes is None:
        return keras.Model(inputs, embedding_head(x, embedding_dim), name="siamese_lstm")
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name="cnn_lstm")


def find_trunk(model):
    """The per-frame trunk sub-model of a built model (also inside ``TimeDistributed``), or None
    (the reference ``cnn`` has none)."""
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)  # TimeDistributed wraps the trunk
        if inner.name in TRUNK_NAMES:
            return inner
    return None


def compile_model(
    model,
    name: str,
    *,
    lr: float,
    steps_per_epoch: int,
    epochs: int,
    weight_decay: float = 1e-4,
    jit_compile: bool | str = "auto",
    top_k: int | None = None,
    loss: str = "triplet",
    mining: str = "semi-hard",
    margin: float = 0.2,
) -> None:
    """Compiles ``model`` with the optimizer its recipe uses.

    ``cnn`` uses plain Adam at a constant rate (the tutorial recipe). The others use AdamW
    (decoupled weight decay) with a cosine-decay schedule over the whole run. Embedding models
    (``siamese``, ``siamese-lstm``) learn with a metric loss (``loss``: ``triplet`` with
    ``mining`` ``semi-hard`` or ``hard`` in each batch, ``contrastive``, or ``prototypical``;
    ``margin``), see
    :mod:`dataprep.train.losses`.
    """
    import keras

    if name == "cnn":
        optimizer = keras.optimizers.Adam(learning_rate=lr)
    else:
        schedule = keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=max(1, steps_per_epoch * epochs), alpha=0.05
        )
        optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay)
    if is_embedding_model(name):
        from dataprep.train.losses import metric_loss

        model.compile(
            optimizer=optimizer, loss=metric_loss(loss, mining, margin), jit_compile=jit_compile
        )
        return
    metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    if top_k:
        metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(k=top_k, name=f"top{top_k}"))
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=metrics,
        jit_compile=jit_compile,
    )
