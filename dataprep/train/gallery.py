"""The gallery of an embedding run: enrolling classes without retraining, and recognizing files.

``enroll`` embeds examples of each class with the run's model, prepared exactly like its training
data (:mod:`dataprep.train.mediaprep`: the same frame sampling and clip settings), and stores one
row per media in ``runs/<run_id>/gallery.parquet`` (schema ``schemas/gallery.yaml``). A media's
embedding is the re-normalized mean of its clips' (or frames') embeddings; a class's prototype is
the re-normalized mean of its media. Enrolling the same media for the same class again changes
nothing.

``recognize`` ranks the gallery's classes by the distance of a file's embedding to their
prototypes and answers "unknown" when the nearest is farther than the run's threshold
(calibrated on the val split at the end of training, ``calibration.json``; ``--threshold``
overrides it): the open set, "friend or stranger".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.errors import UsageError
from dataprep.train.evaluate import find_run, load_run_model, read_run_config, run_export_dir
from dataprep.train.mediaprep import RunInputs, files_outputs, run_inputs

GALLERY_FILE = "gallery.parquet"
UNKNOWN = "unknown"


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def read_gallery(run_dir: Path):
    """The run's gallery (an empty frame when nothing is enrolled yet)."""
    from dataprep import manifests

    return manifests.read_manifest(Path(run_dir) / GALLERY_FILE, "gallery", missing_ok=True)


def prototypes(run_dir: Path) -> tuple[list[str], np.ndarray]:
    """``(class names, unit prototypes [classes, D])`` of the gallery.

    Raises:
        UsageError: when nothing is enrolled.
    """
    frame = read_gallery(run_dir)
    if frame.empty:
        raise UsageError(
            f"run {Path(run_dir).name} has no gallery yet; enroll classes first with "
            f"`dataprep enroll {Path(run_dir).name} SUPPORT...`"
        )
    names = sorted(frame["class"].unique())
    vectors = [np.stack(frame[frame["class"] == name]["embedding"].to_list()) for name in names]
    return names, _unit(np.stack([v.mean(axis=0) for v in vectors]))


def _support_files(support: list[Path], label: str | None) -> list[tuple[str, Path]]:
    """``(class, file)`` pairs: files with ``--label``, or folders of class sub-folders."""
    from dataprep.safepath import check_class_name
    from dataprep.sniff import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    media = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS

    def files_in(folder: Path) -> list[Path]:
        return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in media)

    pairs: list[tuple[str, Path]] = []
    for path in map(Path, support):
        if path.is_file():
            if label is None:
                raise UsageError(
                    f"{path}: give --label NAME for files, or a folder with one sub-folder per "
                    f"class"
                )
            pairs.append((label, path))
        elif path.is_dir():
            if label is not None:
                pairs += [(label, p) for p in files_in(path)]
                continue
            for sub in sorted(p for p in path.iterdir() if p.is_dir()):
                check_class_name(sub.name, f"{sub} (class folder)")
                pairs += [(sub.name, p) for p in files_in(sub)]
        else:
            raise UsageError(f"{path}: no such file or folder; pass files, or class folders")
    if label is not None:
        check_class_name(label, "--label")
    if not pairs:
        raise UsageError(
            "no media to enroll in " + ", ".join(map(str, support)) + "; pass image or video "
            "files (with --label) or a folder of class sub-folders"
        )
    return pairs


def _file_rows(model, inputs: RunInputs, pairs, known, progress) -> tuple[list[dict], int]:
    from dataprep.hashing import file_fingerprint

    todo, unchanged = [], 0
    for name, path in pairs:
        media_id = file_fingerprint(path)
        if (name, media_id) in known:
            unchanged += 1
        else:
            todo.append((name, media_id, path))
            known.add((name, media_id))
    rows = []
    prepared = files_outputs(model, [path for _, _, path in todo], inputs)
    for position, ((name, media_id, path), (_, _, _, vectors)) in enumerate(
        zip(todo, prepared, strict=True), 1
    ):
        rows.append(_row(name, media_id, str(path), vectors))
        if progress:
            progress(position, len(todo))
    return rows, unchanged


def _split_rows(model, inputs: RunInputs, split, classes, shots, known) -> tuple[list, int]:
    """One row per media of an export split (the first ``shots`` media of each class in
    media-id order; only ``classes`` when given)."""
    from dataprep.train.inputs import run_over_split, split_meta

    export_dir = run_export_dir(inputs.config)
    labels, vectors = run_over_split(model, export_dir, split, inputs.settings, batch_size=64)
    names = inputs.class_names
    unknown = [c for c in classes or () if c not in names]
    if unknown:
        raise UsageError(f"--classes: {unknown[0]!r} is not a class of the run's export")
    by_media: dict[tuple[str, str], list[int]] = {}
    for index, meta in enumerate(split_meta(export_dir, split)):
        name = names[int(labels[index])]
        if not classes or name in classes:
            by_media.setdefault((name, str(meta["media_id"])), []).append(index)
    rows, taken, unchanged = [], {}, 0
    for (name, media_id), indices in sorted(by_media.items()):
        if shots is not None and taken.get(name, 0) >= shots:
            continue
        taken[name] = taken.get(name, 0) + 1
        unchanged += (name, media_id) in known
        if (name, media_id) not in known:
            source = f"export:{inputs.config['export']['name']}/{split}"
            rows.append(_row(name, media_id, source, vectors[indices]))
            known.add((name, media_id))
    return rows, unchanged


