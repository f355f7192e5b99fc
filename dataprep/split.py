"""``split``: assign media to train/val/test by group, stratified by label, and stable over time.

* Grouped: every media of a group (the media itself, its source folder, or the value of a media
  column) lands in one split, so frames of one video never appear in two splits.
* Stable: a group's position is ``u = sha256(seed, group_key)`` mapped to [0, 1). Without
  stratification the split is a fixed function of ``u`` and the ratios, so a group never moves,
  whatever else is added. With stratification, groups already recorded in splits.parquet keep
  their split, and only new groups are placed: in order of ``u``, each to the split whose share
  of the group's class lags its target ratio most (ties: the split ``u`` falls in). Adding
  media therefore never moves existing media either; options not given default to the recorded
  settings; changing the seed, ratios, grouping or stratification needs ``reset=True`` (it
  reassigns everything, test set included).
* Stratified as far as groups allow: a class with fewer groups than splits cannot reach them
  all; the report warns about every class missing from a split.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataprep import manifests
from dataprep.atomic import atomic_write_text
from dataprep.errors import ManifestError, UsageError
from dataprep.export.selection import SPLITS, resolve_media_labels
from dataprep.hashing import file_fingerprint
from dataprep.stages import record_stage
from dataprep.workspace import Workspace

STATE_FILE = "split.json"  # under .dataprep/: the settings of the current splits
UNLABELLED = "(unlabelled)"


@dataclass
class SplitReport:
    """What one split run did."""

    settings: dict[str, Any]
    media: dict[str, int]  # split -> media
    groups: dict[str, int]  # split -> groups
    by_class: dict[str, dict[str, int]]  # split -> class -> media
    frames_by_class: dict[str, dict[str, int]] | None  # split -> class -> frames (when extracted)
    kept: int = 0  # groups whose split was kept from the previous run
    placed: int = 0  # groups placed by this run
    warnings: list[str] = field(default_factory=list)
    path: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest": self.path,
            "settings": self.settings,
            "media": self.media,
            "groups": self.groups,
            "by_class": self.by_class,
            "frames_by_class": self.frames_by_class,
            "kept_groups": self.kept,
            "placed_groups": self.placed,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }


def parse_ratios(value: str | list[float]) -> list[float]:
    """Parses ``"0.8,0.1,0.1"`` (or a list) into numbers; :func:`split_settings` checks them.

    Raises:
        UsageError: when a part is not a number.
    """
    try:
        return [float(v) for v in (value.split(",") if isinstance(value, str) else value)]
    except (TypeError, ValueError):
        raise UsageError(f"--ratios {value!r}: use three numbers, e.g. 0.8,0.1,0.1") from None


def split_settings(workspace: Workspace, defaults: dict[str, Any], **given: Any) -> dict:
    """The effective split settings: ``defaults`` (recorded settings over ``[split]``) with the
    options given, validated in one place (:func:`dataprep.config.effective`: three finite,
    non-negative ratios summing to 1...)."""
    from dataprep.config import SplitConfig, effective

    if given.get("ratios") is not None:
        given["ratios"] = parse_ratios(given["ratios"])
    base = workspace.config.model_copy(
        update={
            "split": SplitConfig.model_construct(
                **{**workspace.config.split.model_dump(), **defaults}
            )
        }
    )
    return effective(base, "split", given).model_dump()


def group_position(group_key: str, seed: int) -> float:
    """The group's stable position in [0, 1): a hash of the seed and the group key."""
    digest = hashlib.sha256(f"{seed}\0{group_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_position(position: float, ratios: list[float]) -> str:
    """The split a position falls in when ratios are laid end to end on [0, 1)."""
    edge = 0.0
    for split, ratio in zip(SPLITS, ratios, strict=True):
        edge += ratio
        if position < edge and ratio > 0:
            return split
    return next(s for s, r in zip(reversed(SPLITS), reversed(ratios), strict=True) if r > 0)


def group_keys(media, group_by: str, where: str = "--group-by") -> dict[str, str]:
    """``{media_id: group_key}`` for ``group_by`` = media, folder (source folder) or a column.

    Media with an empty value in the column form a group of their own (their media_id).

    Raises:
        UsageError: for a column that the media manifest does not have.
    """
    if group_by == "media":
        return {m: m for m in media["media_id"]}
    if group_by == "folder":
        return {
            m: str(Path(p).parent) for m, p in zip(media["media_id"], media["path"], strict=True)
        }
    if group_by not in media.columns or group_by == "media_id":
        columns = ", ".join(c for c in media.columns if c != "media_id")
        raise UsageError(
            f"{where} {group_by!r} is not a media column; use media, folder, near-duplicates "
            f"or one of {columns}"
        )
    keys = {}
    for media_id, value in zip(media["media_id"], media[group_by], strict=True):
        empty = (
            value is None
            or (isinstance(value, float) and value != value)
            or str(value) in ("", "<NA>", "nan", "None")
        )
        keys[media_id] = media_id if empty else f"{group_by}={value}"
    return keys


def assign_groups(
    groups: dict[str, str | None],
    ratios: list[float],
    *,
    seed: int,
    stratify: bool,
    weights: dict[str, int] | None = None,
    previous: dict[str, str] | None = None,
) -> dict[str, str]:
    """Assigns each group to a split.

    Args:
        groups: ``{group_key: class}`` (class None for unlabelled groups).
        ratios: train, val, test.
        seed: the seed of the hash positions.
        stratify: balance each class across splits; else pure hash thresholds.
        weights: ``{group_key: media count}`` (default 1 each).
        previous: ``{group_key: split}`` kept as is (stratified mode only; the unstratified
            assignment never depends on it).

    Returns:
        ``{group_key: split}`` for every group.
    """
    position = {key: group_position(key, seed) for key in groups}
    if not stratify:
        return {key: split_by_position(position[key], ratios) for key in groups}
    weights = weights or {}
    previous = {k: v for k, v in (previous or {}).items() if k in groups}
    assigned = dict(previous)
    counts: dict[str | None, Counter] = {}
    for key, split in previous.items():
        counts.setdefault(groups[key], Counter())[split] += weights.get(key, 1)
    for key in sorted((k for k in groups if k not in previous), key=lambda k: (position[k], k)):
        stratum = groups[key]
        current = counts.setdefault(stratum, Counter())
        weight = weights.get(key, 1)
        total = sum(current.values()) + weight
        fallback = split_by_position(position[key], ratios)

        def lag(split: str, current=current, total=total, fallback=fallback) -> tuple:
            ratio = ratios[SPLITS.index(split)]
            return (ratio * total - current[split], split == fallback)

        split = max((s for s, r in zip(SPLITS, ratios, strict=True) if r > 0), key=lag)
        assigned[key] = split
        current[split] += weight
    return assigned


def split_media(
    workspace: Workspace,
    *,
    ratios: list[float] | str | None = None,
    group_by: str | None = None,
    stratify: bool | None = None,
    seed: int | None = None,
    reset: bool = False,
) -> SplitReport:
    """Writes ``manifests/splits.parquet`` for every ok media (see the module docstring).

    Options left as None take the settings recorded with the existing splits, else ``[split]``
    of dataprep.toml.

    Raises:
        UsageError: for bad ratios or grouping, or settings that differ from the recorded ones
            without ``reset``.
        ManifestError: when there is no media manifest.
    """
    started = time.monotonic()
    recorded = {} if reset else _recorded_settings(workspace)
    config = workspace.config.split
    defaults = {k: getattr(config, k) for k in ("ratios", "group_by", "stratify", "seed")}
    given_group_by = group_by
    settings = split_settings(
        workspace,
        {**defaults, **recorded},
        ratios=ratios,
        group_by=group_by or None,
        stratify=stratify,
        seed=seed,
    )
    ratios, group_by, stratify, seed = (
        settings[k] for k in ("ratios", "group_by", "stratify", "seed")
    )

    with workspace.lock():
        media = _ok_media(workspace)
        labels = manifests.load(workspace, "labels", missing_ok=True)
        media_labels = resolve_media_labels(media, labels)
        if group_by == "near-duplicates":  # clusters of dataprep.audit (docs/audit.md)
            from dataprep.audit.duplicates import near_duplicate_keys

            key_of = near_duplicate_keys(workspace, media, _recorded_keys(workspace, reset))
        else:
            key_of = group_keys(
                media, group_by, _where(workspace, "group_by", given_group_by, recorded)
            )
        previous = _previous(workspace, settings, key_of, reset)
        media_class = {m: media_labels[m].dominant() for m in media["media_id"]}
        members, group_class = _groups(key_of, media_class)
        assigned = assign_groups(
            group_class,
            ratios,
            seed=seed,
            stratify=stratify,
            weights={k: len(v) for k, v in members.items()},
            previous=previous,
        )
        rows = [
            {"media_id": m, "group_key": key_of[m], "split": assigned[key_of[m]]}
            for m in sorted(key_of)
        ]
        _save(workspace, settings, rows, assigned)

    report = SplitReport(
        settings=settings,
        media=_every_split(Counter(r["split"] for r in rows)),
        groups=_every_split(Counter(assigned.values())),
        by_class=_class_counts(rows, media_class),
        frames_by_class=_frame_counts(workspace, media, media_labels, assigned, key_of),
        kept=len([k for k in assigned if k in previous]),
        placed=len([k for k in assigned if k not in previous]),
        path=str(workspace.manifest_path("splits")),
    )
    report.warnings = _missing_classes(workspace, report, ratios)
    report.seconds = time.monotonic() - started
    return report


def _every_split(counts: Counter) -> dict[str, int]:
    """``counts`` as a dict with every split (0 where none)."""
    result = dict(counts)
    for split in SPLITS:
        result.setdefault(split, 0)
    return result


def _ok_media(workspace: Workspace):
    """The ok rows of media.parquet.

    Raises:
        ManifestError: when there are none.
    """
    media = manifests.load(workspace, "media")
    media = media[media["status"] == "ok"].reset_index(drop=True)
    if not len(media):
        raise ManifestError(
            f"{workspace.manifest_path('media')}: no readable media; run `dataprep ingest`"
        )
    return media


def _groups(
    key_of: dict[str, str], media_class: dict[str, str | None]
) -> tuple[dict[str, list[str]], dict[str, str | None]]:
    """Each group's media, and its class: the most common class of its media (ties: the
    smallest name; None when none of them has a class)."""
    members: dict[str, list[str]] = {}
    for media_id in sorted(key_of):
        members.setdefault(key_of[media_id], []).append(media_id)
    group_class = {}
    for key, ids in members.items():
        votes = Counter(media_class[m] for m in ids if media_class[m] is not None)
        group_class[key] = (
            min(c for c, n in votes.items() if n == max(votes.values())) if votes else None
        )
    return members, group_class


def _save(workspace: Workspace, settings: dict, rows: list[dict], assigned: dict[str, str]) -> None:
    """Writes splits.parquet, then the settings, then the stage record (the caller holds the
    lock)."""
    manifests.save(workspace, "splits", manifests.from_records("splits", rows))
    # the settings, tied to the bytes of the manifest they made (a run killed between the
    # two writes leaves a mismatch, which asks for --reset instead of guessing)
    state = {
        "settings": settings,
        "splits_fingerprint": file_fingerprint(workspace.manifest_path("splits")),
    }
    atomic_write_text(workspace.state_dir / STATE_FILE, json.dumps(state, indent=2) + "\n")
    record_stage(
        workspace,
        "split",
        settings=settings,
        counts={
            "media": len(rows),
            "groups": len(assigned),
            **{f"{s}_media": sum(r["split"] == s for r in rows) for s in SPLITS},
        },
    )


def _where(workspace: Workspace, key: str, given: Any, recorded: dict[str, Any]) -> str:
    """Where a setting came from, for messages: its option, the recorded settings or the file."""
    if given is not None:
        return "--" + key.replace("_", "-")
    if key in recorded:
        return f"{workspace.state_dir / STATE_FILE}: {key} ="
    return f"{workspace.config_path}: [split] {key} ="


def _previous(
    workspace: Workspace, settings: dict, key_of: dict[str, str], reset: bool
) -> dict[str, str]:
    """The recorded ``{group_key: split}`` to keep, or {} for a fresh assignment."""
    path = workspace.manifest_path("splits")
    if reset or not path.exists():
        return {}
    recorded = _recorded_settings(workspace) or None
    if recorded != settings:
        raise UsageError(
            f"{path} was made with settings {recorded}, not {settings}; pass --reset to "
            "reassign every media (this changes the test set), or use the recorded settings"
        )
    frame = manifests.load(workspace, "splits")
    previous: dict[str, str] = {}
    for row in manifests.records(frame):
        key = row["group_key"]
        if previous.setdefault(key, row["split"]) != row["split"]:
            raise ManifestError(
                f"{path}: group {key!r} is in two splits; run `dataprep split --reset`"
            )
    live = set(key_of.values())
    return {k: v for k, v in previous.items() if k in live}


def _recorded_keys(workspace: Workspace, reset: bool) -> dict[str, str]:
    """``{media_id: group_key}`` of the splits manifest on disk ({} with ``reset`` or none)."""
    path = workspace.manifest_path("splits")
    if reset or not path.exists():
        return {}
    frame = manifests.load(workspace, "splits")
    return dict(zip(frame["media_id"], frame["group_key"], strict=True))


def _recorded_settings(workspace: Workspace) -> dict[str, Any]:
    """The settings that made the splits manifest on disk ({} when unknown or none)."""
    path = workspace.manifest_path("splits")
    if not path.exists():
        return {}
    try:
        state = json.loads((workspace.state_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(state, dict) or state.get("splits_fingerprint") != file_fingerprint(path):
        return {}
    return state.get("settings") or {}


def _class_counts(rows: list[dict], media_class: dict[str, str | None]) -> dict:
    counts: dict[str, Counter] = {split: Counter() for split in SPLITS}
    for row in rows:
        counts[row["split"]][media_class[row["media_id"]] or UNLABELLED] += 1
    return {split: dict(sorted(c.items())) for split, c in counts.items()}


def _frame_counts(workspace, media, media_labels, assigned, key_of) -> dict | None:
    """Frames per class per split when frames are extracted (None otherwise)."""
    frames = manifests.load(workspace, "frames", missing_ok=True)
    if not len(frames):
        return None
    counts: dict[str, Counter] = {split: Counter() for split in SPLITS}
    for media_id, frame_index, augmented in zip(
        frames["media_id"], frames["frame_index"], frames["augmented"], strict=True
    ):
        if media_id not in key_of:
            continue
        split = assigned[key_of[media_id]]
        if bool(augmented) and split != "train":
            continue
        label = media_labels[media_id].label_of(int(frame_index))
        counts[split][label or UNLABELLED] += 1
    return {split: dict(sorted(c.items())) for split, c in counts.items()}


def _missing_classes(workspace: Workspace, report: SplitReport, ratios: list[float]) -> list[str]:
    classes = list(workspace.config.project.classes) or sorted(
        {c for counts in report.by_class.values() for c in counts if c != UNLABELLED}
    )
    warnings = []
    for split, ratio in zip(SPLITS, ratios, strict=True):
        if ratio <= 0:
            continue
        for name in classes:
            if not report.by_class[split].get(name):
                warnings.append(f"class {name!r} has no media in the {split} split")
    return warnings


def summarize_splits(workspace: Workspace) -> dict[str, Any] | None:
    """For ``dataprep info``: media and groups per split and the recorded settings."""
    path = workspace.manifest_path("splits")
    if not path.exists():
        return None
    frame = manifests.load(workspace, "splits")
    settings = _recorded_settings(workspace) or None
    return {
        "manifest": str(path),
        "settings": settings,
        "media": {s: int((frame["split"] == s).sum()) for s in SPLITS},
        "groups": {s: int(frame.loc[frame["split"] == s, "group_key"].nunique()) for s in SPLITS},
    }
