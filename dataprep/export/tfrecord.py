"""TFRecord shards of ``tf.train.Example`` (frames) or ``tf.train.SequenceExample`` (clips)."""

from __future__ import annotations

from dataprep.export.selection import Example
from dataprep.tfrecord_reader import encode_example, encode_sequence_example, frame_record

# Feature spec written to dataset_info.json and used by the loaders (dtype, per-example shape).
FRAME_FEATURES = {
    "image": {"dtype": "string", "shape": []},
    "height": {"dtype": "int64", "shape": []},
    "width": {"dtype": "int64", "shape": []},
    "channels": {"dtype": "int64", "shape": []},
    "label": {"dtype": "int64", "shape": []},
    "label_name": {"dtype": "string", "shape": []},
    "media_id": {"dtype": "string", "shape": []},
    "frame_index": {"dtype": "int64", "shape": []},
    "copy_index": {"dtype": "int64", "shape": []},
    "timestamp_s": {"dtype": "float32", "shape": []},
}
CLIP_CONTEXT = {
    "label": {"dtype": "int64", "shape": []},
    "label_name": {"dtype": "string", "shape": []},
    "media_id": {"dtype": "string", "shape": []},
    "copy_index": {"dtype": "int64", "shape": []},
    "start_frame": {"dtype": "int64", "shape": []},
    "end_frame": {"dtype": "int64", "shape": []},
    "fps": {"dtype": "float32", "shape": []},
    "length": {"dtype": "int64", "shape": []},
    "height": {"dtype": "int64", "shape": []},
    "width": {"dtype": "int64", "shape": []},
    "channels": {"dtype": "int64", "shape": []},
}
CLIP_SEQUENCE = {
    "frames": {"dtype": "string", "shape": []},
    "frame_index": {"dtype": "int64", "shape": []},
}


DESCRIPTIONS = {
    "image": "the frame's encoded bytes exactly as extracted (JPEG, PNG or WebP), never raw pixels",
    "frames": "the clip's T encoded frames in order (short media padded by repeating the last)",
    "height": "height of the stored frame(s) in pixels",
    "width": "width of the stored frame(s) in pixels",
    "channels": "colour channels (3, RGB)",
    "label": "index into dataset_info.json's class_names",
    "label_name": "the class name (UTF-8)",
    "media_id": "content hash of the source media (manifests/media.parquet)",
    "frame_index": "0-based index of the frame in the decoded stream",
    "copy_index": "0 for extracted frames, 1..N for materialized augmented copies (train only)",
    "timestamp_s": "presentation time of the frame in seconds",
    "start_frame": "frame_index of the clip's first frame",
    "end_frame": "frame_index of the clip's last real frame",
    "fps": "average frame rate of the source video",
    "length": "number of real frames in the clip (the rest is padding; the loaders zero it)",
}


def feature_spec_markdown() -> str:
    """The TFRecord feature reference (docs/reference/tfrecord.md), from the specs above."""

    def table(features: dict) -> str:
        rows = ["| feature | dtype | meaning |", "|---|---|---|"]
        rows += [
            f"| `{name}` | {spec['dtype']} | {DESCRIPTIONS.get(name, '')} |"
            for name, spec in features.items()
        ]
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


def feature_spec(unit: str) -> dict:
    """The feature spec of a TFRecord export of ``unit`` (for dataset_info.json)."""
    if unit == "frame":
        return {"message": "tf.train.Example", "features": FRAME_FEATURES}
    return {
        "message": "tf.train.SequenceExample",
        "context": CLIP_CONTEXT,
        "sequence": CLIP_SEQUENCE,
    }


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


def write_split(ctx, split: str, examples: list[Example]) -> list[str]:
    """Writes one split's examples as byte-sized TFRecord shards; returns the shard names."""
    from dataprep.export.shards import plan_shards, shard_file, shard_name

    plan = plan_shards([ctx.estimated_size(e) for e in examples], ctx.shard_size)
    names = [shard_name(split, i, len(plan), suffix(ctx.compression)) for i in range(len(plan))]
    for name, indices in zip(names, plan, strict=True):
        if name in ctx.done_shards:  # finished by an interrupted run with the same inputs
            ctx.skip([examples[i] for i in indices])
            continue
        target = ctx.out_dir / name
        with shard_file(target, compression=ctx.compression) as stream:
            chosen = [examples[i] for i in indices]
            for example, images, shape in ctx.iter_with_images(chosen):
                message = serialize(
                    ctx.selection.unit, example, images, ctx.class_index(example.label), shape
                )
                stream.write(frame_record(message))
        size = target.stat().st_size
        ctx.bytes_written += size
        ctx.finished(name, size)
    return names
