"""Resizing, rotating, encoding and decoding images: the one path every frame goes through.

Arrays are ``uint8 [H, W, 3]``. The library's public API speaks RGB; OpenCV's BGR appears only
inside this module's ``*_bgr`` helpers, which the extraction path uses to skip a conversion.
Resizing and encoding are channel-order agnostic, so both orders share the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataprep.config import parse_size
from dataprep.errors import MediaError, UsageError

RESIZE_MODES = ("shorter", "fit", "crop", "stretch")
FORMATS = ("jpg", "png", "webp")


@dataclass(frozen=True)
class SizeSpec:
    """Target size: ``shorter`` side length, or a ``width`` x ``height`` box and a resize mode.

    ``None`` for the whole spec (see :func:`parse_size_spec`) keeps the original size.
    """

    mode: str
    shorter: int | None = None
    width: int | None = None
    height: int | None = None

    def describe(self) -> str:
        if self.mode == "shorter":
            return f"shorter={self.shorter}"
        return f"{self.mode}={self.width}x{self.height}"


def parse_size_spec(size: str | int | None, resize: str | None) -> SizeSpec | None:
    """Turns ``--size``/``--resize`` into a :class:`SizeSpec`.

    ``--size S`` with ``shorter`` scales the shorter side to S (aspect kept); with ``fit``,
    ``crop`` or ``stretch`` it means an S x S box. ``--size WxH`` needs ``fit``, ``crop`` or
    ``stretch``. ``size`` None, ``""`` or ``"original"`` keeps the original size.

    Raises:
        UsageError: naming the bad value and what to use instead.
    """
    resize = resize or "shorter"
    if resize not in RESIZE_MODES:
        raise UsageError(f"--resize {resize!r} is not known; use one of {', '.join(RESIZE_MODES)}")
    if size is None or str(size).strip().lower() in ("", "original"):
        return None
    try:
        first, second = parse_size(size)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if second is None:
        if resize == "shorter":
            return SizeSpec("shorter", shorter=first)
        return SizeSpec(resize, width=first, height=first)
    if resize == "shorter":
        raise UsageError(
            f"--size {size} is a box; add --resize fit (letterbox), crop (center crop) or stretch, "
            "or give one number to scale the shorter side"
        )
    return SizeSpec(resize, width=first, height=second)


def output_size(width: int, height: int, spec: SizeSpec | None) -> tuple[int, int]:
    """The (width, height) an image of ``width`` x ``height`` has after :func:`resize`."""
    if spec is None:
        return width, height
    if spec.mode == "shorter":
        scale = spec.shorter / min(width, height)
        return max(1, round(width * scale)), max(1, round(height * scale))
    return int(spec.width), int(spec.height)


def resize(image: np.ndarray, spec: SizeSpec | None) -> np.ndarray:
    """Resizes per ``spec`` (channel order does not matter).

    * ``shorter``: the shorter side becomes S, the other keeps the aspect ratio (rounded).
    * ``fit``: scaled to fit inside W x H, aspect kept, centred on black (letterbox).
    * ``crop``: scaled to cover W x H, aspect kept, centre crop.
    * ``stretch``: scaled to exactly W x H.

    Shrinking uses area averaging (no aliasing), enlarging bilinear interpolation.
    """
    if spec is None:
        return image
    height, width = image.shape[:2]
    if spec.mode in ("shorter", "stretch"):
        new_width, new_height = output_size(width, height, spec)
        return _scale(image, new_width, new_height)
    box_width, box_height = int(spec.width), int(spec.height)
    if spec.mode == "fit":
        scale = min(box_width / width, box_height / height)
        new_width = min(box_width, max(1, round(width * scale)))
        new_height = min(box_height, max(1, round(height * scale)))
        scaled = _scale(image, new_width, new_height)
        canvas = np.zeros((box_height, box_width, *image.shape[2:]), dtype=image.dtype)
        top = (box_height - new_height) // 2
        left = (box_width - new_width) // 2
        canvas[top : top + new_height, left : left + new_width] = scaled
        return canvas
    if spec.mode == "crop":
        scale = max(box_width / width, box_height / height)
        new_width = max(box_width, round(width * scale))
        new_height = max(box_height, round(height * scale))
        scaled = _scale(image, new_width, new_height)
        top = (new_height - box_height) // 2
        left = (new_width - box_width) // 2
        return np.ascontiguousarray(scaled[top : top + box_height, left : left + box_width])
    raise ValueError(f"unknown resize mode {spec.mode!r}")


def _scale(image: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    old_height, old_width = image.shape[:2]
    if (width, height) == (old_width, old_height):
        return image
    shrinking = width * height < old_width * old_height
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def rotate(image: np.ndarray, rotation_ccw: int) -> np.ndarray:
    """Rotates by ``rotation_ccw`` degrees counter-clockwise (a multiple of 90), as displayed."""
    turns = (int(round(rotation_ccw / 90.0)) % 4) if rotation_ccw else 0
    if not turns:
        return image
    return np.ascontiguousarray(np.rot90(image, k=turns))


def encode_params(fmt: str, quality: int) -> tuple[str, list[int]]:
    """OpenCV's extension and parameters for ``fmt`` at ``quality`` (1..100).

    JPEG and WebP: the encoder's quality. PNG is lossless: ``quality`` sets the zlib effort,
    100 -> level 0 (fastest, biggest) ... 1 -> level 9 (slowest, smallest).
    """
    import cv2

    if fmt == "jpg":
        return ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    if fmt == "webp":
        return ".webp", [cv2.IMWRITE_WEBP_QUALITY, int(quality)]
    if fmt == "png":
        level = min(9, max(0, round((100 - int(quality)) * 9 / 99)))
        return ".png", [cv2.IMWRITE_PNG_COMPRESSION, level]
    raise UsageError(f"--format {fmt!r} is not known; use one of {', '.join(FORMATS)}")


def encode_bgr(image_bgr: np.ndarray, fmt: str, quality: int) -> bytes:
    """Encodes a BGR image to ``fmt`` bytes."""
    import cv2

    extension, params = encode_params(fmt, quality)
    ok, buffer = cv2.imencode(extension, image_bgr, params)
    if not ok:
        raise MediaError(f"OpenCV could not encode a {image_bgr.shape} image as {fmt}")
    return buffer.tobytes()


def encode_rgb(image_rgb: np.ndarray, fmt: str, quality: int) -> bytes:
    """Encodes an RGB image to ``fmt`` bytes."""
    return encode_bgr(rgb_to_bgr(image_rgb), fmt, quality)


def rgb_to_bgr(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[..., ::-1])


bgr_to_rgb = rgb_to_bgr


def read_image_bgr(path: Path | str) -> np.ndarray:
    """Reads an image file as BGR uint8 (EXIF orientation applied, alpha dropped, gray expanded).

    Raises:
        MediaError: when the file cannot be read or decoded.
    """
    import cv2

    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise MediaError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise MediaError(f"{path}: not a decodable image; re-export it or remove it from the workspace")
    return image


def read_image_rgb(path: Path | str) -> np.ndarray:
    """Reads an image file as RGB uint8 (see :func:`read_image_bgr`)."""
    return bgr_to_rgb(read_image_bgr(path))


def decode_rgb(data: bytes) -> np.ndarray:
    """Decodes encoded image bytes (JPEG, PNG, WebP, ...) to RGB uint8."""
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError("bytes are not a decodable image")
    return bgr_to_rgb(image)
