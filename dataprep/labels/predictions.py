"""``labels push --predictions RUN``: a trained run's predictions as Label Studio pre-annotations.

Each task's media is classified by :func:`dataprep.train.predict.predict_paths`, the very code
``dataprep predict`` runs (same sampling, size, encoding, normalization and clip windows as the
run's training data), and turned into one prediction per task with ``model_version`` = the run id
and ``score`` = the top probability of the whole media:

- ``Choices`` projects (whole-media classification, and images): the argmax class of the
  whole-media probabilities (the mean over the media's clips or frames).
- ``TimelineLabels`` projects (``segments``): one region per run of consecutive clips (frames,
  for frame models) with the same argmax class, in Label Studio's 1-based frames through the
  same :class:`~dataprep.labels.convert.FrameClock` the converters use; each region's ``score``
  is the mean top probability of its clips.
- Box projects are refused: the reference trainers classify, they do not locate.

Tasks that already hold a prediction with the run's ``model_version`` are skipped, so a rerun
adds nothing. The conversion functions are pure and unit-tested without a server.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dataprep.errors import MediaError, UsageError
from dataprep.labels import config_xml
from dataprep.labels.client import LabelStudioClient
from dataprep.labels.convert import ConversionError, FrameClock
from dataprep.labels.tasks import ClockCache, MediaTable, UnsafeTaskPath, match_task
from dataprep.workspace import Workspace

#: Media classified per call of ``predict_paths`` (the model is loaded once per call).
PREDICT_CHUNK = 32

_BOX_TAGS = ("VideoRectangle", "RectangleLabels", "Rectangle")
_TARGET_TAGS = {"choices": "Choices", "timelinelabels": "TimelineLabels"}


@dataclass(frozen=True)
class PredictionTarget:
    """The control tag predictions fill: ``type`` (``choices`` or ``timelinelabels``),
    ``from_name`` (the tag's name) and ``to_name`` (the media tag it labels)."""

    type: str
    from_name: str
    to_name: str


@dataclass(frozen=True)
class RunInfo:
    """A finished run whose predictions can be pushed."""

    run_id: str
    run_dir: Path
    class_names: list[str]


@dataclass(frozen=True)
class Segment:
    """A run of consecutive clips with one predicted class (decoder frames, inclusive)."""

    label: str
    first_frame: int
    last_frame: int
    score: float


@dataclass
class PredictionsReport:
    """What one upload of predictions did."""

    run_id: str
    target: str
    added: int = 0
    already_present: int = 0
    other_kind: int = 0
    not_suspects: int = 0  # tasks left out by --suspects-only
    unmatched_tasks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # run_id is the predictions' model_version


# ------------------------------------------------------------------------------ checks


def _refuse_boxes(what: str) -> UsageError:
    return UsageError(
        f"{what} labels boxes, and a run of the reference trainers classifies whole media or "
        "clips and cannot predict boxes; push predictions to a classification or segments project"
    )


def check_run(workspace: Workspace, run: str | Path) -> RunInfo:
    """The run to predict with, after checking it fits the workspace.

    Raises:
        UsageError: when the workspace labels boxes, the run does not exist or is unfinished,
            or the run's classes differ from the workspace's ``[project] classes``.
    """
    from dataprep.train.evaluate import find_run, read_run_config

    if workspace.config.project.label_type == "boxes":
        raise _refuse_boxes(f"workspace {workspace.root} ([project] label_type = boxes)")
    run_dir = find_run(workspace, run)
    config = read_run_config(run_dir)
    class_names = [str(c) for c in (config.get("export") or {}).get("class_names") or []]
    classes = list(workspace.config.project.classes)
    if set(class_names) != set(classes):
        raise UsageError(
            f"run {run_dir.name} predicts classes {class_names} but dataprep.toml lists "
            f"{classes}; push predictions of a run trained on this workspace's classes"
        )
    return RunInfo(run_id=run_dir.name, run_dir=run_dir, class_names=class_names)


def prediction_target(label_config: str, label_type: str) -> PredictionTarget:
    """Which control tag of a project's labeling config the predictions fill.

    ``segments`` workspaces prefer a ``TimelineLabels`` tag, others a ``Choices`` tag; a config
    with only the other one gets that one.

    Raises:
        UsageError: when the config labels boxes only, or has neither tag.
    """
    try:
        root = ET.fromstring(label_config)
    except ET.ParseError as exc:
        raise UsageError(f"the project's labeling config is not valid XML ({exc})") from None
    found: dict[str, PredictionTarget] = {}
    boxes = False
    for element in root.iter():
        if element.tag in _BOX_TAGS:
            boxes = True
        for kind, tag in _TARGET_TAGS.items():
            if element.tag == tag and kind not in found and element.get("name"):
                found[kind] = PredictionTarget(
                    kind, element.get("name", ""), element.get("toName", "")
                )
    order = (
        ("timelinelabels", "choices") if label_type == "segments" else ("choices", "timelinelabels")
    )
    for kind in order:
        if kind in found:
            return found[kind]
    if boxes:
        raise _refuse_boxes("the Label Studio project")
    raise UsageError(
        "the project's labeling config has no Choices or TimelineLabels tag to pre-annotate; "
        "create the project with `dataprep labels push --create`"
    )


# ------------------------------------------------------------------ pure conversion


def _top(probabilities: dict[str, float]) -> tuple[str, float]:
    """The argmax class (the first of equal maxima, in class order) and its probability."""
    label = max(probabilities, key=lambda name: probabilities[name])
    return label, float(probabilities[label])


def clip_segments(clips: list[dict[str, Any]]) -> list[Segment]:
    """Merges consecutive clips with the same argmax class into segments.

    A segment spans from its first clip's ``start_frame`` to its last clip's ``end_frame``;
    where clips overlap (stride shorter than the clip), a segment ends where the next one
    starts. Frames covered by no clip (after the last window) stay unlabelled.
    """
    ordered = sorted(clips, key=lambda c: (int(c["start_frame"]), int(c["end_frame"])))
    groups: list[tuple[str, int, int, list[float]]] = []
    for clip in ordered:
        label, score = _top(clip["probabilities"])
        first, last = int(clip["start_frame"]), int(clip["end_frame"])
        if groups and groups[-1][0] == label:
            name, start, end, scores = groups[-1]
            groups[-1] = (name, start, max(end, last), [*scores, score])
        else:
            groups.append((label, first, last, [score]))
    segments = []
    for pos, (label, first, last, scores) in enumerate(groups):
        if pos + 1 < len(groups):
            last = min(last, groups[pos + 1][1] - 1)
        segments.append(Segment(label, first, max(first, last), sum(scores) / len(scores)))
    return segments


def choices_prediction(result: dict[str, Any], target: PredictionTarget) -> dict[str, Any]:
    """A whole-media ``Choices`` prediction (``result`` and ``score``) from one
    ``predict_paths`` result."""
    label, score = _top(result["probabilities"])
    return {
        "result": [
            {
                "id": "p0",
                "from_name": target.from_name,
                "to_name": target.to_name,
                "type": "choices",
                "value": {"choices": [label]},
                "score": score,
            }
        ],
        "score": score,
    }


def timeline_prediction(
    result: dict[str, Any], target: PredictionTarget, clock: FrameClock
) -> dict[str, Any]:
    """A ``TimelineLabels`` prediction from one ``predict_paths`` result: one region per
    segment of same-class clips, in Label Studio's 1-based frames (``clock.ls_frame_of``)."""
    regions = []
    for pos, segment in enumerate(clip_segments(result["clips"])):
        regions.append(
            {
                "id": f"p{pos}",
                "from_name": target.from_name,
                "to_name": target.to_name,
                "type": "timelinelabels",
                "value": {
                    "ranges": [
                        {
                            "start": clock.ls_frame_of(segment.first_frame),
                            "end": clock.ls_frame_of(segment.last_frame),
                        }
                    ],
                    "timelinelabels": [segment.label],
                },
                "score": segment.score,
            }
        )
    return {"result": regions, "score": _top(result["probabilities"])[1]}


def to_prediction(
    result: dict[str, Any],
    target: PredictionTarget,
    *,
    task_id: int,
    model_version: str,
    clock: FrameClock | None,
    media_id: str = "",
) -> dict[str, Any]:
    """The Label Studio prediction for one task from its media's ``predict_paths`` result.

    Raises:
        ConversionError: for a timeline target when the video's frame rate is unknown.
    """
    if target.type == "timelinelabels":
        if clock is None:
            raise ConversionError(
                f"media {media_id}: timeline predictions need the video's frame rate, which is "
                "unknown; re-run `dataprep ingest` so the media is probed"
            )
        body = timeline_prediction(result, target, clock)
    else:
        body = choices_prediction(result, target)
    return {"task": int(task_id), "model_version": model_version, **body}


# ------------------------------------------------------------------------- upload


def _predict(
    workspace: Workspace, run: RunInfo, paths: dict[str, str], errors: list[str]
) -> dict[str, dict]:
    """``predict_paths`` over the media (one model load); a file that fails to decode is
    isolated by retrying one by one and reported in ``errors``."""
    from dataprep.train.predict import predict_paths

    present = {}
    for media_id, path in paths.items():
        if Path(path).is_file():
            present[media_id] = path
        else:
            errors.append(f"media {media_id}: {path} is missing; restore it or re-run ingest")
    if not present:
        return {}
    try:
        results = predict_paths(workspace, run.run_dir, [Path(p) for p in present.values()])
        return dict(zip(present, results, strict=True))
    except MediaError:
        pass
    out = {}
    for media_id, path in present.items():
        try:
            [out[media_id]] = predict_paths(workspace, run.run_dir, [Path(path)])
        except MediaError as exc:
            errors.append(f"media {media_id}: {exc}")
    return out


def push_predictions(
    workspace: Workspace,
    client: LabelStudioClient,
    project_id: int,
    target: PredictionTarget,
    run: RunInfo,
    media: MediaTable,
    kind: str,
    *,
    media_root: str | None,
    url_prefix: str | None,
    progress: Callable[[int, int | None], None] | None = None,
    only_media: set[str] | None = None,
) -> PredictionsReport:
    """Adds one prediction of ``run`` to every task of the project showing ok ``kind`` media
    that has none with the run's ``model_version`` yet (of ``only_media``, when given).

    Returns:
        a :class:`PredictionsReport`; media that cannot be decoded are listed in ``errors``.
    """
    report = PredictionsReport(run_id=run.run_id, target=target.type)
    done = {
        int(p["task"])
        for p in client.list_predictions(project_id)
        if p["model_version"] == run.run_id and p["task"] is not None
    }
    todo: list[tuple[dict, str]] = []
    for task in client.list_tasks(project_id):
        try:
            media_id = match_task(
                task, media, media_root=media_root, url_prefix=url_prefix, server_url=client.url
            )
        except (UnsafeTaskPath, LookupError) as exc:
            report.unmatched_tasks.append(str(exc))
            continue
        if media.rows[media_id]["kind"] != kind:
            report.other_kind += 1
        elif only_media is not None and media_id not in only_media:
            report.not_suspects += 1
        elif int(task["id"]) in done:
            report.already_present += 1
        else:
            todo.append((task, media_id))
    clocks = ClockCache(media)
    for start in range(0, len(todo), PREDICT_CHUNK):
        chunk = todo[start : start + PREDICT_CHUNK]
        paths = {media_id: media.rows[media_id]["path"] for _, media_id in chunk}
        results = _predict(workspace, run, paths, report.errors)
        predictions = []
        for task, media_id in chunk:
            if media_id not in results:
                continue
            try:
                clock = None
                if target.type == "timelinelabels":
                    clock = clocks.clock(media_id, task["data"].get(config_xml.FPS_KEY))
                predictions.append(
                    to_prediction(
                        results[media_id],
                        target,
                        task_id=task["id"],
                        model_version=run.run_id,
                        clock=clock,
                        media_id=media_id,
                    )
                )
            except ConversionError as exc:
                report.errors.append(f"task {task['id']}: {exc}")
        if predictions:
            client.import_predictions(project_id, predictions)
            report.added += len(predictions)
        if progress:
            progress(start + len(chunk), len(todo))
    return report
