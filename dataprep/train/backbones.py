"""Keras Applications networks as the per-frame trunk (``--backbone``), with ``--weights``.

A backbone takes pixels in 0..255 and applies its own preprocessing (MobileNetV3 and EfficientNet
include it in the model), so runs with a backbone read their export without the export's
normalization. ``--weights imagenet`` needs Keras' download of the weights file, or that file
already in Keras' cache; ``--weights PATH`` loads a file saved with ``save_weights`` from the
same network (``include_top=False, pooling="avg"``); ``none`` starts from random weights.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dataprep.errors import UsageError

BACKBONES = ("MobileNetV3Small", "EfficientNetB0")


def keras_cache_dir() -> Path:
    """Where Keras looks for downloaded weights files (``$KERAS_HOME/models``, default
    ``~/.keras/models``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def application(name: str, input_shape: tuple[int, ...], weights: str | None):
    """The Keras Applications network without its top, global-average pooled."""
    import keras

    if name not in BACKBONES:
        raise UsageError(f"--backbone {name!r} is not known; use one of {', '.join(BACKBONES)}")
    kwargs = {"input_shape": tuple(input_shape), "include_top": False, "pooling": "avg"}
    return getattr(keras.applications, name)(weights=weights, **kwargs)


def build_backbone(name: str, input_shape: tuple[int, ...], weights: str = "imagenet"):
    """The backbone as a trunk model named ``backbone_trunk``: frame ``[H, W, C]`` (0..255) to a
    feature vector.

    Raises:
        UsageError: for a frame that is not RGB, weights that cannot be downloaded (naming where
            Keras looks and how to pass a file instead) or a weights file that does not fit.
    """
    import keras

    if input_shape[-1] != 3:
        raise UsageError(
            f"--backbone {name} needs RGB frames (3 channels), the export's have "
            f"{input_shape[-1]}; export RGB frames or use --backbone none"
        )
    weights = weights or "none"
    if weights == "imagenet":
        network = _imagenet(name, input_shape)
    else:
        network = application(name, input_shape, None)
        if weights != "none":
            _load_file(network, name, Path(weights).expanduser())
    inputs = keras.Input(input_shape, name="frame")
    return keras.Model(inputs, network(inputs), name="backbone_trunk")


def _imagenet(name: str, input_shape):
    try:
        return application(name, input_shape, "imagenet")
    except UsageError:
        raise
    except Exception as exc:  # Keras raises a bare Exception for a failed download
        url = re.search(r"https?://\S+?\.h5", str(exc))
        file = url.group(0).rsplit("/", 1)[-1] if url else f"the {name} no-top weights file"
        raise UsageError(
            f"--weights imagenet: cannot download {file} ({str(exc)[:120]}); Keras looks for it "
            f"in {keras_cache_dir()} (KERAS_HOME): copy it there, or pass --weights PATH with a "
            f"weights file of {name} (include_top=False, pooling='avg'), or --weights none"
        ) from None


def _load_file(network, name: str, path: Path) -> None:
    if not path.is_file():
        raise UsageError(
            f"--weights {path}: no such file; pass imagenet, none, or a weights file saved "
            f"with save_weights from {name} (include_top=False, pooling='avg')"
        )
    try:
        network.load_weights(path)
    except (ValueError, OSError, KeyError) as exc:
        raise UsageError(
            f"--weights {path}: not weights of {name} at this input size ({str(exc)[:160]}); "
            f"save them from the same network with include_top=False, pooling='avg'"
        ) from None
