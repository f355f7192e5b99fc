"""``stats``: per-channel mean and standard deviation of the extracted frames, for normalization.

One streaming pass over the frame files in bounded memory: each image contributes a 256-bin
histogram per channel, and the accumulators are exact integers (pixel count, sum and sum of
squares of the 0..255 values), so the result does not depend on order or chunking and does not
lose precision on millions of frames; mean and std are computed from them once, in float64, and
reported on the 0..1 scale in RGB order. Frame files are decoded in parallel worker processes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dataprep import manifests
from dataprep.atomic import atomic_write_text
from dataprep.errors import ManifestError, MediaError, UsageError
from dataprep.hashing import settings_fingerprint
from dataprep.manifest_merge import member_mask
from dataprep.workspace import Workspace

STATS_NAME = "stats.json"
CHUNK_FILES = 256
_LEVELS = np.arange(256, dtype=np.int64)


def stats_path(workspace: Workspace) -> Path:
    return workspace.manifests / STATS_NAME


def image_sums(image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Exact per-channel sum and sum of squares of a uint8 RGB image, and its pixel count."""
    pixels = image_rgb.reshape(-1, image_rgb.shape[-1])
    sums = np.zeros(pixels.shape[1], dtype=np.int64)
    squares = np.zeros(pixels.shape[1], dtype=np.int64)
    for channel in range(pixels.shape[1]):
        histogram = np.bincount(pixels[:, channel], minlength=256).astype(np.int64)
        sums[channel] = histogram @ _LEVELS
        squares[channel] = histogram @ (_LEVELS * _LEVELS)
    return sums, squares, int(pixels.shape[0])


def _chunk_sums(paths: list[str]) -> tuple[list[int], list[int], int, int]:
    """Sums over a chunk of frame files (worker process). Python ints: exact, no overflow."""
    from dataprep.imageops import read_image_rgb

    sums = [0, 0, 0]
    squares = [0, 0, 0]
    pixels = 0
    for path in paths:
        try:
            image = read_image_rgb(path)
        except MediaError as exc:
            raise MediaError(
                f"{exc}; rerun `dataprep frames --overwrite` to re-extract it"
            ) from None
        s, q, n = image_sums(image)
        for c in range(3):
            sums[c] += int(s[c])
            squares[c] += int(q[c])
        pixels += n
    return sums, squares, pixels, len(paths)


def finish(sums: list[int], squares: list[int], pixels: int) -> tuple[list[float], list[float]]:
    """Mean and population std on the 0..1 scale from exact integer sums of 0..255 values."""
    mean, std = [], []
    for s, q in zip(sums, squares, strict=True):
        # variance * n^2 = n*q - s^2, exact in integers; one division at the end.
        variance = (pixels * q - s * s) / (pixels * pixels) / (255.0 * 255.0)
        mean.append(s / pixels / 255.0)
        std.append(float(np.sqrt(max(variance, 0.0))))
    return mean, std


class FrameFiles:
    """The extracted (not augmented) frame files to measure, read from the frames manifest in
    batches each time they are iterated (absolute paths, in manifest order): the driver never
    holds the list. ``fingerprint()`` is the hash of what the last full iteration read."""

    def __init__(self, workspace: Workspace, train_ids: set[str] | None):
        self.workspace = workspace
        self.train_ids = None if train_ids is None else sorted(train_ids)
        self._digest = hashlib.sha256()
        self._settings: set[str] = set()
        self._count: int | None = None

    def _rows(self) -> Iterator[tuple[str, str]]:
        import pyarrow.compute as pc

        path = self.workspace.manifest_path("frames")
        columns = ["media_id", "path", "augmented", "fingerprint"]
        for table in manifests.iter_manifest(path, "frames", columns=columns):
            mask = pc.invert(table.column("augmented"))
            if self.train_ids is not None:
                mask = pc.and_(mask, member_mask(table.column("media_id"), self.train_ids))
            chosen = table.filter(mask)
            yield from zip(
                chosen.column("path").to_pylist(),
                chosen.column("fingerprint").to_pylist(),
                strict=True,
            )

    def count(self) -> int:
        """How many files (one pass over the manifest's columns; remembered)."""
        if self._count is None:
            self._count = sum(1 for _ in self._rows())
        return self._count

    def __iter__(self) -> Iterator[str]:
        self._digest, self._settings = hashlib.sha256(), set()
        root = str(self.workspace.root)
        for rel, settings in self._rows():
            self._digest.update(rel.encode("utf-8") + b"\n")
            self._settings.add(settings)
            yield os.path.join(root, rel)

    def fingerprint(self, used: str) -> str:
        return settings_fingerprint(
            {"split": used, "files": self._digest.hexdigest(), "frames": sorted(self._settings)}
        )


