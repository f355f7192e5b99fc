"""Augmentation with albumentations: pipelines, clip-consistent draws, materialized copies.

* A pipeline is albumentations' own serialization (``A.save``/``A.load``, YAML or JSON); the
  presets ``light``, ``medium`` and ``heavy`` ship as such files in ``dataprep/presets/``.
  A user file is checked transform by transform, so an error names the bad transform or
  argument instead of failing deep inside albumentations (or, worse, warning and ignoring it).
* A clip gets one draw of random parameters for all of its frames (albumentations' ``images``
  target): a flip flips every frame of the clip or none.
* ``dataprep augment`` materializes N augmented copies of every extracted frame. Copy k of a
  media uses one draw for all of that media's frames (so copies are valid clips too) and is
  reproducible from (seed, media_id, k). Rows are flagged ``augmented`` with ``copy_index`` k and
  keep the ``media_id``/``frame_index`` of the frame they came from, so they follow their media
  into its split and never leak into validation or test data.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from dataprep import manifests
from dataprep.errors import ManifestError, UsageError
from dataprep.workspace import Workspace

PRESETS = ("light", "medium", "heavy")
CHECKPOINT_SECONDS = 5.0
_COMPOSITIONS = {
    "Compose",
    "OneOf",
    "SomeOf",
    "Sequential",
    "OneOrOther",
    "SelectiveChannelTransform",
    "RandomOrder",
    "ReplayCompose",
}
_RESERVED = {"__class_fullname__", "transforms", "__version__"}


def preset_path(name: str) -> Path:
    """The shipped YAML file of preset ``name``."""
    return Path(str(resources.files("dataprep") / "presets" / f"{name}.yaml"))


def load_pipeline(spec: str | Path):
    """Loads an albumentations pipeline from a preset name or a YAML/JSON file.

    Args:
        spec: ``light``, ``medium``, ``heavy``, or a path to a file written by ``A.save``.

    Returns:
        An ``albumentations.Compose`` (or another composition, as serialized).

    Raises:
        UsageError: one line naming the file and the bad transform or argument.
    """
    if isinstance(spec, str) and spec in PRESETS:
        path = preset_path(spec)
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise UsageError(
                f"pipeline {spec!s}: no such preset or file; use {', '.join(PRESETS)} "
                "or a YAML/JSON "
                "file written by albumentations.save"
            )
    data = _read_pipeline_file(path)
    return pipeline_from_dict(data, source=str(path))


def _read_pipeline_file(path: Path) -> dict:
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise UsageError(f"{path}: not valid {kind} ({first}); fix the file") from None
    if not isinstance(data, dict) or "transform" not in data:
        raise UsageError(
            f"{path}: not an albumentations pipeline (expected a top-level `transform:` key as "
            "written by albumentations.save); start from a preset in dataprep/presets/"
        )
    return data


def pipeline_from_dict(data: dict, *, source: str = "pipeline"):
    """Validates and builds a pipeline from albumentations' serialized dict.

    Raises:
        UsageError: naming ``source`` and the bad transform or argument.
    """
    import albumentations as A

    transform = data.get("transform") if "transform" in data else data
    if not isinstance(transform, dict):
        raise UsageError(f"{source}: `transform` must be a mapping with __class_fullname__")
    _check_transform(transform, source, "transform")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pipeline = A.from_dict({"transform": transform})
        except (ValueError, TypeError, KeyError) as exc:
            raise UsageError(f"{source}: {_first_line(exc)}; fix the pipeline file") from None
    _raise_on_ignored_arguments(caught, source, "transform")
    return pipeline


def _raise_on_ignored_arguments(caught: list, source: str, where: str) -> None:
    """albumentations only warns about arguments it does not know (and ignores them): an error
    here. Other warnings (deprecations) are passed on."""
    for warning in caught:
        text = str(warning.message)
        if "are not valid for transform" in text:
            raise UsageError(f"{source}: {where}: {text}; fix the pipeline file")
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def _transform_class(name: str):
    import albumentations as A
    from albumentations.core.serialization import SERIALIZABLE_REGISTRY

    short = name.rsplit(".", 1)[-1]
    cls = getattr(A, short, None)
    if cls is None:
        registered = (
            SERIALIZABLE_REGISTRY.get(name) if hasattr(SERIALIZABLE_REGISTRY, "get") else None
        )
        cls = registered
    return cls if inspect.isclass(cls) else None


def _check_transform(entry: dict, source: str, where: str) -> None:
    import difflib

    import albumentations as A

    if not isinstance(entry, dict) or "__class_fullname__" not in entry:
        raise UsageError(f"{source}: {where} has no __class_fullname__; each transform needs one")
    name = str(entry["__class_fullname__"])
    cls = _transform_class(name)
    if cls is None:
        known = [n for n in dir(A) if inspect.isclass(getattr(A, n)) and n[:1].isupper()]
        close = difflib.get_close_matches(name.rsplit(".", 1)[-1], known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UsageError(f"{source}: {where}: unknown transform {name!r}{hint}")
    allowed = _allowed_arguments(cls)
    for argument in entry:
        if argument in _RESERVED or argument.startswith("__"):
            continue
        if argument not in allowed:
            close = difflib.get_close_matches(argument, sorted(allowed), n=1)
            hint = (
                f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(sorted(allowed))}"
            )
            raise UsageError(
                f"{source}: {_place(where, name)}: unknown argument {argument!r}; {hint}"
            )
    if name.rsplit(".", 1)[-1] in _COMPOSITIONS or "transforms" in entry:
        children = entry.get("transforms")
        if not isinstance(children, list) or not children:
            raise UsageError(f"{source}: {_place(where, name)} needs a non-empty `transforms` list")
        for i, child in enumerate(children):
            label = child.get("__class_fullname__", "?") if isinstance(child, dict) else "?"
            _check_transform(child, source, f"{where}.transforms[{i}] {label}")
        return
    arguments = {k: v for k, v in entry.items() if k not in _RESERVED and not k.startswith("__")}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cls(**arguments)
        except Exception as exc:  # noqa: BLE001 - any failure here is a bad argument
            raise UsageError(
                f"{source}: {_place(where, name)}: {_validation_message(exc)}"
            ) from None
    _raise_on_ignored_arguments(caught, source, _place(where, name))


def _place(where: str, name: str) -> str:
    return where if where.endswith(name) else f"{where} ({name})"


def _allowed_arguments(cls) -> set[str]:
    allowed: set[str] = set()
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for parameter in inspect.signature(init).parameters.values():
            if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                continue
            allowed.add(parameter.name)
        break  # the class's own __init__ lists what it accepts
    schema = getattr(cls, "InitSchema", None)
    if schema is not None and hasattr(schema, "model_fields"):
        allowed |= set(schema.model_fields)
    allowed.discard("self")
    allowed.add("p")
    return allowed


def _validation_message(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        with contextlib.suppress(Exception):
            first = errors()[0]
            where = ".".join(
                str(p)
                for p in first.get("loc", ())
                if not str(p).startswith(("tuple[", "float", "int"))
            )
            return f"argument {where or '?'}: {first.get('msg')} (got {first.get('input')!r})"
    text = _first_line(exc)
    if "validation error" in text:
        lines = str(exc).strip().splitlines()
        if len(lines) >= 3:
            import re

            detail = lines[2].strip()
            got = re.search(r"input_value=(.*?), input_type", detail)
            detail = re.sub(r"\s*\[type=.*$", "", detail)
            suffix = f" (got {got.group(1)})" if got else ""
            return f"argument {lines[1].split('.')[0].strip()}: {detail}{suffix}"
    return text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def pipeline_to_dict(pipeline) -> dict:
    """Albumentations' own serialization of ``pipeline`` (for dataset_info.json)."""
    import albumentations as A

    return A.to_dict(pipeline)


