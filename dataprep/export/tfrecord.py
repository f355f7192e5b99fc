"""TFRecord shards of ``tf.train.Example`` (frames) or ``tf.train.SequenceExample`` (clips)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dataprep.tfrecord_reader import encode_example, encode_sequence_example, frame_record

if TYPE_CHECKING:
    from dataprep.export.selection import Example


@dataclass(frozen=True)
class Feature:
    """One feature of the exported messages: the single declaration that dataset_info.json's
    ``feature_spec``, the loaders' parse specs and docs/reference/tfrecord.md derive from."""

    dtype: str  # string, int64 or float32 (scalars: one value per example or time step)
    description: str
    text: bool = False  # a string feature holding UTF-8 text (decoded to str by iter_examples)


_H = Feature("int64", "height of the stored frame(s) in pixels")
_W = Feature("int64", "width of the stored frame(s) in pixels")
_C = Feature("int64", "colour channels (3, RGB)")
_LABEL = Feature("int64", "index into dataset_info.json's class_names")
_LABEL_NAME = Feature("string", "the class name (UTF-8)", text=True)
_MEDIA_ID = Feature("string", "content hash of the source media (manifests/media.parquet)", True)
_FRAME_INDEX = Feature("int64", "0-based index of the frame in the decoded stream")
_COPY_INDEX = Feature(
    "int64", "0 for extracted frames, 1..N for materialized augmented copies (train only)"
)

FRAME_FEATURES: dict[str, Feature] = {
    "image": Feature(
        "string",
        "the frame's encoded bytes exactly as extracted (JPEG, PNG or WebP), never raw pixels",
    ),
    "height": _H,
    "width": _W,
    "channels": _C,
    "label": _LABEL,
    "label_name": _LABEL_NAME,
    "media_id": _MEDIA_ID,
    "frame_index": _FRAME_INDEX,
    "copy_index": _COPY_INDEX,
    "timestamp_s": Feature("float32", "presentation time of the frame in seconds"),
}
CLIP_CONTEXT: dict[str, Feature] = {
    "label": _LABEL,
    "label_name": _LABEL_NAME,
    "media_id": _MEDIA_ID,
    "copy_index": _COPY_INDEX,
    "start_frame": Feature("int64", "frame_index of the clip's first frame"),
    "end_frame": Feature("int64", "frame_index of the clip's last real frame"),
    "fps": Feature("float32", "average frame rate of the source video"),
    "length": Feature(
        "int64", "number of real frames in the clip (the rest is padding; the loaders zero it)"
    ),
    "height": _H,
    "width": _W,
    "channels": _C,
}
CLIP_SEQUENCE: dict[str, Feature] = {
    "frames": Feature(
        "string",
        "the clip's T encoded frames in order (short media padded by repeating the last)",
    ),
    "frame_index": _FRAME_INDEX,
}
TEXT_FEATURES = frozenset(
    name for group in (FRAME_FEATURES, CLIP_CONTEXT) for name, f in group.items() if f.text
)


def _spec_json(features: dict[str, Feature]) -> dict:
    return {name: {"dtype": f.dtype, "shape": []} for name, f in features.items()}


def feature_spec(unit: str) -> dict:
    """The feature spec of a TFRecord export of ``unit`` (for dataset_info.json)."""
    if unit == "frame":
        return {"message": "tf.train.Example", "features": _spec_json(FRAME_FEATURES)}
    return {
        "message": "tf.train.SequenceExample",
        "context": _spec_json(CLIP_CONTEXT),
        "sequence": _spec_json(CLIP_SEQUENCE),
    }


def parse_spec(features: dict[str, Feature], names: tuple[str, ...], defaults=None) -> dict:
    """``tf.io`` parse spec of ``names`` (FixedLenFeature scalars; ``frames`` and other sequence
    features as FixedLenSequenceFeature), from the declarations above. Imports TensorFlow."""
    import tensorflow as tf

    sequence = features is CLIP_SEQUENCE
    spec = {}
    for name in names:
        dtype = tf.as_dtype(features[name].dtype)
        if sequence:
            spec[name] = tf.io.FixedLenSequenceFeature([], dtype)
        elif defaults and name in defaults:
            spec[name] = tf.io.FixedLenFeature([], dtype, default_value=defaults[name])
        else:
            spec[name] = tf.io.FixedLenFeature([], dtype)
    return spec


