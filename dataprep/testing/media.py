"""Synthetic media whose frames carry their own index, plus every kind of bad file.

Each generated frame is a 4x4 grid of cells: cell 0 (top left) is a red orientation marker, cells
1..15 hold the bits of the frame index (white = 1, black = 0). :func:`read_frame_index` reads the
index back from a decoded frame, so tests check *which* frame was extracted, not only how many.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

GRID = 4
INDEX_BITS = GRID * GRID - 1
MARKER = (255, 0, 0)


def index_frame(index: int, width: int = 64, height: int = 48) -> np.ndarray:
    """An RGB uint8 frame of ``height`` x ``width`` that encodes ``index`` (0..32767)."""
    if not 0 <= index < 2**INDEX_BITS:
        raise ValueError(f"index {index} out of range 0..{2**INDEX_BITS - 1}")
    frame = np.zeros((height, width, 3), np.uint8)
    ys = np.linspace(0, height, GRID + 1).astype(int)
    xs = np.linspace(0, width, GRID + 1).astype(int)
    for cell in range(GRID * GRID):
        row, col = divmod(cell, GRID)
        block = frame[ys[row] : ys[row + 1], xs[col] : xs[col + 1]]
        if cell == 0:
            block[:] = MARKER
        elif (index >> (cell - 1)) & 1:
            block[:] = 255
    return frame


def read_frame_index(frame: np.ndarray) -> int:
    """Reads the index from an RGB frame made by :func:`index_frame` (after lossy coding/resizing).

    Raises:
        ValueError: when the top-left cell is not the red marker (the frame is rotated or not ours).
    """
    height, width = frame.shape[:2]
    ys = np.linspace(0, height, GRID + 1)
    xs = np.linspace(0, width, GRID + 1)
    value = 0
    for cell in range(GRID * GRID):
        row, col = divmod(cell, GRID)
        cy = int((ys[row] + ys[row + 1]) / 2)
        cx = int((xs[col] + xs[col + 1]) / 2)
        r, g, b = (int(v) for v in frame[cy, cx, :3])
        if cell == 0:
            if not (r > 150 and g < 100 and b < 100):
                raise ValueError(f"no orientation marker at the top left (found {r},{g},{b})")
        elif (r + g + b) / 3 > 128:
            value |= 1 << (cell - 1)
    return value


def write_video(
    path: Path,
    n_frames: int = 30,
    *,
    fps: float = 10.0,
    width: int = 64,
    height: int = 48,
    codec: str = "libx264",
    gop: int | None = None,
    timestamps_s: Sequence[float] | None = None,
    rotation: int = 0,
    frames: Sequence[np.ndarray] | None = None,
    crf: int = 18,
) -> Path:
    """Encodes a video whose frame ``i`` shows index ``i`` (or the given RGB ``frames``).

    Args:
        path: output file; the container follows the extension (.mp4, .mkv, .avi, .mov, .webm).
        n_frames: number of frames (ignored when ``frames`` is given).
        fps: nominal frame rate (constant frame rate unless ``timestamps_s`` is given).
        width, height: frame size (even numbers for yuv420p).
        codec: FFmpeg encoder (libx264, mpeg4, libvpx-vp9, mjpeg, ...).
        gop: key-frame interval in frames (default: encoder's).
        timestamps_s: explicit presentation times, for variable frame rate videos.
        rotation: counter-clockwise display rotation stored in the container (0/90/180/270).
        frames: explicit RGB frames to encode.
        crf: quality for libx264 (lower is better).
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if frames is None:
        frames = [index_frame(i, width, height) for i in range(n_frames)]
    else:
        height, width = frames[0].shape[:2]
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        if gop:
            stream.codec_context.gop_size = gop
            if codec == "libx264":
                stream.options = {**stream.options, "keyint_min": str(gop), "sc_threshold": "0"}
        if rotation:
            stream.set_display_rotation(rotation)
        if timestamps_s is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if timestamps_s is not None:
                frame.pts = int(round(timestamps_s[i] * 1000))
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_image(
    path: Path,
    index: int = 0,
    *,
    width: int = 64,
    height: int = 48,
    image: np.ndarray | None = None,
) -> Path:
    """Writes an RGB image (format by extension) showing ``index`` (or the given ``image``)."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = index_frame(index, width, height) if image is None else image
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise ValueError(f"OpenCV cannot write {path}")
    return path


def write_bad_files(folder: Path) -> dict[str, Path]:
    """Writes one file of each kind ingest must reject; returns ``{kind: path}``.

    Kinds: ``empty`` (zero bytes, .mp4), ``truncated`` (a valid mp4 cut in half), ``fake``
    (text with a .mp4 extension), ``fake_image`` (text with a .jpg extension), ``broken_link``
    (a symlink to nothing, .mp4), ``not_media`` (notes.txt; skipped, not an error row).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "empty": folder / "empty.mp4",
        "truncated": folder / "truncated.mp4",
        "fake": folder / "fake.mp4",
        "fake_image": folder / "fake.jpg",
        "broken_link": folder / "broken_link.mp4",
        "not_media": folder / "notes.txt",
    }
    paths["empty"].write_bytes(b"")
    full = write_video(folder / ".full.tmp.mp4", 60, width=64, height=48)
    data = full.read_bytes()
    full.unlink()
    paths["truncated"].write_bytes(data[: len(data) // 2])
    paths["fake"].write_text("this is not a video\n")
    paths["fake_image"].write_text("this is not an image either\n")
    if paths["broken_link"].is_symlink():
        paths["broken_link"].unlink()
    os.symlink(folder / "does-not-exist.mp4", paths["broken_link"])
    paths["not_media"].write_text("some notes\n")
    return paths


def write_textured_video(
    path: Path,
    seconds: float,
    *,
    fps: float = 30.0,
    width: int = 1280,
    height: int = 720,
    gop: int = 250,
    crf: int = 23,
    seed: int = 0,
) -> Path:
    """Encodes camera-like H.264 (for benchmarks): a textured scene panning under a moving object.

    The texture has detail at several scales, so the bitrate and decode cost resemble real
    footage more than flat synthetic frames do. ``gop``: key-frame interval in frames (x264's
    default is 250).
    """
    import av
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    canvas_w, canvas_h = width * 2, height + 200
    scene = np.zeros((canvas_h, canvas_w, 3), np.float32)
    for scale, weight in ((8, 120.0), (32, 60.0), (128, 30.0), (512, 12.0)):
        small = rng.random((max(2, canvas_h * scale // 2048), max(2, canvas_w * scale // 2048), 3))
        scene += weight * cv2.resize(
            small.astype(np.float32), (canvas_w, canvas_h), interpolation=cv2.INTER_CUBIC
        )
    scene = np.clip(scene, 0, 255).astype(np.uint8)
    n_frames = int(round(seconds * fps))
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {
            "crf": str(crf),
            "preset": "veryfast",
            "keyint_min": str(min(gop, 25)),
            "g": str(gop),
        }
        stream.codec_context.gop_size = gop
        for i in range(n_frames):
            x = int((canvas_w - width) * (0.5 + 0.5 * np.sin(i / 200.0)))
            y = int((canvas_h - height) * (0.5 + 0.5 * np.cos(i / 130.0)))
            frame = np.ascontiguousarray(scene[y : y + height, x : x + width])
            cx = int(width * (0.5 + 0.35 * np.sin(i / 23.0)))
            cy = int(height * (0.5 + 0.3 * np.cos(i / 17.0)))
            cv2.circle(frame, (cx, cy), height // 8, (230, 40, 40), -1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_black_png(
    path: Path, width: int, height: int, *, bit_depth: int = 1, rows: bool = True
) -> Path:
    """A real PNG of ``width`` x ``height`` (all black, 1 bit per pixel: tiny once compressed);
    ``rows=False`` writes a header that lies: a few bytes of pixel data for a huge image.

    Hostile input for tests: a 20000x20000 one is an image bomb (1.2 MB on disk, 400 MP)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    if rows:
        row = b"\0" * (1 + (width * bit_depth + 7) // 8)
        block = max(1, min(height, 4_000_000 // len(row)))
        compressor = zlib.compressobj(9)
        parts = [compressor.compress(row * block) for _ in range(height // block)]
        parts += [compressor.compress(row * (height % block)), compressor.flush()]
        pixels = b"".join(parts)
    else:
        pixels = zlib.compress(b"\0" * 8)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data + chunk(b"IEND", b""))
    return path
