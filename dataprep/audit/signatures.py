"""Per-media signatures: perceptual hashes of frames sampled on a fixed time grid, plus the
frame statistics the quality checks need, from one decoding pass.

* **Time grid.** Frames are taken at ``rate = BASE_RATE / 2**k`` frames per second, the largest
  such rate that gives at most ``MAX_FRAMES`` frames for the media's duration. Two copies of a
  video of similar length therefore share a grid (or grids that differ by a power of two, which
  :func:`dataprep.audit.index.compare` resamples), and trimming a few frames only shifts the
  sequence, which the comparison aligns. Images are one-frame media.
* **Structure** of a frame: the luma resized to 32x32 (area), its 2-D DCT, and the 63 lowest
  frequencies (8x8 without the DC term) as a unit vector, stored as int8. Two frames are compared
  by the cosine of their vectors; re-encoding and resizing barely move it. The same is stored
  for centre crops of ``CROPS`` of each side, so a copy cropped by a few pixels (and resized
  back) is compared with the matching crop of the original. The **perceptual hash** used by the
  index is one bit per coefficient (above or below their median).
* **Statistics** per frame: mean and 99th percentile of the luma, its standard deviation,
  the variance of its Laplacian (sharpness) at up to 128 px, and the mean absolute difference of
  the 32x32 luma from the previous sampled frame (frozen video).
* **Colour**: a 4x4 RGB thumbnail per frame and crop (cell means). The structure ignores
  colour and brightness; the thumbnail tells apart frames of the same layout in other colours.
* Blank (near-constant) frames carry no identity: their hash is not used for matching.

Signatures depend only on the media's bytes (the ``media_id``) and :data:`SIGNATURE_VERSION`,
so they are cached in ``.dataprep/audit/signatures.parquet`` and computed once per media.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dataprep.errors import MediaError

SIGNATURE_VERSION = 1  # bump when the same media would give other hashes or statistics
BASE_RATE = 10.0  # frames per second of the finest time grid
MAX_FRAMES = 64  # most sampled frames per media
STATS_SIDE = 128  # frames are decoded with the shorter side at most this (sharpness, stats)
HASH_SIDE = 32
THUMB_SIDE = 4
THUMB_CELLS = THUMB_SIDE * THUMB_SIDE * 3
COEFS = 63
CROPS = (0.0, 0.05, 0.1)  # centre crops (fraction of each side) stored per frame
BLANK_STD = 3.0  # luma standard deviation below this: a near-constant (blank) frame
CACHE_FILE = "signatures.parquet"  # under .dataprep/audit/


@dataclass
class Signature:
    """One media's sampled frames: hashes and statistics, index-aligned."""

    media_id: str
    rate: float  # frames per second of the grid (0 for images)
    frame_index: np.ndarray  # int64 [n]: decoder frame index of each sample
    coefs: np.ndarray  # int8 [n, len(CROPS), 63]: unit DCT vectors * 127 per crop
    thumbs: np.ndarray  # uint8 [n, len(CROPS), 48]: 4x4 RGB thumbnails per crop
    blank: np.ndarray  # bool [n]
    mean: np.ndarray  # float32 [n]: mean luma 0..255
    p99: np.ndarray  # float32 [n]: 99th percentile of the luma
    std: np.ndarray  # float32 [n]: luma standard deviation
    sharpness: np.ndarray  # float32 [n]: variance of the Laplacian of the luma
    diff: np.ndarray  # float32 [n]: mean abs difference from the previous sample (nan first)
    error: str | None = None  # why the media could not be decoded (then n = 0)

    def __len__(self) -> int:
        return len(self.frame_index)

    @property
    def usable(self) -> np.ndarray:
        """Positions whose structure identifies content (not blank)."""
        return ~self.blank

    @property
    def hashes(self) -> np.ndarray:
        """uint64 [n] perceptual hashes of the uncropped frames (see :func:`hash_bits`)."""
        return hash_bits(self.coefs[:, 0, :]) if len(self) else np.empty(0, np.uint64)