def pipeline_fingerprint(pipeline, seed: int | None = None) -> str:
    """A short hash of the serialized pipeline (and seed)."""
    data = pipeline_to_dict(pipeline)
    data.pop("__version__", None)
    text = json.dumps({"pipeline": data, "seed": seed}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def augment_clip(pipeline, frames: np.ndarray, seed: int | None = None) -> np.ndarray:
    """Augments a clip with ONE draw of random parameters applied to all its frames.

    Args:
        pipeline: from :func:`load_pipeline`.
        frames: ``uint8 [T, H, W, C]`` (all frames the same size).
        seed: makes the draw reproducible; None continues the pipeline's own random stream.

    Returns:
        ``uint8 [T, H', W', C]``.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise ValueError(f"a clip must be [T, H, W, C], got shape {frames.shape}")
    if seed is not None:
        pipeline.set_random_seed(int(seed))
    return np.asarray(pipeline(images=frames)["images"])


def augment_image(pipeline, image: np.ndarray, seed: int | None = None) -> np.ndarray:
    """Augments one image (``uint8 [H, W, C]``); ``seed`` as in :func:`augment_clip`."""
    if seed is not None:
        pipeline.set_random_seed(int(seed))
    return pipeline(image=image)["image"]


def copy_seed(seed: int, media_id: str, copy_index: int) -> int:
    """The draw seed of augmented copy ``copy_index`` of a media (same for all its frames)."""
    digest = hashlib.sha256(f"{seed}:{media_id}:{copy_index}".encode()).hexdigest()
    return int(digest[:8], 16)


def augmented_name(frame_index: int, copy_index: int, extension: str) -> str:
    return f"{frame_index:06d}_aug{copy_index:02d}.{extension}"


# --------------------------------------------------------------------------------------------
# Materialized copies
# --------------------------------------------------------------------------------------------


@dataclass
class AugmentReport:
    """What one ``augment_frames`` run did."""

    pipeline: str = ""
    fingerprint: str = ""
    copies: int = 0
    media: int = 0
    written: int = 0
    kept: int = 0  # copies already present for the same pipeline and seed
    removed: int = 0  # stale copies deleted (other pipeline with --overwrite, or beyond N)
    seconds: float = 0.0
    rows: int = 0  # augmented rows in the manifest after the run

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class _MediaWork:
    media_id: str
    sources: list[dict] = field(hash=False)
    copies: int = 1
    seed: int = 0
    fingerprint: str = ""
    pipeline: dict = field(default_factory=dict, hash=False)
    root: str = ""
    quality: int = 90
    have: frozenset = frozenset()  # (frame_index, copy_index) already written


def _augment_media(work: _MediaWork) -> list[dict]:
    """Writes the missing copies of one media's frames; returns their rows (worker process)."""
    from dataprep.atomic import atomic_write_bytes
    from dataprep.imageops import encode_rgb, read_image_rgb

    pipeline = pipeline_from_dict(work.pipeline, source="pipeline")
    rows = []
    root = Path(work.root)
    for copy_index in range(1, work.copies + 1):
        draw = copy_seed(work.seed, work.media_id, copy_index)
        for source in work.sources:
            if (source["frame_index"], copy_index) in work.have:
                continue
            source_path = root / source["path"]
            extension = source_path.suffix.lstrip(".")
            target_rel = Path(source["path"]).parent / augmented_name(
                source["frame_index"], copy_index, extension
            )
            image = augment_image(pipeline, read_image_rgb(source_path), seed=draw)
            atomic_write_bytes(root / target_rel, encode_rgb(image, extension, work.quality))
            height, width = image.shape[:2]
            rows.append(
                {
                    "media_id": work.media_id,
                    "frame_index": int(source["frame_index"]),
                    "timestamp_s": float(source["timestamp_s"]),
                    "path": str(target_rel),
                    "width": int(width),
                    "height": int(height),
                    "augmented": True,
                    "copy_index": copy_index,
                    "fingerprint": work.fingerprint,
                }
            )
    return rows


def augment_frames(
    workspace: Workspace,
    *,
    pipeline: str | Path | None = None,
    copies: int | None = None,
    seed: int | None = None,
    jobs: int | None = None,
    overwrite: bool = False,
    progress: Callable[..., None] | None = None,
) -> AugmentReport:
    """Materializes ``copies`` augmented copies of every extracted frame.

    Options left None come from ``[augment]`` in ``dataprep.toml``. A rerun keeps copies made
    with the same pipeline and seed and writes only the missing ones; copies of another
    pipeline or seed are refused unless ``overwrite``, which deletes them first.

    Raises:
        UsageError: bad pipeline, or copies of another pipeline without ``overwrite``.
        ManifestError: when no frames have been extracted.
    """
    import pandas as pd

    started = time.monotonic()
    settings = workspace.config.augment
    spec = pipeline or settings.pipeline
    copies = settings.copies if copies is None else int(copies)
    if copies < 1:
        raise UsageError(f"--copies {copies}: use 1 or more")
    seed = settings.seed if seed is None else int(seed)
    compose = load_pipeline(spec)
    fingerprint = pipeline_fingerprint(compose, seed)
    serialized = pipeline_to_dict(compose)
    quality = workspace.config.frames.quality
    report = AugmentReport(pipeline=str(spec), fingerprint=fingerprint, copies=copies)
    with workspace.lock():
        frame = manifests.load(workspace, "frames", missing_ok=True)
        is_aug = frame["augmented"].astype(bool) if len(frame) else pd.Series([], dtype=bool)
        sources = frame[~is_aug] if len(frame) else frame
        if not len(sources):
            raise ManifestError(
                f"{workspace.manifest_path('frames')}: no frames yet; run `dataprep frames` first"
            )
        existing = frame[is_aug] if len(frame) else frame
        other = existing[existing["fingerprint"] != fingerprint]
        if len(other) and not overwrite:
            raise UsageError(
                f"{len(other)} augmented copies were made with another pipeline or seed; pass "
                "--overwrite to replace them, or use the same pipeline"
            )
        stale = pd.concat(
            [
                other,
                existing[
                    (existing["fingerprint"] == fingerprint)
                    & (existing["copy_index"].astype(int) > copies)
                ],
            ]
        )
        for rel in stale["path"]:
            with contextlib.suppress(FileNotFoundError):
                (workspace.root / rel).unlink()
        report.removed = len(stale)
        keep = existing[
            (existing["fingerprint"] == fingerprint)
            & (existing["copy_index"].astype(int) <= copies)
        ]
        keep = keep[[(workspace.root / p).is_file() for p in keep["path"]]]
        report.kept = len(keep)
        kept_rows = manifests.records(keep)
        have_by_media: dict[str, set] = {}
        for row in kept_rows:
            have_by_media.setdefault(row["media_id"], set()).add(
                (row["frame_index"], row["copy_index"])
            )
        works = []
        for media_id, group in sources.groupby("media_id", sort=True):
            works.append(
                _MediaWork(
                    media_id=str(media_id),
                    sources=manifests.records(group),
                    copies=copies,
                    seed=seed,
                    fingerprint=fingerprint,
                    pipeline=serialized,
                    root=str(workspace.root),
                    quality=quality,
                    have=frozenset(have_by_media.get(str(media_id), set())),
                )
            )
        report.media = len(works)
        total = len(sources) * copies - report.kept
        new_rows: list[dict] = []
        if progress:
            progress(0, total)
        last_save = time.monotonic()
        source_records = manifests.records(sources)
        for rows in _map_media(works, jobs):
            new_rows.extend(rows)
            report.written += len(rows)
            if progress:
                progress(report.written, total)
            if time.monotonic() - last_save > CHECKPOINT_SECONDS:
                _save(workspace, source_records, kept_rows + new_rows)
                last_save = time.monotonic()
        saved = _save(workspace, source_records, kept_rows + new_rows)
        report.rows = int(saved["augmented"].astype(bool).sum())
        report.seconds = time.monotonic() - started
        _save_state(
            workspace,
            {
                "pipeline": serialized,
                "spec": str(spec),
                "seed": seed,
                "copies": copies,
                "fingerprint": fingerprint,
            },
        )
        from dataprep.stages import record_stage

        record_stage(
            workspace,
            "augment",
            settings={
                "pipeline": str(spec),
                "copies": copies,
                "seed": seed,
                "fingerprint": fingerprint,
            },
            counts={
                "media": report.media,
                "written": report.written,
                "kept": report.kept,
                "removed": report.removed,
                "rows": report.rows,
            },
        )
    return report


STATE_NAME = "augment.json"  # under .dataprep/


def _save_state(workspace: Workspace, state: dict) -> None:
    from dataprep.atomic import atomic_write_text

    atomic_write_text(workspace.state_dir / STATE_NAME, json.dumps(state, default=str))


def materialized_pipeline(workspace: Workspace) -> dict | None:
    """The albumentations dict of the pipeline that made the augmented copies now in the frames
    manifest (what ``dataprep augment`` last wrote), or None when there are none."""
    path = workspace.state_dir / STATE_NAME
    frame = manifests.load(workspace, "frames", missing_ok=True)
    if not path.exists() or not len(frame) or not frame["augmented"].astype(bool).any():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    used = set(frame.loc[frame["augmented"].astype(bool), "fingerprint"])
    return state["pipeline"] if state.get("fingerprint") in used else None


def _save(workspace: Workspace, sources: list[dict], augmented: list[dict]):
    frame = manifests.from_records("frames", sources + augmented)
    frame = frame.sort_values(["media_id", "frame_index", "copy_index"], kind="stable").reset_index(
        drop=True
    )
    manifests.save(workspace, "frames", frame)
    return frame


def _map_media(works: list[_MediaWork], jobs: int | None):
    from dataprep.parallel import map_items

    return map_items(_augment_media, works, jobs)
