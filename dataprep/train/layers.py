"""The building blocks every reference model shares: custom Keras layers and small layer stacks.

The custom layers are defined once, on first use (:func:`custom_layers`), so that importing this
module stays cheap and Keras picks its backend when a model is first built. They are registered
for ``keras.saving`` under the package ``dataprep`` (``dataprep>SpatialSoftArgmax``...), which is
what saved ``.keras`` files name: moving a layer between modules does not change it. Only
``keras.layers``, ``keras.ops`` and ``keras.random`` are used, so every layer runs on the
TensorFlow, JAX and PyTorch backends.

- Frames: :class:`PaddedFrameMask` (which frames of a clip are padding), :class:`SpatialSoftArgmax`
  (where each feature map is), :class:`FrameDifference` (each frame next to its change).
- Vectors: :class:`TemporalDeltas` (features next to their change over time),
  :class:`L2Normalize` (embeddings of unit length).
- :class:`ClipAugment`: training-only, clip-consistent colour and shift augmentation.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def custom_layers() -> dict[str, Any]:
    """Every custom layer by class name (what ``keras.models.load_model`` needs)."""
    classes = [*_frame_layers(), *_vector_layers(), _clip_augment()]
    return {cls.__name__: cls for cls in classes}


def conv_bn(x, filters: int, name: str):
    """Conv 3x3 (``same``, no bias), batch norm, ReLU; layers named ``{name}_conv/_bn/_relu``."""
    from keras import layers

    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def embedding_head(x, embedding_dim: int):
    """Dense ``embedding_dim`` then unit length (float32): the head of every embedding model."""
    from keras import layers

    x = layers.Dense(embedding_dim, dtype="float32", name="embedding_fc")(x)
    return custom_layers()["L2Normalize"](dtype="float32", name="embedding")(x)


def _frame_layers() -> list[type]:
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="dataprep")
    class PaddedFrameMask(keras.layers.Layer):
        """Returns a ``[B, T]`` boolean mask: True for real frames, False for padding.

        The loaders (:func:`dataprep.data.load`, :func:`dataprep.data.iter_numpy`) set every
        frame at a position ``>= length`` (the real frame count stored with each clip) to
        exactly zero, after augmentation and normalization. So a frame is padding when all of
        its values are zero. A real frame after normalization is never exactly all-zero: that
        would need every pixel of every channel to equal the export's mean exactly. (Without
        normalization, or without stats, an all-black real frame is all-zero too and is
        masked; such a frame carries no motion. The trainers always normalize.)

        The mask goes to the LSTM, which skips masked steps: a clip padded with zeros gives
        the prediction of the same clip cut to its real length.
        """

        def call(self, clips):
            return ops.any(ops.not_equal(clips, 0.0), axis=(2, 3, 4))

        def compute_output_shape(self, input_shape):
            return tuple(input_shape[:2])

    @keras.saving.register_keras_serializable(package="dataprep")
    class SpatialSoftArgmax(keras.layers.Layer):
        """Feature map ``[B, H, W, C]`` to ``[B, 2C]``: each channel's expected (x, y) position.

        A softmax over the positions of each channel, then the mean of the pixel coordinates
        (in [-1, 1]) under it: a differentiable "where is this feature" (spatial soft-argmax, as
        in Levine et al. 2016). It keeps exactly what global average pooling throws away.
        """

        def call(self, maps):
            height, width, channels = maps.shape[1], maps.shape[2], maps.shape[3]
            flat = ops.reshape(ops.transpose(maps, (0, 3, 1, 2)), (-1, channels, height * width))
            weights = ops.softmax(ops.cast(flat, "float32"), axis=-1)
            ys, xs = ops.meshgrid(
                ops.linspace(-1.0, 1.0, height), ops.linspace(-1.0, 1.0, width), indexing="ij"
            )
            expected_x = ops.sum(weights * ops.reshape(xs, (1, 1, -1)), axis=-1)
            expected_y = ops.sum(weights * ops.reshape(ys, (1, 1, -1)), axis=-1)
            return ops.cast(ops.concatenate([expected_x, expected_y], axis=-1), self.compute_dtype)

        def compute_output_shape(self, input_shape):
            return (input_shape[0], 2 * input_shape[3])

    @keras.saving.register_keras_serializable(package="dataprep")
    class FrameDifference(keras.layers.Layer):
        """Clips ``[B, T, H, W, C]`` to ``[B, T, H, W, 2C]``: every frame next to its difference
        from the previous frame (zero for the first frame)."""

        def call(self, clips):
            previous = ops.concatenate([clips[:, :1], clips[:, :-1]], axis=1)
            return ops.concatenate([clips, clips - previous], axis=-1)

        def compute_output_shape(self, input_shape):
            return (*input_shape[:-1], 2 * input_shape[-1])

    return [PaddedFrameMask, SpatialSoftArgmax, FrameDifference]


def _vector_layers() -> list[type]:
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="dataprep")
    class TemporalDeltas(keras.layers.Layer):
        """Per-frame features ``[B, T, F]`` to ``[B, T, 2F]``: each frame's features and their
        change since the previous frame (zero for the first), like the delta features of speech
        recognition. Motion is the change of the encoder's positions from frame to frame."""

        def call(self, features):
            previous = ops.concatenate([features[:, :1], features[:, :-1]], axis=1)
            return ops.concatenate([features, features - previous], axis=-1)

        def compute_output_shape(self, input_shape):
            return (*input_shape[:2], 2 * input_shape[2])

    @keras.saving.register_keras_serializable(package="dataprep")
    class L2Normalize(keras.layers.Layer):
        """Scales each vector to unit length (float32): embeddings compared by distance."""

        def call(self, x):
            x = ops.cast(x, "float32")
            return x / ops.sqrt(ops.maximum(ops.sum(x * x, axis=-1, keepdims=True), 1e-12))

        def compute_output_shape(self, input_shape):
            return input_shape

    return [TemporalDeltas, L2Normalize]


