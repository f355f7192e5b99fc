"""``predict``: classify new videos and images exactly the way the run's training data was made.

Files are prepared by :mod:`dataprep.train.mediaprep` (decoded, sampled, resized and encoded as
``dataprep frames`` did, cut into the export's clips, read back through the run's evaluation
pipeline). A classifier's video gets probabilities per clip (per frame for frame models) and for
the whole video (the mean of its clips' probabilities). An embedding run (``siamese``,
``siamese-lstm``) answers with its gallery instead (:mod:`dataprep.train.gallery`): the nearest
enrolled class, or "unknown" beyond the calibrated threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.train import gallery
from dataprep.train.evaluate import find_run, load_run_model, read_run_config
from dataprep.train.inputs import check_backend
from dataprep.train.mediaprep import files_outputs, run_inputs


def _top(probabilities: np.ndarray, class_names: list[str], k: int) -> list[tuple[str, float]]:
    order = np.argsort(-probabilities)[:k]
    return [(class_names[i], float(probabilities[i])) for i in order]


def predict_paths(
    workspace,
    run: str | Path,
    paths: list[Path],
    *,
    top_k: int = 3,
    batch_size: int | None = None,
    threshold: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Classifies each file with a run's model (an embedding run: with its gallery, see
    :func:`dataprep.train.gallery.recognize`; ``threshold`` overrides the calibrated one).

    A file that cannot be decoded, or whose header claims more than ``[ingest] max_pixels``,
    does not stop the others: its entry is ``{"path", "error"}`` (one line naming the file).

    Returns:
        One dict per path, in order: ``path``, ``unit`` (frame or clip), ``frames`` (decoded),
        ``probabilities`` (whole media, ``{class: p}``), ``top_k`` (``[(class, p)]``),
        ``prediction``, and ``clips``: per clip (or frame) ``start_frame``, ``end_frame``,
        ``probabilities``, ``top_k``.

    Raises:
        UsageError: when the run or its export is gone, or a path does not exist.
    """
    check_backend("predict")
    run_dir = find_run(workspace, run)
    inputs = run_inputs(run_dir, read_run_config(run_dir), workspace.config.ingest.max_pixels)
    model = load_run_model(run_dir)
    errors: dict[str, str] = {}
    if inputs.settings.embedding:
        results = gallery.recognize(
            model,
            inputs,
            paths,
            top_k=top_k,
            threshold=threshold,
            progress=progress,
            errors=errors,
        )
    else:
        results = _classify(model, inputs, paths, top_k, batch_size, progress, errors)
    answered = iter(results)  # in input order, without the files that failed
    return [
        {"path": str(path), "error": errors[str(path)]} if str(path) in errors else next(answered)
        for path in paths
    ]


def _classify(model, inputs, paths, top_k, batch_size, progress, errors) -> list[dict[str, Any]]:
    class_names = inputs.class_names
    results = []
    if progress:
        progress(0, len(paths))
    prepared = files_outputs(model, list(paths), inputs, batch_size, errors=errors)
    for position, (path, frame_count, rows, probabilities) in enumerate(prepared, 1):
        mean = probabilities.mean(axis=0)
        results.append(
            {
                "path": str(path),
                "unit": inputs.settings.unit,
                "frames": frame_count,
                "prediction": class_names[int(np.argmax(mean))],
                "probabilities": {
                    name: float(p) for name, p in zip(class_names, mean, strict=True)
                },
                "top_k": _top(mean, class_names, top_k),
                "clips": [
                    {
                        "start_frame": int(row["start_frame"]),
                        "end_frame": int(row["end_frame"]),
                        "probabilities": {
                            n: float(p) for n, p in zip(class_names, probs, strict=True)
                        },
                        "top_k": _top(probs, class_names, top_k),
                    }
                    for row, probs in zip(rows, probabilities, strict=True)
                ],
            }
        )
        if progress:
            progress(position, len(paths))
    return results