def grid_rate(duration_s: float | None) -> float:
    """The time grid of a media of ``duration_s`` seconds (see the module docstring)."""
    if not duration_s or duration_s <= 0 or not math.isfinite(duration_s):
        return BASE_RATE
    rate = BASE_RATE
    while duration_s * rate > MAX_FRAMES:
        rate /= 2
    return rate


def hash_bits(coefs: np.ndarray) -> np.ndarray:
    """64-bit hashes of ``[n, 63]`` DCT vectors: bit k set when coefficient k is above the
    vector's median (the top bit is always 0)."""
    if not len(coefs):
        return np.empty(0, np.uint64)
    values = coefs.astype(np.float32)
    bits = values > np.median(values, axis=1, keepdims=True)
    padded = np.concatenate([np.zeros((len(bits), 1), bool), bits], axis=1)
    return np.packbits(padded, axis=1).view(">u8").reshape(-1).astype(np.uint64)


def _crop(image: np.ndarray, fraction: float) -> np.ndarray:
    if not fraction:
        return image
    height, width = image.shape[:2]
    dy, dx = int(round(height * fraction)), int(round(width * fraction))
    return image[dy : height - dy or None, dx : width - dx or None]


def structure(gray: np.ndarray) -> np.ndarray:
    """The int8 unit vector of the 63 lowest DCT frequencies of a luma image."""
    import cv2

    small = cv2.resize(gray, (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small.astype(np.float32))[:8, :8].reshape(-1)[1:]
    norm = float(np.linalg.norm(low))
    if norm < 1e-6:
        return np.zeros(COEFS, np.int8)
    return np.round(low / norm * 127).astype(np.int8)


def frame_stats(rgb: np.ndarray, previous: np.ndarray | None) -> tuple[dict, np.ndarray]:
    """Structure, colour and statistics of one RGB frame; returns them and its 32x32 luma
    (for the next frame's difference)."""
    import cv2

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA).astype(
        np.float32
    )
    std = float(gray.std())
    coefs, thumbs = [], []
    for fraction in CROPS:
        coefs.append(structure(_crop(gray, fraction)))
        thumb = cv2.resize(
            _crop(rgb, fraction), (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA
        )
        thumbs.append(thumb.reshape(-1))
    stats = {
        "coefs": coefs,
        "thumbs": thumbs,
        "blank": std < BLANK_STD,
        "mean": float(gray.mean()),
        "p99": float(np.percentile(small, 99)),
        "std": std,
        "sharpness": float(cv2.Laplacian(gray, cv2.CV_32F).var()),
        "diff": float(np.abs(small - previous).mean()) if previous is not None else math.nan,
    }
    return stats, small


def _read_frames():
    """The public frame reader, :func:`dataprep.decode.read_frames` (imported when needed)."""
    from dataprep.decode import read_frames

    return read_frames


def _decode_size(width: int | None, height: int | None) -> str | None:
    if width and height and min(width, height) <= STATS_SIDE:
        return None
    return str(STATS_SIDE)


def compute_signature(
    media_id: str,
    path: str | Path,
    *,
    kind: str,
    duration_s: float | None = None,
    width: int | None = None,
    height: int | None = None,
) -> Signature:
    """Decodes the media's grid frames and returns its :class:`Signature` (``error`` set and
    no frames when the file cannot be decoded)."""
    rate = 0.0 if kind == "image" else grid_rate(duration_s)
    rows: list[tuple[int, dict]] = []
    previous = None
    error = None
    try:
        frames = _read_frames()(
            path,
            sampling="fps",
            fps=rate or BASE_RATE,
            size=_decode_size(width, height),
            resize="shorter",
        )
        for frame in frames:
            stats, previous = frame_stats(frame.image, previous)
            rows.append((frame.frame_index, stats))
            if len(rows) >= MAX_FRAMES * 2:  # a duration that lied: keep the work bounded
                break
    except MediaError as exc:
        error = str(exc)
    except (OSError, ValueError) as exc:
        error = f"{path}: cannot be decoded ({exc})"
    if not rows and error is None:
        error = f"{path}: no frame decoded"
    return _from_rows(media_id, rate, rows, error)


def _from_rows(media_id: str, rate: float, rows: list[tuple[int, dict]], error) -> Signature:
    def column(key, dtype):
        return np.array([r[key] for _, r in rows], dtype)

    return Signature(
        media_id=media_id,
        rate=rate,
        frame_index=np.array([i for i, _ in rows], np.int64),
        coefs=np.array([r["coefs"] for _, r in rows], np.int8).reshape(-1, len(CROPS), COEFS),
        thumbs=np.array([r["thumbs"] for _, r in rows], np.uint8).reshape(
            -1, len(CROPS), THUMB_CELLS
        ),
        blank=np.array([r["blank"] for _, r in rows], bool),
        mean=column("mean", np.float32),
        p99=column("p99", np.float32),
        std=column("std", np.float32),
        sharpness=column("sharpness", np.float32),
        diff=column("diff", np.float32),
        error=error if not rows else None,
    )


# ------------------------------------------------------------------------------ the cache

_ARRAYS = {
    "frame_index": np.int64,
    "coefs": np.int8,
    "thumbs": np.uint8,
    "blank": bool,
    "mean": np.float32,
    "p99": np.float32,
    "std": np.float32,
    "sharpness": np.float32,
    "diff": np.float32,
}


def cache_path(workspace) -> Path:
    return workspace.state_dir / "audit" / CACHE_FILE


def load_cache(workspace) -> dict[str, Signature]:
    """Cached signatures of this :data:`SIGNATURE_VERSION` (an unreadable cache is empty)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = cache_path(workspace)
    if not path.exists():
        return {}
    try:
        with pq.ParquetFile(path) as handle:
            table = handle.read()
    except (pa.ArrowInvalid, OSError):
        return {}
    meta = table.schema.metadata or {}
    if meta.get(b"signature_version") != str(SIGNATURE_VERSION).encode():
        return {}
    columns = table.to_pydict()
    out = {}
    for row, media_id in enumerate(columns["media_id"]):
        arrays = {
            name: np.frombuffer(columns[name][row], dtype).copy() for name, dtype in _ARRAYS.items()
        }
        arrays["coefs"] = arrays["coefs"].reshape(-1, len(CROPS), COEFS)
        arrays["thumbs"] = arrays["thumbs"].reshape(-1, len(CROPS), THUMB_CELLS)
        out[media_id] = Signature(
            media_id=media_id, rate=float(columns["rate"][row]), error=columns["error"][row],
            **arrays,
        )  # fmt: skip
    return out


def save_cache(workspace, signatures: dict[str, Signature]) -> None:
    """Writes the signatures atomically (internal state, not a manifest)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataprep.atomic import atomic_path

    ids = sorted(signatures)
    data = {
        "media_id": ids,
        "rate": [signatures[m].rate for m in ids],
        "error": [signatures[m].error for m in ids],
    }
    for name, dtype in _ARRAYS.items():
        data[name] = [
            np.ascontiguousarray(getattr(signatures[m], name), dtype).tobytes() for m in ids
        ]
    schema = pa.schema(
        [("media_id", pa.string()), ("rate", pa.float64()), ("error", pa.string())]
        + [(name, pa.binary()) for name in _ARRAYS],
        metadata={b"signature_version": str(SIGNATURE_VERSION).encode()},
    )
    table = pa.Table.from_pydict(data, schema=schema)
    with atomic_path(cache_path(workspace)) as tmp:
        pq.write_table(table, tmp, compression="zstd")
