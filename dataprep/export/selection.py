"""What goes into an export: which frames or clips, with which label, in which split, in what order.

Shared by every export format (TFRecord, image folder, Parquet) and by ``dataprep split`` (for the
per-media class used to stratify). The rules, documented in docs/export.md:

* Labels come from ``labels.parquet`` rows with ``resolved=true``. A media without any resolved
  choice or segment row falls back to ``media.label`` (the folder label of ingest).
* A ``choice`` row labels every frame of its media. A ``segment`` row labels the frames whose
  ``frame_index`` lies in ``[start_frame, end_frame]``; segments win over a choice label;
  where segments overlap with different labels, the one that starts last wins (the inner one).
  ``box`` rows do not give frames a class in these (classification) exports.
* Frames left without a label are dropped, or get the ``background`` class with
  ``unlabelled="background"``. Labels that are not among ``[project] classes`` are dropped
  (counted as ``unknown_class``).
* A clip's label is the majority of its real frames' labels; a tie goes to the label that
  appears first in the clip. Unlabelled frames do not vote (with ``drop``), a clip whose frames
  are all unlabelled is dropped.
* Clips are windows of ``clip_len`` consecutive extracted frames of one media (and one augmented
  copy), starting every ``clip_stride`` frames; trailing frames that do not fill a window are
  not used. A media with at least one frame but fewer than ``clip_len`` gives one clip padded
  by repeating its last frame; ``length`` tells how many frames are real.
* Augmented frames (``augmented=true``) only go to the train split. A copy flipped left-right
  (``mirrored=true``) gets its frames' label mirrored through ``[augment] flip_map``.
* Examples are ordered by a hash of their key (split, media_id, copy_index, frame), so the same
  workspace always gives the same order, and neighbours in a shard come from different media.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dataprep import manifests
from dataprep.errors import ManifestError
from dataprep.export.plan_store import ExampleStore, bucket_bits
from dataprep.workspace import Workspace

SPLITS = ("train", "val", "test")
BACKGROUND = "background"
Unit = Literal["frame", "clip"]
Unlabelled = Literal["drop", "background"]
Sizer = Callable[[list[str]], list[int]]  # frame file sizes of absolute paths, in order


@dataclass(frozen=True)
class FrameItem:
    """One frame file to export."""

    media_id: str
    frame_index: int
    copy_index: int
    timestamp_s: float
    path: str  # relative to the workspace root
    width: int
    height: int
    augmented: bool
    label: str | None = None


@dataclass(frozen=True)
class Example:
    """One example to write: a frame, or a clip of frames (padded to ``clip_len``)."""

    key: str
    split: str
    label: str
    media_id: str
    copy_index: int
    frames: tuple[FrameItem, ...]
    length: int  # real frames (the rest repeat the last real one)
    fps: float
    size: int = 0  # bytes it takes in a shard, estimated from its frame files (export's plan)

    @property
    def frame(self) -> FrameItem:
        return self.frames[0]

    @property
    def start_frame(self) -> int:
        return self.frames[0].frame_index

    @property
    def end_frame(self) -> int:
        return self.frames[self.length - 1].frame_index


@dataclass
class Selection:
    """The examples of an export, by split, in their final (hashed) order: an
    :class:`~dataprep.export.plan_store.ExampleStore` per split (iterable, ``len``, shards)."""

    unit: Unit
    class_names: list[str]
    examples: dict[str, ExampleStore]
    dropped: Counter = field(default_factory=Counter)  # reason -> frames or clips left out
    padded_clips: int = 0  # clips of media shorter than clip_len (padded, see the module doc)
    warnings: list[str] = field(default_factory=list)
    labels: defaultdict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    augmented_in_train: bool = False  # some train example holds an augmented frame

    def add(self, example: Example) -> None:
        """Adds an example to its split (counted as it goes: the examples may be on disk)."""
        self.examples[example.split].add(example)
        self.labels[example.split][example.label] += 1
        if example.split == "train" and not self.augmented_in_train:
            self.augmented_in_train = any(f.augmented for f in example.frames)

    def by_class(self, split: str) -> dict[str, int]:
        counts = self.labels.get(split, Counter())
        return {name: counts.get(name, 0) for name in self.class_names}


# ---------------------------------------------------------------------------------- labelling


@dataclass(frozen=True)
class MediaLabels:
    """The resolved labels of one media: a whole-media label and segments."""

    choice: str | None
    segments: tuple[tuple[int, int, str], ...]  # (start_frame, end_frame, label), sorted by start

    def label_of(self, frame_index: int) -> str | None:
        found = None
        for start, end, label in self.segments:
            if start > frame_index:
                break
            if start <= frame_index <= end:
                found = label  # the latest-starting segment wins
        return found if found is not None else self.choice

    def dominant(self) -> str | None:
        """The label covering most of the media (choice, else the longest total segments)."""
        if self.choice is not None:
            return self.choice
        totals: Counter = Counter()
        for start, end, label in self.segments:
            totals[label] += end - start + 1
        if not totals:
            return None
        best = max(totals.values())
        return min(label for label, total in totals.items() if total == best)


def resolve_media_labels(media, labels) -> dict[str, MediaLabels]:
    """``{media_id: MediaLabels}`` for media (ok ones) from resolved label rows + folder labels.

    Args:
        media: the media manifest (pandas).
        labels: the labels manifest (pandas), possibly empty.
    """
    by_media: dict[str, list[dict]] = {}
    if len(labels):
        resolved = labels[labels["resolved"].fillna(False).astype(bool)]
        resolved = resolved[resolved["kind"].isin(["choice", "segment"])]
        for row in manifests.records(resolved):
            by_media.setdefault(row["media_id"], []).append(row)
    result: dict[str, MediaLabels] = {}
    for row in manifests.records(media[media["status"] == "ok"]):
        media_id = row["media_id"]
        rows = by_media.get(media_id)
        if not rows:
            result[media_id] = MediaLabels(choice=row.get("label"), segments=())
            continue
        choices = sorted({r["label"] for r in rows if r["kind"] == "choice"})
        segments = []
        for r in rows:
            if r["kind"] != "segment":
                continue
            if r["start_frame"] is None or r["end_frame"] is None:
                raise ManifestError(
                    f"labels manifest: segment row of media {media_id} (annotation "
                    f"{r['annotation_id']}) has no start_frame/end_frame; re-sync the labels"
                )
            segments.append((int(r["start_frame"]), int(r["end_frame"]), r["label"]))
        segments.sort()
        # several resolved whole-media choices: the first by name, deterministically
        result[media_id] = MediaLabels(
            choice=choices[0] if choices else None, segments=tuple(segments)
        )
    return result


def class_names_for(
    workspace: Workspace, media_labels: dict[str, MediaLabels], unlabelled: Unlabelled
) -> list[str]:
    """``[project] classes`` when set, else the sorted labels seen; plus ``background`` if asked."""
    names = list(workspace.config.project.classes)
    if not names:
        seen = set()
        for entry in media_labels.values():
            if entry.choice is not None:
                seen.add(entry.choice)
            seen.update(label for _, _, label in entry.segments)
        names = sorted(seen)
    if unlabelled == "background" and BACKGROUND not in names:
        names.append(BACKGROUND)
    return names


# ----------------------------------------------------------------------------------- selection


def load_splits(workspace: Workspace) -> dict[str, str]:
    """``{media_id: split}`` from splits.parquet.

    Raises:
        ManifestError: when there is no splits manifest yet.
    """
    if not workspace.manifest_path("splits").exists():
        raise ManifestError(
            f"{workspace.manifest_path('splits')}: no splits yet; run `dataprep split` first"
        )
    splits = manifests.load(workspace, "splits")
    return dict(zip(splits["media_id"], splits["split"], strict=True))


def select(
    workspace: Workspace,
    *,
    unit: Unit = "frame",
    clip_len: int = 16,
    clip_stride: int = 8,
    unlabelled: Unlabelled = "drop",
    plan_dir: Path | None = None,
    sizer: Sizer | None = None,
    shard_size: int | None = None,
) -> Selection:
    """Builds the examples of an export from the workspace's manifests (see the module doc).

    The frames manifest is read in batches, one media at a time; the examples go to one
    :class:`ExampleStore` per split, on disk under ``plan_dir`` when they are many (None: in
    memory). The options are validated by the caller (``dataprep.config.ExportConfig`` through
    :func:`dataprep.config.effective`).

    Args:
        sizer: the sizes of frame files (absolute paths) in bytes, in order: each example's
            ``size`` (the shard plan) comes from it; the Ray engine stats them in tasks. None:
            stat'ed here.
        shard_size: plan shards of this many bytes (``ExampleStore.counts``).

    Raises:
        ManifestError: when frames or splits are missing, or media with frames have no split.
    """
    from dataprep.frame_rows import frame_groups, frame_media_ids

    media = manifests.load(workspace, "media")
    labels = manifests.load(workspace, "labels", missing_ok=True)
    split_of = load_splits(workspace)
    media_labels = resolve_media_labels(media, labels)
    class_names = class_names_for(workspace, media_labels, unlabelled)
    fps_of = {row["media_id"]: row["fps"] for row in manifests.records(media[["media_id", "fps"]])}
    missing_split = {
        media_id
        for media_id in frame_media_ids(workspace)
        if media_id in media_labels and media_id not in split_of
    }
    if missing_split:  # before any work: one pass over one column
        raise ManifestError(
            f"{workspace.manifest_path('splits')}: {len(missing_split)} media with frames have no "
            f"split (e.g. {min(missing_split)}); run `dataprep split` again (existing media keep "
            "their split)"
        )
    groups, frame_rows = frame_groups(workspace, sizer)
    per_frame = 1 if unit == "frame" else -(-clip_len // clip_stride)
    bits = bucket_bits(frame_rows * per_frame)
    selection = Selection(
        unit=unit,
        class_names=class_names,
        examples={s: ExampleStore(plan_dir / s if plan_dir else None, bits) for s in SPLITS},
    )
    mirror = _LazyMirror(workspace, class_names)
    for media_id, rows, sizes in groups:
        sequences = _labelled_sequences(rows, media_labels, split_of, selection, unlabelled, mirror)
        for (_, copy_index), items in sorted(sequences.items()):
            items.sort(key=lambda f: f.frame_index)
            split = split_of[media_id]
            fps = fps_of.get(media_id)
            if unit == "frame":
                examples = _frame_examples(
                    items, split, media_id, copy_index, fps, selection, sizes
                )
            else:
                examples = _clip_examples(
                    items, split, media_id, copy_index, fps, selection, clip_len, clip_stride, sizes
                )
            for example in examples:
                selection.add(example)
    for store in selection.examples.values():
        store.finish(shard_size)
    _warn(selection)
    return selection


class _LazyMirror:
    """The label mirror of ``[augment] flip_map`` (:func:`dataprep.flips.label_mirror`), made
    when the first mirrored frame needs it."""

    def __init__(self, workspace: Workspace, class_names: list[str]):
        self._args = (workspace.config.augment.flip_map, class_names)
        self._mirror: dict[str, str] | None = None

    def get(self, label: str, default: str) -> str:
        if self._mirror is None:
            from dataprep.flips import label_mirror

            self._mirror = label_mirror(*self._args)
        return self._mirror.get(label, default)


def _labelled_sequences(rows, media_labels, split_of, selection, unlabelled, mirror=None):
    """``{(media_id, copy_index): [FrameItem]}`` of the frame ``rows`` that may be exported, each
    with its label (or None); counts what is dropped in ``selection.dropped``."""
    known = set(selection.class_names)
    sequences: dict[tuple[str, int], list[FrameItem]] = {}
    for row in rows:
        media_id = row["media_id"]
        entry = media_labels.get(media_id)
        if entry is None:
            selection.dropped["media_not_ok"] += 1
            continue
        label = entry.label_of(int(row["frame_index"]))
        if label is not None and label not in known:
            selection.dropped["unknown_class"] += 1
            label = None
        if label is not None and mirror is not None and row["mirrored"]:
            label = mirror.get(label, label)
        if label is None and unlabelled == "background":
            label = BACKGROUND
        item = FrameItem(
            media_id=media_id,
            frame_index=int(row["frame_index"]),
            copy_index=int(row["copy_index"]),
            timestamp_s=float(row["timestamp_s"]),
            path=row["path"],
            width=int(row["width"]),
            height=int(row["height"]),
            augmented=bool(row["augmented"]),
            label=label,
        )
        if item.augmented and split_of[media_id] != "train":
            selection.dropped["augmented_outside_train"] += 1
            continue
        sequences.setdefault((media_id, item.copy_index), []).append(item)
    return sequences


def _example(split, media_id, copy_index, frames, label, length, fps, sizes) -> Example:
    """The example of ``frames`` (one frame, or a clip window), keyed by its first frame; its
    size in a shard estimated from its frame files' (``sizes``, by path)."""
    per_frame = [sizes[f.path] for f in frames]
    return Example(
        key=f"{split}/{media_id}/{copy_index}/{frames[0].frame_index}",
        split=split,
        label=label,
        media_id=media_id,
        copy_index=copy_index,
        frames=tuple(frames),
        length=length,
        fps=fps,
        size=sum(per_frame) + 160 + 24 * len(per_frame),
    )


