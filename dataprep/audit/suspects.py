"""Likely label errors: confident learning over a run's out-of-sample probabilities.

**Out-of-sample probabilities.** A model has seen its training examples with their labels, so
its probabilities on them are not evidence against those labels. The run's model is therefore
applied to the splits it was *not* trained on (``val`` and ``test`` of its export), where its
probabilities are out of sample. Each media gets the mean of its examples' (frames' or clips')
probabilities, and its given label is the label the export gave its examples (the one the run
was evaluated against).

**Confident learning** (Northcutt et al., 2021, the method of cleanlab): the threshold of class
``j`` is the mean probability of ``j`` over the media labelled ``j``. A media's *confident*
label is, among the classes whose probability reaches their threshold, the most probable one.
A media whose confident label differs from its given label is a suspect; suspects are ranked by
``1 - p(given label)`` (self-confidence), and the confident label is the suggested one. Per-class
thresholds keep a class the model is generally unsure about from flooding the list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.errors import UsageError

HELD_OUT = ("val", "test")


@dataclass
class Scored:
    """Out-of-sample probabilities per media."""

    run_id: str
    class_names: list[str]
    media_ids: list[str]
    given: np.ndarray  # int [N]: index of the given label
    probabilities: np.ndarray  # float [N, C]
    split_of: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Suspect:
    media_id: str
    given: str
    suggested: str
    score: float  # 1 - p(given)
    flagged: bool  # the confident label differs from the given one
    p_given: float
    p_suggested: float


def held_out_probabilities(
    workspace, run: str | Path, progress: Callable[[int, int], None] | None = None
) -> Scored:
    """The run's model over the held-out splits of its export, averaged per media.

    Raises:
        UsageError: when the run does not exist, is not a classifier, or its export has no
            held-out examples.
    """
    from dataprep.train.evaluate import find_run, load_run_model, predict_split, read_run_config

    run_dir = find_run(workspace, run)
    config = read_run_config(run_dir)
    class_names = [str(c) for c in (config.get("export") or {}).get("class_names") or []]
    info_splits = _export_splits(config)
    model = load_run_model(run_dir)
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    votes: dict[str, dict[int, int]] = {}
    split_of = {}
    for split in HELD_OUT:
        if not info_splits.get(split):
            continue
        labels, outputs, meta = predict_split(model, config, split, progress=progress)
        if outputs.ndim != 2 or outputs.shape[1] != len(class_names):
            raise UsageError(
                f"run {run_dir.name} does not output class probabilities ({outputs.shape}); "
                "label suspects need a classifier run (cnn, cnn-bn, cnn-lstm)"
            )
        for label, probs, row in zip(labels, outputs, meta, strict=True):
            media_id = str(row["media_id"])
            sums[media_id] = sums.get(media_id, 0) + probs.astype(np.float64)
            counts[media_id] = counts.get(media_id, 0) + 1
            tally = votes.setdefault(media_id, {})
            tally[int(label)] = tally.get(int(label), 0) + 1
            split_of[media_id] = split
    if not sums:
        raise UsageError(
            f"run {run_dir.name}'s export has no val or test examples to score out of sample; "
            "export with held-out splits"
        )
    ids = sorted(sums)
    return Scored(
        run_id=run_dir.name,
        class_names=class_names,
        media_ids=ids,
        given=np.array([max(votes[m], key=lambda k: (votes[m][k], -k)) for m in ids]),
        probabilities=np.stack([sums[m] / counts[m] for m in ids]),
        split_of=split_of,
    )


def _export_splits(config: dict[str, Any]) -> dict[str, int]:
    from dataprep.data import read_info
    from dataprep.train.evaluate import run_export_dir

    info = read_info(run_export_dir(config))
    return {name: int(v.get("examples") or 0) for name, v in (info.get("splits") or {}).items()}


def confident_learning(given: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(thresholds [C], confident [N] (-1: none), flagged [N])`` (see the module docstring)."""
    classes = probabilities.shape[1]
    thresholds = np.array(
        [probabilities[given == j, j].mean() if (given == j).any() else 1.0 for j in range(classes)]
    )
    above = probabilities >= thresholds[None, :] - 1e-12
    masked = np.where(above, probabilities, -1.0)
    confident = np.where(above.any(axis=1), masked.argmax(axis=1), -1)
    flagged = (confident >= 0) & (confident != given)
    return thresholds, confident, flagged


def rank_suspects(scored: Scored) -> list[Suspect]:
    """Every scored media, flagged ones first, each group by ``1 - p(given)`` descending."""
    given, probs = scored.given, scored.probabilities
    _, confident, flagged = confident_learning(given, probs)
    rows = []
    for n, media_id in enumerate(scored.media_ids):
        suggested = int(confident[n]) if flagged[n] else int(np.argmax(probs[n]))
        rows.append(
            Suspect(
                media_id=media_id,
                given=scored.class_names[int(given[n])],
                suggested=scored.class_names[suggested],
                score=float(1.0 - probs[n, given[n]]),
                flagged=bool(flagged[n]),
                p_given=float(probs[n, given[n]]),
                p_suggested=float(probs[n, suggested]),
            )
        )
    return sorted(rows, key=lambda s: (not s.flagged, -s.score, s.media_id))


def suspect_findings(scored: Scored, suspects: list[Suspect]) -> list[dict[str, Any]]:
    """Audit rows for the flagged suspects."""
    return [
        {
            "kind": "label_suspect",
            "media_id": s.media_id,
            "label": s.given,
            "suggested_label": s.suggested,
            "split": scored.split_of.get(s.media_id),
            "score": round(s.score, 4),
            "action": "review_label",
            "detail": f"run {scored.run_id}: p({s.given}) = {s.p_given:.3f}, "
            f"p({s.suggested}) = {s.p_suggested:.3f} "
            f"(out of sample, {scored.split_of.get(s.media_id)})",
        }
        for s in suspects
        if s.flagged
    ]


def suspect_media(workspace, run_id: str, top: int | None = None) -> list[str]:
    """The media of the ``label_suspect`` findings of the last audit, surest first, for
    ``labels push --predictions RUN --suspects-only``.

    Raises:
        UsageError: when the last audit did not use run ``run_id`` (or found no suspect).
    """
    from dataprep import manifests
    from dataprep.stages import load_stage

    record = load_stage(workspace, "audit") or {}
    audited_with = (record.get("settings") or {}).get("run")
    if audited_with != run_id:
        raise UsageError(
            f"the last audit {'used run ' + repr(audited_with) if audited_with else 'had no --run'}"
            f", not {run_id!r}; run `dataprep audit --run {run_id}` first"
        )
    rows = manifests.load(workspace, "audit")
    rows = rows[rows["kind"] == "label_suspect"].sort_values(
        ["score", "media_id"], ascending=[False, True]
    )
    if not len(rows):
        raise UsageError(f"the audit with run {run_id!r} found no label suspects; nothing to send")
    ids = list(dict.fromkeys(rows["media_id"]))
    return ids[:top] if top else ids
