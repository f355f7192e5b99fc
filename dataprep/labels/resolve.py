"""Resolution policies (which label is used for training) and inter-annotator agreement.

Rows here are labels-manifest rows (see ``schemas/labels.yaml``). Resolution works per media:

- ``latest``: the rows of the most recently updated annotation.
- ``ground-truth``: the rows of the annotation marked ground truth in Label Studio (the latest
  such one); media without one fall back to ``majority``.
- ``majority``: whole-media choices: the class chosen by most annotations (a tie goes to the
  class of the most recent annotation among the tied); segments: a frame keeps class C when more
  than half of the media's annotations cover it with C, and runs of such frames become the
  resolved segments; boxes cannot be voted on, so box rows follow the ground-truth annotation,
  else the latest.

The resolved rows are copies with ``resolved = true``, ``annotation_id`` and ``annotator`` null.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import combinations
from typing import Any, Literal

from dataprep.labels.convert import FrameClock, Row

Policy = Literal["majority", "latest", "ground-truth"]
POLICIES: tuple[str, ...] = ("majority", "latest", "ground-truth")
NONE = "(none)"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _annotation_order(rows: Sequence[Row]) -> list[tuple[Any, ...]]:
    """Annotations of one media's rows, oldest first: (updated_at, annotation_id) keys."""
    seen: dict[Any, tuple] = {}
    for row in rows:
        key = row["annotation_id"]
        stamp = row["updated_at"] or _EPOCH
        seen[key] = max(seen.get(key, (stamp, key or 0)), (stamp, key or 0))
    return sorted(seen.values(), key=lambda pair: (pair[0], pair[1] if pair[1] is not None else 0))


def _latest_annotation(rows: Sequence[Row]) -> Any:
    order = _annotation_order(rows)
    return order[-1][1] if order else None


def _copy_resolved(rows: Iterable[Row]) -> list[Row]:
    out = []
    for row in rows:
        copy = dict(row)
        copy.update(resolved=True, annotation_id=None, annotator=None, ground_truth=False)
        out.append(copy)
    return out


def _rows_of(rows: Sequence[Row], annotation_id: Any) -> list[Row]:
    return [r for r in rows if r["annotation_id"] == annotation_id]


def _majority_choice(rows: Sequence[Row]) -> list[Row]:
    votes: Counter[str] = Counter()
    by_label_latest: dict[str, tuple] = {}
    for (annotation_id, label), group in _group(rows, ("annotation_id", "label")).items():
        votes[label] += 1
        stamp = max((r["updated_at"] or _EPOCH) for r in group)
        key = (stamp, annotation_id or 0)
        by_label_latest[label] = max(by_label_latest.get(label, key), key)
    if not votes:
        return []
    top = max(votes.values())
    tied = [label for label, count in votes.items() if count == top]
    winner = max(tied, key=lambda label: by_label_latest[label])
    template = next(r for r in rows if r["label"] == winner)
    return _copy_resolved([template])


def _majority_segments(rows: Sequence[Row], voters: int, clock: FrameClock | None) -> list[Row]:
    if not rows or voters <= 0:
        return []
    last = max(int(r["end_frame"]) for r in rows)
    frame_votes: list[Counter[str]] = [Counter() for _ in range(last + 1)]
    for (_annotation_id, label), group in _group(rows, ("annotation_id", "label")).items():
        covered = set()
        for row in group:
            covered.update(range(int(row["start_frame"]), int(row["end_frame"]) + 1))
        for frame in covered:
            frame_votes[frame][label] += 1
    winners = []
    for votes in frame_votes:
        best = [label for label, count in votes.items() if count * 2 > voters]
        winners.append(best[0] if best else None)
    out: list[Row] = []
    template = dict(rows[0])
    start = 0
    for frame in range(1, len(winners) + 1):
        if frame == len(winners) or winners[frame] != winners[start]:
            label = winners[start]
            if label is not None:
                row = dict(template)
                row.update(
                    label=label,
                    in_classes=next(r["in_classes"] for r in rows if r["label"] == label),
                    start_frame=start,
                    end_frame=frame - 1,
                    track_id=None,
                    updated_at=max(
                        (r["updated_at"] for r in rows if r["updated_at"]), default=None
                    ),
                )
                if clock is not None:
                    row.update(start_s=clock.time_of(start), end_s=clock.end_time_of(frame - 1))
                else:
                    row.update(start_s=None, end_s=None)
                out.append(row)
            start = frame
    return _copy_resolved(out)