def _frame_examples(items, split, media_id, copy_index, fps, selection, sizes) -> list[Example]:
    examples = []
    for item in items:
        if item.label is None:
            selection.dropped["unlabelled"] += 1
            continue
        examples.append(
            _example(split, media_id, copy_index, (item,), item.label, 1, float(fps or 0), sizes)
        )
    return examples


def _clip_examples(
    items, split, media_id, copy_index, fps, selection, clip_len, clip_stride, sizes
) -> list[Example]:
    examples = []
    for window, length in clip_windows(items, clip_len, clip_stride):
        label = majority_label(window[:length])
        if label is None:
            selection.dropped["unlabelled"] += 1
            continue
        clip_rate = clip_fps(window[:length], fps)
        examples.append(
            _example(split, media_id, copy_index, window, label, length, clip_rate, sizes)
        )
    if items and len(items) < clip_len:
        selection.padded_clips += 1
    return examples


def _warn(selection: Selection) -> None:
    """Warns about classes missing from a split."""
    for split in SPLITS:
        present = selection.labels.get(split)
        if not present:
            continue
        for name in selection.class_names:
            if name not in present and name != BACKGROUND:
                selection.warnings.append(
                    f"class {name!r} has no {selection.unit} in the {split} split"
                )


def clip_windows(items: list[FrameItem], clip_len: int, clip_stride: int):
    """Yields ``(frames, length)`` windows over one media's sorted frames (see the module doc)."""
    if not items:
        return
    if len(items) < clip_len:
        padded = items + [items[-1]] * (clip_len - len(items))
        yield padded, len(items)
        return
    for start in range(0, len(items) - clip_len + 1, clip_stride):
        yield items[start : start + clip_len], clip_len


def majority_label(items: list[FrameItem]) -> str | None:
    """The most frequent label of ``items`` (ties: the one that appears first); None if none."""
    counts = Counter(item.label for item in items if item.label is not None)
    if not counts:
        return None
    best = max(counts.values())
    for item in items:
        if item.label is not None and counts[item.label] == best:
            return item.label
    return None  # pragma: no cover - unreachable


def clip_fps(items: list[FrameItem], media_fps: float | None) -> float:
    """Frames per second of a clip's real frames, from their timestamps (media fps for one)."""
    if len(items) > 1:
        span = items[-1].timestamp_s - items[0].timestamp_s
        if span > 0:
            return (len(items) - 1) / span
    return float(media_fps or 0.0)


def frame_file(workspace: Workspace, item: FrameItem) -> Path:
    """The absolute path of a frame file."""
    return workspace.root / item.path