def feature_spec_markdown() -> str:
    """The TFRecord feature reference (docs/reference/tfrecord.md), from the declarations."""

    def table(features: dict[str, Feature]) -> str:
        rows = ["| feature | dtype | meaning |", "|---|---|---|"]
        rows += [f"| `{name}` | {f.dtype} | {f.description} |" for name, f in features.items()]
        return "\n".join(rows)

    return "\n\n".join(
        [
            "# TFRecord features",
            "Generated from `dataprep/export/tfrecord.py`. Shards are named "
            "`<split>-NNNNN-of-MMMMM.tfrecord` (`.tfrecord.gz` with `--compression gzip`); "
            "`dataset_info.json` beside them holds this spec, the class names, counts, stats and "
            "fingerprints, and is written last.",
            "## Frames (`--unit frame`): one `tf.train.Example` per frame",
            table(FRAME_FEATURES),
            "## Clips (`--unit clip`): one `tf.train.SequenceExample` per clip",
            "Context features:",
            table(CLIP_CONTEXT),
            "Sequence features (one entry per time step, T per clip):",
            table(CLIP_SEQUENCE),
        ]
    )


def serialize(
    unit: str, example: Example, images: list[bytes], label_index: int, shape: tuple[int, int, int]
) -> bytes:
    """The serialized message of one example (``images``: one encoded image per frame)."""
    height, width, channels = shape
    if unit == "frame":
        frame = example.frame
        return encode_example(
            {
                "image": images[0],
                "height": height,
                "width": width,
                "channels": channels,
                "label": label_index,
                "label_name": example.label,
                "media_id": example.media_id,
                "frame_index": frame.frame_index,
                "copy_index": example.copy_index,
                "timestamp_s": float(frame.timestamp_s),
            }
        )
    context = {
        "label": label_index,
        "label_name": example.label,
        "media_id": example.media_id,
        "copy_index": example.copy_index,
        "start_frame": example.start_frame,
        "end_frame": example.end_frame,
        "fps": float(example.fps),
        "length": example.length,
        "height": height,
        "width": width,
        "channels": channels,
    }
    return encode_sequence_example(
        context,
        {"frames": images, "frame_index": [f.frame_index for f in example.frames]},
    )


def suffix(compression: str) -> str:
    """File suffix of a shard."""
    return ".tfrecord.gz" if compression == "gzip" else ".tfrecord"


def write_split(ctx, split: str, examples) -> list[str]:
    """Writes one split's examples (an :class:`~dataprep.export.plan_store.ExampleStore` with
    its shards planned) as byte-sized TFRecord shards; returns the shard names.

    On an engine other than local, the export driver calls
    :func:`dataprep.export.shard_tasks.write_split_on_engine` instead (one task per shard).
    """
    from dataprep.export.shards import shard_names

    names = shard_names(split, len(examples.counts), suffix(ctx.compression))
    for name, chosen in zip(names, examples.shards(), strict=True):
        if name in ctx.done_shards:  # finished by an interrupted run with the same inputs
            ctx.skip(name, chosen)
            continue
        before = Counter(ctx.images)
        ctx.shard_written(name, write_shard(ctx, ctx.out_dir / name, chosen), before)
    return names


def write_shard(ctx, target, chosen: list[Example]) -> int:
    """Writes one shard of ``chosen`` examples (temporary name, renamed); returns its size."""
    from dataprep.export.shards import shard_file

    with shard_file(target, compression=ctx.compression) as stream:
        for example, images, shape in ctx.iter_with_images(chosen):
            message = serialize(
                ctx.selection.unit, example, images, ctx.class_index(example.label), shape
            )
            stream.write(frame_record(message))
    return target.stat().st_size
