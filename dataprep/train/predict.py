"""``predict``: classify new videos and images exactly the way the run's training data was made.

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

A video gets probabilities per clip (per frame for frame models) and for the whole video (the
mean of its clips' probabilities).
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.errors import MediaError, UsageError

PREDICT_SPLIT = "predict"


def sample_frames(path: Path, frames_config: dict[str, Any]) -> list[tuple[int, bytes]]:
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


def _top(probabilities: np.ndarray, class_names: list[str], k: int) -> list[tuple[str, float]]:
    order = np.argsort(-probabilities)[:k]
    return [(class_names[i], float(probabilities[i])) for i in order]


def predict_paths(
    workspace,
    run: str | Path,
    paths: list[Path],
    *,
    top_k: int = 3,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Classifies each file with a run's model.

    Returns:
        One dict per path: ``path``, ``unit`` (frame or clip), ``frames`` (decoded),
        ``probabilities`` (whole media, ``{class: p}``), ``top_k`` (``[(class, p)]``),
        ``prediction``, and ``clips``: per clip (or frame) ``start_frame``, ``end_frame``,
        ``probabilities``, ``top_k``.

    Raises:
        UsageError: when the run or its export is gone, or a path does not exist.
        MediaError: naming a file that cannot be decoded.
    """
    from dataprep.data import naming_corrupt_shards
    from dataprep.train.evaluate import find_run, load_run_model, read_run_config
    from dataprep.train.inputs import check_backend, make_dataset
    from dataprep.train.options import TrainSettings

    check_backend("predict")
    run_dir = find_run(workspace, run)
    config = read_run_config(run_dir)
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
    class_names = list(config["export"]["class_names"])
    model = load_run_model(run_dir)
    results = []
    if progress:
        progress(0, len(paths))
    for position, path in enumerate(paths, 1):
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"{path}: no such file; pass videos or images to classify")
        frames = sample_frames(path, frames_config)
        rows = _records(settings.unit, frames, info)
        with tempfile.TemporaryDirectory(prefix="dataprep-predict-") as tmp:
            _write_temp_export(Path(tmp), info, [row["record"] for row in rows])
            dataset = make_dataset(
                Path(tmp),
                PREDICT_SPLIT,
                settings,
                training=False,
                batch_size=batch_size or settings.batch_size,
            )
            with naming_corrupt_shards(Path(tmp), PREDICT_SPLIT):
                probabilities = np.concatenate(
                    [np.asarray(model(images, training=False), np.float32) for images, _ in dataset]
                )
        mean = probabilities.mean(axis=0)
        results.append(
            {
                "path": str(path),
                "unit": settings.unit,
                "frames": len(frames),
                "prediction": class_names[int(np.argmax(mean))],
                "probabilities": {
                    name: float(p) for name, p in zip(class_names, mean, strict=True)
                },
                "top_k": _top(mean, class_names, top_k),
                "clips": [
                    {
                        "start_frame": int(row["start_frame"]),
                        "end_frame": int(row["end_frame"]),
                        "probabilities": {
                            n: float(p) for n, p in zip(class_names, probs, strict=True)
                        },
                        "top_k": _top(probs, class_names, top_k),
                    }
                    for row, probs in zip(rows, probabilities, strict=True)
                ],
            }
        )
        if progress:
            progress(position, len(paths))
    return results
