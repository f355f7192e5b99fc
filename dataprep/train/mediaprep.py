"""Preparing files from outside the workspace exactly the way a run's training data was made
(for ``predict`` and ``enroll``).

For each file:

1. Frames are decoded, sampled and resized by :func:`dataprep.decode.read_frames` with the
   workspace's ``[frames]`` settings recorded in the run's ``config.json`` (sampling, size, resize).
2. Each frame is encoded with the recorded format and quality, as ``dataprep frames`` writes it.
3. Clip models get the export's windows (clip length and stride from ``dataset_info.json``; a
   video shorter than a clip is padded by repeating its last frame), cut to the run's clip length.
4. The encoded frames are written as a one-split TFRecord export in a temporary folder (with the
   run's export's ``dataset_info.json``: same stats, image size and encoding) and read back with
   the run's own evaluation pipeline (:func:`dataprep.train.inputs.make_dataset`): decoding,
   resizing and normalization are the very code the model was evaluated with.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.errors import MediaError, UsageError

PREDICT_SPLIT = "predict"


def sample_frames(
    path: Path, frames_config: dict[str, Any], max_pixels: int | None = None
) -> list[tuple[int, bytes]]:
    """``(frame_index, encoded bytes)`` of a video's (or image's) frames as ``frames`` stores them.

    Raises:
        MediaError: when the file cannot be decoded or gives no frame.
    """
    from dataprep.decode import read_frames
    from dataprep.imageops import encode_rgb

    decoded = read_frames(
        path,
        sampling=frames_config["sampling"],
        fps=frames_config.get("fps"),
        every=frames_config.get("every"),
        count=frames_config.get("count"),
        size=frames_config.get("size"),
        resize=frames_config.get("resize", "shorter"),
        max_pixels=max_pixels,
    )
    out = [
        (
            frame.frame_index,
            encode_rgb(frame.image, frames_config["format"], frames_config["quality"]),
        )
        for frame in decoded
    ]
    if not out:
        raise MediaError(f"{path}: no frames decoded; check the file plays")
    return out


def clip_windows(frames: list, clip_len: int, clip_stride: int) -> list[tuple[list, int]]:
    """The export's windows: every ``clip_stride`` frames, ``clip_len`` long; a shorter video
    gives one clip padded with its last frame. Returns ``[(frames, real_length)]``."""
    if len(frames) < clip_len:
        return [(frames + [frames[-1]] * (clip_len - len(frames)), len(frames))]
    return [
        (frames[start : start + clip_len], clip_len)
        for start in range(0, len(frames) - clip_len + 1, clip_stride)
    ]


def _records(unit: str, frames: list[tuple[int, bytes]], info: dict[str, Any]) -> list[dict]:
    """One dict per example: ``start_frame``, ``end_frame``, ``record`` (serialized bytes)."""
    from dataprep.data import decode_image
    from dataprep.tfrecord_reader import encode_example, encode_sequence_example

    height, width, channels = decode_image(frames[0][1]).shape
    rows = []
    if unit == "frame":
        for frame_index, data in frames:
            record = encode_example(
                {
                    "image": data,
                    "height": height,
                    "width": width,
                    "channels": channels,
                    "label": 0,
                    "label_name": "",
                    "media_id": "",
                    "frame_index": frame_index,
                    "copy_index": 0,
                    "timestamp_s": 0.0,
                }
            )
            rows.append({"start_frame": frame_index, "end_frame": frame_index, "record": record})
        return rows
    clip = info["clip"]
    for window, length in clip_windows(frames, int(clip["length"]), int(clip["stride"])):
        context = {
            "label": 0,
            "label_name": "",
            "media_id": "",
            "copy_index": 0,
            "start_frame": window[0][0],
            "end_frame": window[length - 1][0],
            "fps": 0.0,
            "length": length,
            "height": height,
            "width": width,
            "channels": channels,
        }
        record = encode_sequence_example(
            context,
            {"frames": [data for _, data in window], "frame_index": [index for index, _ in window]},
        )
        rows.append(
            {"start_frame": window[0][0], "end_frame": window[length - 1][0], "record": record}
        )
    return rows


def _write_temp_export(folder: Path, info: dict[str, Any], records: list[bytes]) -> None:
    from dataprep.tfrecord_reader import frame_record

    shard = f"{PREDICT_SPLIT}-00000-of-00001.tfrecord"
    (folder / shard).write_bytes(b"".join(frame_record(r) for r in records))
    temp_info = copy.deepcopy(info)
    temp_info["compression"] = "none"
    temp_info["splits"] = {
        PREDICT_SPLIT: {"examples": len(records), "shards": [shard], "by_class": {}}
    }
    (folder / "dataset_info.json").write_text(json.dumps(temp_info), encoding="utf-8")


@dataclass(frozen=True)
class RunInputs:
    """What preparing a file for a run needs: its settings, frame settings and export info."""

    run_dir: Path
    config: dict[str, Any]
    settings: Any  # TrainSettings
    frames_config: dict[str, Any]
    info: dict[str, Any]
    max_pixels: int | None = None  # images from outside larger than this are refused unread

    @property
    def class_names(self) -> list[str]:
        return list(self.config["export"]["class_names"])


def run_inputs(run_dir: Path, config: dict[str, Any], max_pixels: int | None = None) -> RunInputs:
    """The run's frame settings and export info, checked. ``max_pixels``: the workspace's
    ``[ingest] max_pixels``, for the files it will be given (None: the default limit).

    Raises:
        UsageError: when the run has no frame settings or its export is gone.
    """
    from dataprep.train.options import TrainSettings

    frames_config = config.get("frames")
    if not frames_config:
        raise UsageError(
            f"{run_dir}/config.json has no frame settings; train the run again inside its workspace"
        )
    export_dir = Path(config["export"]["dir"])
    info_path = export_dir / "dataset_info.json"
    if not info_path.is_file():
        raise UsageError(
            f"the run's export {export_dir} is gone (no dataset_info.json); "
            f"export it again to predict (normalization stats come from it)"
        )
    info = json.loads(info_path.read_text(encoding="utf-8"))
    settings = TrainSettings.from_resolved(config["resolved"])
    return RunInputs(run_dir, config, settings, frames_config, info, max_pixels)


def files_outputs(
    model,
    paths: list[Path],
    inputs: RunInputs,
    batch_size: int | None = None,
    chunk: int = 256,
    errors: dict[str, str] | None = None,
) -> Iterator[tuple[Path, int, list[dict[str, Any]], np.ndarray]]:
    """The model's outputs for every clip (or frame) of each file, file after file.

    Files are prepared ``chunk`` at a time into one temporary export and read in one pass (one
    tf.data pipeline per chunk, not per file).

    Args:
        errors: when given, a file that cannot be decoded (or is too large) is left out and its
            one-line error kept here by path; otherwise its error stops the run.

    Yields:
        ``(path, frames decoded, rows, outputs)``: ``rows`` hold ``start_frame`` and
        ``end_frame`` of each example, ``outputs`` its probabilities or embedding.

    Raises:
        UsageError: when a path is not a file.
        MediaError: naming a file that cannot be decoded (without ``errors``).
    """
    for start in range(0, len(paths), chunk):
        prepared = []
        for path in map(Path, paths[start : start + chunk]):
            if not path.is_file():
                raise UsageError(f"{path}: no such file; pass videos or images")
            try:
                frames = sample_frames(path, inputs.frames_config, inputs.max_pixels)
            except MediaError as exc:
                if errors is None:
                    raise
                errors[str(path)] = str(exc)
                continue
            prepared.append(
                (path, len(frames), _records(inputs.settings.unit, frames, inputs.info))
            )
        if not prepared:
            continue
        records = [row["record"] for _, _, rows in prepared for row in rows]
        outputs = _run_records(model, records, inputs, batch_size)
        offset = 0
        for path, frame_count, rows in prepared:
            yield path, frame_count, rows, outputs[offset : offset + len(rows)]
            offset += len(rows)


def _run_records(model, records: list[bytes], inputs: RunInputs, batch_size) -> np.ndarray:
    from dataprep.data import naming_corrupt_shards
    from dataprep.train.inputs import make_dataset

    settings = inputs.settings
    with tempfile.TemporaryDirectory(prefix="dataprep-predict-") as tmp:
        _write_temp_export(Path(tmp), inputs.info, records)
        dataset = make_dataset(
            Path(tmp),
            PREDICT_SPLIT,
            settings,
            training=False,
            batch_size=batch_size or settings.batch_size,
        )
        with naming_corrupt_shards(Path(tmp), PREDICT_SPLIT):
            return np.concatenate(
                [np.asarray(model(images, training=False), np.float32) for images, _ in dataset]
            )