def select_frame_files(
    workspace: Workspace, split: str | None
) -> tuple[FrameFiles, str, str | None]:
    """The extracted (not augmented) frame files to measure.

    Returns:
        (the files, split used: "train" or "all", a note when the split fell back to all).
    """
    if split not in (None, "train", "all"):
        raise UsageError(f"--split {split!r} is not allowed; use train or all")
    no_frames = f"{workspace.manifest_path('frames')}: no frames yet; run `dataprep frames` first"
    every = FrameFiles(workspace, None)
    if not every.count():
        raise ManifestError(no_frames)
    if split == "all":
        return every, "all", None
    if not workspace.manifest_path("splits").exists():
        note = "no splits yet (run `dataprep split`): statistics use all frames"
        return every, "all", note
    splits = manifests.load(workspace, "splits")
    files = FrameFiles(workspace, set(splits.loc[splits["split"] == "train", "media_id"]))
    if not files.count():
        raise ManifestError("no frames of train media; run `dataprep frames` for them first")
    return files, "train", None


def compute_stats(
    workspace: Workspace,
    *,
    split: str | None = None,
    jobs: int | None = None,
    progress=None,
    engine=None,
) -> dict[str, Any]:
    """Computes mean/std over the frames and writes ``manifests/stats.json``.

    The frame files are read from the manifest in batches and handed out in chunks of
    ``CHUNK_FILES`` as the workers take them; the driver keeps sums, not the list.

    Args:
        workspace: the workspace.
        split: ``train`` (default when splits exist) or ``all``. Before splits exist all frames
            are used and the result says so in ``note``.
        jobs: worker processes (default: all cores).
        progress: called with ``(frames done, frames total)``.
        engine: a :class:`dataprep.engine.EngineSpec` (None: local, ``jobs`` processes).

    Returns:
        The stats.json content (``mean``, ``std``, ``scale``, ``count_pixels``, ``count_frames``,
        ``split``, ``fingerprint``) plus ``note`` when the split fell back to all frames
        (the note is not written to the file).
    """
    files, used, note = select_frame_files(workspace, split)
    total = files.count()
    sums, squares, pixels, done = [0, 0, 0], [0, 0, 0], 0, 0
    if progress:
        progress(0, total)
    for chunk_sums, chunk_squares, chunk_pixels, n in _map_chunks(files, jobs, engine):
        for c in range(3):
            sums[c] += chunk_sums[c]
            squares[c] += chunk_squares[c]
        pixels += chunk_pixels
        done += n
        if progress:
            progress(done, total)
    mean, std = finish(sums, squares, pixels)
    result = {
        "mean": mean,
        "std": std,
        "scale": "0-1",
        "count_pixels": pixels,
        "count_frames": done,
        "split": used,
        "fingerprint": files.fingerprint(used),
    }
    with workspace.lock():
        atomic_write_text(stats_path(workspace), json.dumps(result, indent=2) + "\n")
        from dataprep.stages import record_stage

        record_stage(
            workspace,
            "stats",
            settings={"split": used},
            counts={"frames": done, "pixels": pixels},
        )
    return {**result, "note": note} if note else result


def _map_chunks(files: FrameFiles, jobs: int | None, engine=None):
    from dataprep.engine import open_engine, sample

    reads = sample(itertools.islice(iter(files), 4096)) if engine else ()
    chunks = _chunked(iter(files), CHUNK_FILES)
    with open_engine(engine, jobs=jobs, reads=reads) as executor:
        yield from executor.map(_chunk_sums, chunks)


def _chunked(paths: Iterator[str], size: int) -> Iterator[list[str]]:
    while chunk := list(itertools.islice(paths, size)):
        yield chunk


def load_stats(workspace: Workspace) -> dict[str, Any] | None:
    """The content of ``manifests/stats.json``, or None when ``dataprep stats`` has not run.

    Raises:
        ManifestError: when the file exists but is not valid stats JSON.
    """
    path = stats_path(workspace)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path}: not readable JSON ({exc}); rerun `dataprep stats`") from None
    missing = {"mean", "std", "scale", "count_pixels", "count_frames", "split"} - set(data)
    if missing:
        raise ManifestError(
            f"{path}: missing key(s) {', '.join(sorted(missing))}; rerun `dataprep stats`"
        )
    return data
