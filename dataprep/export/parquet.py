"""``--format parquet``: frames (or clips) with their encoded bytes and labels, for pandas/Spark.

Files ``<split>-NNNNN-of-MMMMM.parquet`` sized by bytes like TFRecord shards; rows in the same
hashed order; row groups of at most 256 rows, so neither writing nor reading needs the whole
split in memory. ``--compression gzip`` selects Parquet's GZIP codec (images are stored as is).
"""

from __future__ import annotations

from collections import Counter

from dataprep.export.selection import Example

ROW_GROUP = 256


def feature_spec(unit: str) -> dict:
    """Column names and types (for dataset_info.json)."""
    common = {
        "label": "int64",
        "label_name": "string",
        "media_id": "string",
        "copy_index": "int64",
        "height": "int64",
        "width": "int64",
        "channels": "int64",
    }
    if unit == "frame":
        return {
            "columns": {
                "image": "binary",
                **common,
                "frame_index": "int64",
                "timestamp_s": "float64",
            }
        }
    return {
        "columns": {
            "frames": "list<binary>",
            "frame_index": "list<int64>",
            **common,
            "start_frame": "int64",
            "end_frame": "int64",
            "fps": "float64",
            "length": "int64",
        }
    }


def arrow_schema(unit: str):
    """The pyarrow schema of the files."""
    import pyarrow as pa

    common = [
        ("label", pa.int64()),
        ("label_name", pa.string()),
        ("media_id", pa.string()),
        ("copy_index", pa.int64()),
        ("height", pa.int64()),
        ("width", pa.int64()),
        ("channels", pa.int64()),
    ]
    if unit == "frame":
        fields = [
            ("image", pa.binary()),
            *common,
            ("frame_index", pa.int64()),
            ("timestamp_s", pa.float64()),
        ]
    else:
        fields = [
            ("frames", pa.list_(pa.binary())),
            ("frame_index", pa.list_(pa.int64())),
            *common,
            ("start_frame", pa.int64()),
            ("end_frame", pa.int64()),
            ("fps", pa.float64()),
            ("length", pa.int64()),
        ]
    return pa.schema(fields)


def _row(ctx, example: Example, images: list[bytes], shape) -> dict:
    height, width, channels = shape
    row = {
        "label": ctx.class_index(example.label),
        "label_name": example.label,
        "media_id": example.media_id,
        "copy_index": example.copy_index,
        "height": height,
        "width": width,
        "channels": channels,
    }
    if ctx.selection.unit == "frame":
        row.update(
            image=images[0],
            frame_index=example.frame.frame_index,
            timestamp_s=float(example.frame.timestamp_s),
        )
    else:
        row.update(
            frames=images,
            frame_index=[f.frame_index for f in example.frames],
            start_frame=example.start_frame,
            end_frame=example.end_frame,
            fps=float(example.fps),
            length=example.length,
        )
    return row


def write_split(ctx, split: str, examples) -> list[str]:
    """Writes one split (an ``ExampleStore`` with its shards planned) as byte-sized Parquet files;
    returns their names."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dataprep.export.shards import shard_file, shard_names

    schema = arrow_schema(ctx.selection.unit)
    codec = "gzip" if ctx.compression == "gzip" else "none"
    names = shard_names(split, len(examples.counts), ".parquet")
    for name, chosen in zip(names, examples.shards(), strict=True):
        if name in ctx.done_shards:
            ctx.skip(name, chosen)
            continue
        target = ctx.out_dir / name
        before = Counter(ctx.images)
        with (
            shard_file(target) as stream,
            pq.ParquetWriter(stream, schema, compression=codec, write_statistics=False) as writer,
        ):
            rows = []
            for example, images, shape in ctx.iter_with_images(chosen):
                rows.append(_row(ctx, example, images, shape))
                if len(rows) >= ROW_GROUP:
                    writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                    rows = []
            if rows:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
        ctx.shard_written(name, target.stat().st_size, before)
    return names