def _row(name: str, media_id: str, source: str, vectors: np.ndarray) -> dict[str, Any]:
    return {
        "class": name,
        "media_id": media_id,
        "source": source,
        "examples": len(vectors),
        "embedding": _unit(np.asarray(vectors, np.float32).mean(axis=0)).astype(np.float32),
        "enrolled_at": datetime.now(UTC),
    }


def enroll(
    workspace,
    run: str | Path,
    support: list[Path] | None = None,
    *,
    label: str | None = None,
    split: str | None = None,
    classes: list[str] | None = None,
    shots: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Adds examples to an embedding run's gallery (``gallery.parquet`` in the run folder).

    Args:
        workspace: the workspace (for run ids); may be None when ``run`` is a folder.
        run: the run id or folder.
        support: files (with ``label``) or folders with one sub-folder per class.
        label: the class of every file in ``support``.
        split: enroll from this split of the run's export instead of files.
        classes: with ``split``: only these classes.
        shots: with ``split``: at most this many media per class.
        progress: called with (files done, files) while embedding files.

    Returns:
        ``added``, ``unchanged`` (already enrolled), ``classes`` (media per class in the gallery
        now), ``gallery`` (its path) and ``seconds``.

    Raises:
        UsageError: for a classifier run, no support, a bad class name or a missing file.
        MediaError: naming a file that cannot be decoded.
    """
    from dataprep import manifests
    from dataprep.train.inputs import check_backend

    started = time.perf_counter()
    check_backend("enroll")
    run_dir = find_run(workspace, run)
    inputs = run_inputs(run_dir, read_run_config(run_dir), workspace.config.ingest.max_pixels)
    if not inputs.settings.embedding:
        raise UsageError(
            f"run {run_dir.name} is a {inputs.settings.model} classifier; enroll needs an "
            f"embedding run (train-baseline --model siamese or siamese-lstm)"
        )
    if (split is None) == (not support):
        raise UsageError("give SUPPORT files or folders, or --split SPLIT (not both)")
    existing = read_gallery(run_dir)
    known = set(zip(existing["class"], existing["media_id"], strict=True))
    model = load_run_model(run_dir)
    if split is not None:
        rows, unchanged = _split_rows(model, inputs, split, classes, shots, known)
    else:
        pairs = _support_files(support, label)
        rows, unchanged = _file_rows(model, inputs, pairs, known, progress)
    if rows:
        added = manifests.from_records("gallery", rows)
        frame = added if existing.empty else _concat(existing, added)
        manifests.write_manifest(run_dir / GALLERY_FILE, "gallery", frame)
    else:
        frame = existing
    return {
        "run_id": run_dir.name,
        "added": len(rows),
        "unchanged": unchanged,
        "classes": {str(k): int(v) for k, v in frame["class"].value_counts().sort_index().items()},
        "gallery": str(run_dir / GALLERY_FILE),
        "seconds": time.perf_counter() - started,
    }


def _concat(existing, added):
    import pandas as pd

    return pd.concat([existing, added], ignore_index=True)


def recognize(
    model,
    inputs: RunInputs,
    paths: list[Path],
    *,
    top_k: int = 3,
    threshold: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    errors: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Answers each file with the nearest enrolled class, or ``unknown`` (a file that cannot be
    decoded is left out, its error kept in ``errors`` when given).

    Returns:
        One dict per path: ``path``, ``unit``, ``frames``, ``prediction`` (a class or
        ``unknown``), ``nearest`` and ``distance`` (the nearest class and its distance),
        ``threshold``, ``distances`` (``{class: d}``), ``top_k`` (``[(class, d)]``, nearest
        first) and ``clips`` (per clip or frame: ``start_frame``, ``end_frame``, ``nearest``,
        ``distance``).

    Raises:
        UsageError: when nothing is enrolled or there is no threshold.
    """
    from dataprep.train.embedding import read_calibration

    names, protos = prototypes(inputs.run_dir)
    if threshold is None:
        threshold = (read_calibration(inputs.run_dir) or {}).get("threshold")
    if threshold is None:
        raise UsageError(f"run {inputs.run_dir.name} has no calibration.json; pass --threshold")
    results = []
    prepared = files_outputs(model, list(paths), inputs, errors=errors)
    for position, (path, frame_count, rows, vectors) in enumerate(prepared, 1):
        whole = _unit(vectors.mean(axis=0))
        distances = np.linalg.norm(protos - whole[None], axis=1)
        order = np.argsort(distances)
        nearest, distance = names[order[0]], float(distances[order[0]])
        clip_distances = np.linalg.norm(vectors[:, None] - protos[None], axis=2)
        results.append(
            {
                "path": str(path),
                "unit": inputs.settings.unit,
                "frames": frame_count,
                "prediction": nearest if distance <= threshold else UNKNOWN,
                "nearest": nearest,
                "distance": distance,
                "threshold": float(threshold),
                "distances": {names[i]: float(distances[i]) for i in order},
                "top_k": [(names[i], float(distances[i])) for i in order[:top_k]],
                "clips": [
                    {
                        "start_frame": int(row["start_frame"]),
                        "end_frame": int(row["end_frame"]),
                        "nearest": names[int(np.argmin(d))],
                        "distance": float(np.min(d)),
                    }
                    for row, d in zip(rows, clip_distances, strict=True)
                ],
            }
        )
        if progress:
            progress(position, len(paths))
    return results
