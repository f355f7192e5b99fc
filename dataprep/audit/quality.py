"""Bad frames and media (blank, dark, blurry, frozen, unreadable) from the signatures' frame
statistics, and class checks (too few media, splits whose class balance drifts from the whole).

Frame findings are runs of consecutive sampled frames, reported with their decoder frame range;
a media whose every sampled frame is bad gets ``drop_media``, else ``drop_frames``.

* **blank**: luma standard deviation below 3 (of 255): a near-constant frame (black, white,
  a flat colour). Blank frames are not also reported dark, blurry or frozen.
* **dark**: the 99th percentile of the luma below ``dark_level`` (40): even the brightest
  parts of the frame are dark.
* **blurry**: the variance of the Laplacian below ``blur_ratio`` (0.1) times the median over
  all the data's frames: judged against the data set itself, so a set of small or soft images
  is not all "blurry", while a frame much softer than its peers is.
* **frozen**: consecutive sampled frames whose 32x32 luma differs by less than 0.5 on average,
  for at least ``frozen_seconds`` (1 s) of video: a stuck decoder, a paused recording.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from dataprep.audit.signatures import Signature

FROZEN_DIFF = 0.5  # mean abs 32x32 luma difference below this: the same picture


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` positions of each run of True in ``mask``."""
    found = []
    start = None
    for position, value in enumerate(mask.tolist() + [False]):
        if value and start is None:
            start = position
        elif not value and start is not None:
            found.append((start, position - 1))
            start = None
    return found


def _row(kind, signature, first, last, score, action, detail, label, split) -> dict[str, Any]:
    return {
        "kind": kind,
        "media_id": signature.media_id,
        "frame_start": int(signature.frame_index[first]),
        "frame_end": int(signature.frame_index[last]),
        "score": round(float(score), 4),
        "action": action,
        "detail": detail,
        "label": label,
        "split": split,
    }


def median_sharpness(signatures: dict[str, Signature]) -> float:
    """The median sharpness of the non-blank frames of every media (0 when none)."""
    values = [s.sharpness[~s.blank] for s in signatures.values() if len(s)]
    values = [v for v in values if len(v)]
    return float(np.median(np.concatenate(values))) if values else 0.0


def frame_findings(
    signature: Signature, settings, median: float, label: str | None, split: str | None
) -> list[dict[str, Any]]:
    """Blank, dark, blurry and frozen runs of one media (``settings``: ``[audit]``)."""
    n = len(signature)
    if not n:
        return []
    rows = []
    checks = [
        ("blank", signature.blank, "luma std < 3: a near-constant frame"),
        (
            "dark",
            ~signature.blank & (signature.p99 < settings.dark_level),
            f"99th percentile luma < {settings.dark_level:g}",
        ),
        (
            "blurry",
            ~signature.blank & (signature.sharpness < settings.blur_ratio * median),
            f"sharpness < {settings.blur_ratio:g} x the data's median ({median:.1f})",
        ),
    ]
    for kind, mask, why in checks:
        if not mask.any():
            continue
        share = float(mask.mean())
        action = "drop_media" if mask.all() else "drop_frames"
        for first, last in runs(mask):
            rows.append(
                _row(kind, signature, first, last, share, action,
                     f"{last - first + 1} of {n} sampled frames: {why}", label, split)
            )  # fmt: skip
    rows.extend(_frozen(signature, settings, label, split))
    return rows


def _frozen(signature: Signature, settings, label, split) -> list[dict[str, Any]]:
    if not signature.rate or len(signature) < 2:
        return []
    same = (signature.diff < FROZEN_DIFF) & ~signature.blank
    same[0] = False
    # a run of k "same as previous" samples freezes k + 1 frames: (k / rate) seconds of video
    rows = []
    for first, last in runs(same):
        seconds = (last - first + 1) / signature.rate
        if seconds + 1e-9 < settings.frozen_seconds:
            continue
        share = (last - first + 2) / len(signature)
        action = "drop_media" if first == 1 and last == len(signature) - 1 else "drop_frames"
        rows.append(
            _row("frozen", signature, first - 1, last, min(1.0, share), action,
                 f"the picture does not change for {seconds:.1f} s "
                 f"({last - first + 2} sampled frames)", label, split)
        )  # fmt: skip
    return rows


def unreadable_findings(media_rows: list[dict], signatures: dict[str, Signature], labels, splits):
    """Media that ingest marked as errors, and ok media that failed to decode now."""
    rows = []
    for row in media_rows:
        media_id = row["media_id"]
        error = row.get("error") if row.get("status") == "error" else None
        signature = signatures.get(media_id)
        if error is None and signature is not None and signature.error:
            error = signature.error
        if error:
            rows.append(
                {
                    "kind": "unreadable",
                    "media_id": media_id,
                    "score": 1.0,
                    "action": "fix_file",
                    "detail": str(error).splitlines()[0][:300],
                    "label": labels.get(media_id),
                    "split": splits.get(media_id),
                }
            )
    return rows


def class_findings(
    label_of: dict[str, str | None], split_of: dict[str, str], classes: list[str], settings
) -> list[dict[str, Any]]:
    """``few_media`` per class with fewer than ``min_class_media`` media, and ``class_drift``
    per split whose class shares are further than ``drift`` (total variation) from the whole."""
    counts = Counter(label for label in label_of.values() if label is not None)
    names = list(classes) or sorted(counts)
    rows = []
    for name in names:
        if counts.get(name, 0) < settings.min_class_media:
            rows.append(
                {
                    "kind": "few_media",
                    "label": name,
                    "score": round(1.0 - counts.get(name, 0) / settings.min_class_media, 4),
                    "action": "add_media",
                    "detail": f"{counts.get(name, 0)} media "
                    f"(fewer than {settings.min_class_media})",
                }
            )
    total = sum(counts[n] for n in names)
    if not split_of or not total:
        return rows
    whole = {n: counts[n] / total for n in names}
    for split in ("train", "val", "test"):
        in_split = Counter(
            label_of[m] for m, s in split_of.items() if s == split and label_of.get(m) in whole
        )
        size = sum(in_split.values())
        if not size:
            continue
        share = {n: in_split[n] / size for n in names}
        distance = 0.5 * sum(abs(share[n] - whole[n]) for n in names)
        if distance > settings.drift and not math.isclose(distance, settings.drift):
            worst = sorted(names, key=lambda n: -abs(share[n] - whole[n]))[:3]
            parts = ", ".join(f"{n} {share[n]:.0%} vs {whole[n]:.0%}" for n in worst)
            rows.append(
                {
                    "kind": "class_drift",
                    "split": split,
                    "score": round(distance, 4),
                    "action": "resplit",
                    "detail": f"{size} media; class shares differ from the whole by "
                    f"{distance:.2f} (total variation): {parts}",
                }
            )
    return rows
