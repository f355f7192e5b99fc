"""The content of an export's ``dataset_info.json`` (read and written by
:mod:`dataprep.data.info`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from dataprep import __version__
from dataprep.export.context import ExportContext
from dataprep.export.selection import Selection
from dataprep.workspace import Workspace


def dataset_info(ctx: ExportContext, settings: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """``dataset_info.json`` of a finished export.

    Args:
        ctx: the export's context (selection, image sizes seen).
        settings: the effective export settings (format, unit, clip_len, ...).
        **fields: name, splits, fingerprints, export_key and feature_spec.
    """
    import json

    workspace = ctx.workspace
    stats_path = workspace.manifests / "stats.json"
    try:
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stats = None
    unit = settings["unit"]
    return {
        "format": settings["format"],
        "unit": unit,
        "name": fields["name"],
        "class_names": ctx.selection.class_names,
        "num_classes": len(ctx.selection.class_names),
        "image": image_summary(ctx.images),
        "clip": {"length": settings["clip_len"], "stride": settings["clip_stride"]}
        if unit == "clip"
        else None,
        "splits": fields["splits"],
        "compression": settings["compression"],
        "stats": stats,
        "augmentation": augmentation(workspace, ctx.selection),
        "feature_spec": fields["feature_spec"],
        "fingerprints": fields["fingerprints"],
        "settings": settings,
        "dropped": dict(sorted(ctx.selection.dropped.items())),
        "padded_clips": ctx.selection.padded_clips,
        "export_key": fields["export_key"],
        "dataprep_version": __version__,
    }


def image_summary(images: Counter) -> dict[str, Any]:
    """Height, width, channels and encoding of the exported frames (None where they vary)."""
    sizes = sorted(images)
    if not sizes:
        return {"height": None, "width": None, "channels": None, "encoding": None, "sizes": {}}
    heights = {s[0] for s in sizes}
    widths = {s[1] for s in sizes}
    channels = {s[2] for s in sizes}
    encodings = {s[3] for s in sizes}
    return {
        "height": heights.pop() if len(heights) == 1 else None,
        "width": widths.pop() if len(widths) == 1 else None,
        "channels": channels.pop() if len(channels) == 1 else None,
        "encoding": encodings.pop() if len(encodings) == 1 else sorted(encodings),
        "sizes": _sizes(images),
    }


def _sizes(images: Counter) -> dict[str, int]:
    """Examples per frame size, ``{"HxW": count}``."""
    sizes: Counter = Counter()
    for (height, width, _, _), count in images.items():
        sizes[f"{height}x{width}"] += count
    return dict(sorted(sizes.items()))


def augmentation(workspace: Workspace, selection: Selection) -> dict | None:
    """The albumentations dict of the pipeline that made the augmented frames in the export.

    That is the pipeline the last ``dataprep augment`` run saved, when its fingerprint is the one
    on the augmented frame rows; otherwise the rows' fingerprints are given instead of a pipeline
    that did not make the frames.
    """
    if not selection.augmented_in_train:
        return None
    from dataprep import manifests
    from dataprep.augment_stage import materialized_pipeline

    pipeline = materialized_pipeline(workspace)
    if pipeline is not None:
        return pipeline
    frames = manifests.load(workspace, "frames")
    return {
        "pipeline": None,
        "frame_fingerprints": sorted(
            set(frames.loc[frames["augmented"].astype(bool), "fingerprint"])
        ),
        "note": "the augmented frames were not made by the pipeline the last `dataprep augment` "
        "run recorded",
    }