def _group(rows: Iterable[Row], keys: tuple[str, ...]) -> dict[tuple, list[Row]]:
    groups: dict[tuple, list[Row]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in keys)].append(row)
    return groups


def resolve_media(
    rows: Sequence[Row], policy: Policy, clock: FrameClock | None = None
) -> list[Row]:
    """The resolved rows of one media from all its annotators' rows (see the module doc)."""
    rows = [r for r in rows if not r["resolved"]]
    if not rows:
        return []
    annotations = {r["annotation_id"] for r in rows}
    gt_rows = [r for r in rows if r["ground_truth"]]
    if policy == "latest" or len(annotations) == 1:
        return _copy_resolved(_rows_of(rows, _latest_annotation(rows)))
    if policy == "ground-truth" and gt_rows:
        return _copy_resolved(_rows_of(gt_rows, _latest_annotation(gt_rows)))
    out = _majority_choice([r for r in rows if r["kind"] == "choice"])
    out += _majority_segments([r for r in rows if r["kind"] == "segment"], len(annotations), clock)
    boxes = [r for r in rows if r["kind"] == "box"]
    if boxes:
        source = [r for r in boxes if r["ground_truth"]] or boxes
        out += _copy_resolved(_rows_of(boxes, _latest_annotation(source)))
    return out


def resolve_all(
    rows: Sequence[Row], policy: Policy, clocks: dict[str, FrameClock] | None = None
) -> list[Row]:
    """Every media's annotator rows followed by its resolved rows, sorted stably."""
    if policy not in POLICIES:
        raise ValueError(f"unknown resolve policy {policy!r}; use one of {', '.join(POLICIES)}")
    clocks = clocks or {}
    annotator_rows = [r for r in rows if not r["resolved"]]
    out = list(annotator_rows)
    for (media_id,), group in sorted(_group(annotator_rows, ("media_id",)).items()):
        out += resolve_media(group, policy, clocks.get(media_id))
    return sort_rows(out)


def sort_rows(rows: Iterable[Row]) -> list[Row]:
    """A deterministic order: media, resolved last, annotation, kind, label, frames."""

    def key(row: Row) -> tuple:
        return (
            row["media_id"],
            bool(row["resolved"]),
            row["annotation_id"] or 0,
            row["kind"],
            row["label"],
            row["track_id"] or "",
            -1 if row["start_frame"] is None else row["start_frame"],
            -1 if row["frame_index"] is None else row["frame_index"],
        )

    return sorted(rows, key=key)


# --------------------------------------------------------------------------- agreement