def _clip_augment() -> type:
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="dataprep")
    class ClipAugment(keras.layers.Layer):
        """Training-only, clip-consistent augmentation of normalized clips ``[B, T, H, W, C]``.

        ``colour``: per clip, the channels in a random order, each scaled by a gain in
        ``[1 - colour, 1 + colour]`` and moved by an offset in ``[-colour, colour]`` (in units
        of the export's standard deviation); every frame of a clip gets the same draw.
        ``shift``: per batch, every frame rolled (wrapping around) by the same random offset of
        up to ``shift`` of the height and width. Neither changes the direction of a motion or
        the shape of a thing, so no label changes. Inactive outside training.
        """

        def __init__(self, colour: float = 0.4, shift: float = 0.5, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.colour = float(colour)
            self.shift = float(shift)
            self.seed = seed
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, clips, training=None):
            if not training:
                return clips
            if self.colour > 0:
                clips = self._recolour(clips)
            if self.shift > 0:
                clips = self._roll(clips)
            return clips

        def _recolour(self, clips):
            channels, batch, c = clips.shape[-1], ops.shape(clips)[0], self.colour
            draw = functools.partial(keras.random.uniform, seed=self.seed_generator)
            order = ops.argsort(draw((batch, channels)), axis=-1)
            gain = ops.cast(draw((batch, 1, channels), 1.0 - c, 1.0 + c), clips.dtype)
            mixing = ops.one_hot(order, channels, dtype=clips.dtype) * gain  # [B, out, in]
            offset = ops.cast(draw((batch, 1, 1, 1, channels), -c, c), clips.dtype)
            return ops.einsum("bthwi,boi->bthwo", clips, mixing) + offset

        def _roll(self, clips):
            shifts = []
            for size in (clips.shape[2], clips.shape[3]):
                most = int(self.shift * size)
                shifts.append(keras.random.randint((), -most, most + 1, seed=self.seed_generator))
            return ops.roll(ops.roll(clips, shifts[0], axis=2), shifts[1], axis=3)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {
                **super().get_config(),
                "colour": self.colour,
                "shift": self.shift,
                "seed": self.seed,
            }

    return ClipAugment
