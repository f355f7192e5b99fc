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


@dataclass(frozen=True)
class ResizePlan:
    """How a picture of a given size becomes the target: scale the whole picture to
    ``scaled`` (width, height), then cut ``crop`` (left, top, width, height) out of it, or centre
    it on a black canvas ``pad`` (width, height, left, top)."""

    scaled: tuple[int, int]
    crop: tuple[int, int, int, int] | None = None
    pad: tuple[int, int, int, int] | None = None


def plan_resize(width: int, height: int, spec: SizeSpec | None) -> ResizePlan:
    """The :class:`ResizePlan` of ``spec`` for a ``width`` x ``height`` picture.

    * ``shorter``: the shorter side becomes S, the other keeps the aspect ratio (rounded).
    * ``fit``: scaled to fit inside W x H, aspect kept, centred on black (letterbox).
    * ``crop``: scaled to cover W x H, aspect kept, centre crop.
    * ``stretch``: scaled to exactly W x H.
    """
    if spec is None:
        return ResizePlan((width, height))
    if spec.mode in ("shorter", "stretch"):
        return ResizePlan(output_size(width, height, spec))
    box_width, box_height = int(spec.width), int(spec.height)
    if spec.mode == "fit":
        scale = min(box_width / width, box_height / height)
        new_width = min(box_width, max(1, round(width * scale)))
        new_height = min(box_height, max(1, round(height * scale)))
        pad = (box_width, box_height, (box_width - new_width) // 2, (box_height - new_height) // 2)
        return ResizePlan((new_width, new_height), pad=pad)
    if spec.mode == "crop":
        scale = max(box_width / width, box_height / height)
        new_width = max(box_width, round(width * scale))
        new_height = max(box_height, round(height * scale))
        crop = ((new_width - box_width) // 2, (new_height - box_height) // 2, box_width, box_height)
        return ResizePlan((new_width, new_height), crop=crop)
    raise ValueError(f"unknown resize mode {spec.mode!r}")


def finish_resize(scaled: np.ndarray, plan: ResizePlan) -> np.ndarray:
    """Applies the crop or letterbox of ``plan`` to the already scaled picture."""
    if plan.crop is not None:
        left, top, width, height = plan.crop
        return np.ascontiguousarray(scaled[top : top + height, left : left + width])
    if plan.pad is not None:
        width, height, left, top = plan.pad
        canvas = np.zeros((height, width, *scaled.shape[2:]), dtype=scaled.dtype)
        canvas[top : top + scaled.shape[0], left : left + scaled.shape[1]] = scaled
        return canvas
    return scaled


def resize(image: np.ndarray, spec: SizeSpec | None) -> np.ndarray:
    """Resizes an ``uint8 [H, W, 3]`` picture per ``spec`` (see :func:`plan_resize`).

    Channel order does not matter. Scaling is FFmpeg's swscale with the same settings that
    video frames get (:func:`scale_frame`), so images and video frames are resized identically.
    """
    if spec is None:
        return image
    height, width = image.shape[:2]
    plan = plan_resize(width, height, spec)
    if plan.scaled == (width, height):
        return finish_resize(image, plan)
    import av

    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return finish_resize(scale_frame(frame, *plan.scaled, "rgb24"), plan)


_GRAPHS: dict[tuple, object] = {}


def scaler_flags(src_width: int, src_height: int, width: int, height: int) -> str:
    """swscale flags: area averaging when shrinking (no aliasing), bicubic when enlarging, with
    accurate rounding and full-resolution chroma (swscale's defaults smear colour when a
    subsampled video frame is scaled and converted in one step)."""
    shrinking = width * height < src_width * src_height
    kernel = "area" if shrinking else "bicubic"
    return f"{kernel}+accurate_rnd+full_chroma_int+full_chroma_inp"


def scale_frame(frame, width: int, height: int, out_format: str) -> np.ndarray:
    """Scales and converts a PyAV ``VideoFrame`` to ``uint8 [height, width, 3]`` in one swscale
    pass (``out_format``: ``rgb24`` or ``bgr24``). Filter graphs are cached per geometry."""
    from fractions import Fraction

    from av.filter import Graph

    src_format = frame.format.name
    key = (
        frame.width,
        frame.height,
        src_format,
        width,
        height,
        out_format,
        getattr(frame, "colorspace", None),
        getattr(frame, "color_range", None),
    )
    graph = _GRAPHS.get(key)
    if graph is None:
        if len(_GRAPHS) > 32:
            _GRAPHS.clear()
        graph = Graph()
        source = graph.add_buffer(
            width=frame.width, height=frame.height, format=src_format, time_base=Fraction(1, 1000)
        )
        flags = scaler_flags(frame.width, frame.height, width, height)
        scale = graph.add("scale", f"{width}:{height}:flags={flags}")
        convert = graph.add("format", out_format)
        sink = graph.add("buffersink")
        source.link_to(scale)
        scale.link_to(convert)
        convert.link_to(sink)
        graph.configure()
        _GRAPHS[key] = graph
    graph.push(frame)
    return graph.pull().to_ndarray()


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


def read_image_bgr(path: Path | str, max_pixels: int | None = None) -> np.ndarray:
    """Reads an image file as BGR uint8 (EXIF orientation applied, alpha dropped, gray expanded).

    Args:
        path: the image file.
        max_pixels: for files from outside the workspace: the size in the header is checked
            against this before any pixel is decoded (a 74-byte file can claim 100000x100000).

    Raises:
        MediaError: naming the file, when it cannot be read or decoded or is too large.
    """
    import cv2

    if max_pixels:
        from dataprep.probe import check_pixels, image_header_size

        try:
            check_pixels(*image_header_size(Path(path)), max_pixels)
        except MediaError as exc:
            raise MediaError(f"{path}: {exc}") from None
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise MediaError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except cv2.error:
        image = None
    if image is None:
        raise MediaError(
            f"{path}: not a decodable image; re-export it or remove it from the workspace"
        )
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