def _ratings(rows: Sequence[Row], frame_counts: dict[str, int]) -> dict[tuple, dict[str, set]]:
    """Per item, per annotator: the set of labels. Items are media (choices) or media frames
    (segments and boxes); an annotator with several annotations of a media counts once (latest).
    """
    latest: dict[tuple[str, str], Any] = {}
    for (media_id, annotator), group in _group(rows, ("media_id", "annotator")).items():
        latest[(media_id, annotator)] = _latest_annotation(group)
    items: dict[tuple, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    by_media = _group(rows, ("media_id",))
    for (media_id,), media_rows in by_media.items():
        annotators = {r["annotator"] for r in media_rows}
        if len(annotators) < 2:
            continue
        kept = [r for r in media_rows if latest[(media_id, r["annotator"])] == r["annotation_id"]]
        kinds = {r["kind"] for r in kept}
        if "choice" in kinds:
            for annotator in annotators:
                items[(media_id,)][annotator]  # noqa: B018 - an annotator who chose nothing
            for row in kept:
                if row["kind"] == "choice":
                    items[(media_id,)][row["annotator"]].add(row["label"])
        frame_rows = [r for r in kept if r["kind"] in ("segment", "box")]
        if frame_rows:
            last = frame_counts.get(media_id)
            if not last:
                last = 1 + max(
                    int(r["end_frame"] if r["kind"] == "segment" else r["frame_index"])
                    for r in frame_rows
                )
            for frame in range(last):
                for annotator in annotators:
                    items[(media_id, frame)][annotator]  # noqa: B018
            for row in frame_rows:
                if row["kind"] == "segment":
                    frames = range(int(row["start_frame"]), int(row["end_frame"]) + 1)
                else:
                    frames = [int(row["frame_index"])]
                for frame in frames:
                    if frame < last:
                        items[(media_id, frame)][row["annotator"]].add(row["label"])
    return items


def fleiss_kappa(item_counts: Sequence[dict[str, int]]) -> float | None:
    """Fleiss' kappa for items rated by two or more raters each (counts per category).

    Items may have different numbers of raters (the usual generalization). None when undefined
    (no items, or every rating in one category).
    """
    usable = [c for c in item_counts if sum(c.values()) >= 2]
    if not usable:
        return None
    totals: Counter[str] = Counter()
    agreement = []
    for counts in usable:
        n = sum(counts.values())
        totals.update(counts)
        agreement.append(sum(v * (v - 1) for v in counts.values()) / (n * (n - 1)))
    grand = sum(totals.values())
    p_bar = sum(agreement) / len(agreement)
    p_e = sum((v / grand) ** 2 for v in totals.values())
    if p_e >= 1.0:
        return None
    return (p_bar - p_e) / (1 - p_e)


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items; None when undefined."""
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[c] * second[c] for c in set(first) | set(second)) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1 - expected)


def percent_agreement(item_counts: Sequence[dict[str, int]]) -> float | None:
    """Mean over items of the share of rater pairs that agree, in percent."""
    usable = [c for c in item_counts if sum(c.values()) >= 2]
    if not usable:
        return None
    shares = []
    for counts in usable:
        n = sum(counts.values())
        shares.append(sum(v * (v - 1) for v in counts.values()) / (n * (n - 1)))
    return 100.0 * sum(shares) / len(shares)


def _single(labels: set) -> str:
    return "+".join(sorted(labels)) if labels else NONE


def agreement(
    rows: Sequence[Row], classes: Sequence[str], frame_counts: dict[str, int] | None = None
) -> dict[str, Any]:
    """Inter-annotator agreement over media annotated by two or more annotators.

    Items are media for whole-media choices and frames for segments and boxes. Overall figures
    treat each item's label set as one category (``(none)`` when empty); per-class figures treat
    each class as a yes/no question per item.

    Returns:
        ``{"items", "annotators", "overall": {...}, "per_class": {class: {...}}}`` where each
        block holds ``items``, ``percent_agreement``, ``fleiss_kappa`` and ``cohen_kappa`` (per
        annotator pair, ``"a | b"``) — None where undefined.
    """
    rows = [r for r in rows if not r["resolved"] and r["annotator"] is not None]
    items = _ratings(rows, frame_counts or {})
    annotators = sorted({a for ratings in items.values() for a in ratings})

    def block(categorize) -> dict[str, Any]:
        counts = []
        for ratings in items.values():
            counts.append(Counter(categorize(labels) for labels in ratings.values()))
        pairs = {}
        for a, b in combinations(annotators, 2):
            shared = [
                (categorize(r[a]), categorize(r[b])) for r in items.values() if a in r and b in r
            ]
            if shared:
                pairs[f"{a} | {b}"] = _round(cohen_kappa(shared))
        return {
            "items": sum(1 for c in counts if sum(c.values()) >= 2),
            "percent_agreement": _round(percent_agreement(counts)),
            "fleiss_kappa": _round(fleiss_kappa(counts)),
            "cohen_kappa": pairs,
        }

    labels_seen = sorted({r["label"] for r in rows} | set(classes))
    return {
        "items": len(items),
        "annotators": annotators,
        "overall": block(_single),
        "per_class": {
            c: block(lambda labels, c=c: "yes" if c in labels else "no") for c in labels_seen
        },
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)
