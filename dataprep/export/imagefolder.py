"""``--format imagefolder``: ``<split>/<class_name>/<media_id>_<frame_index>_<copy>.<ext>``.

The layout that ``keras.utils.image_dataset_from_directory`` and torchvision's ``ImageFolder``
read. Frame files are copied byte for byte (each to a temporary name, then renamed).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dataprep.errors import DiskError, os_error_message
from dataprep.export.selection import Example
from dataprep.safepath import inside

_EXTENSIONS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}


def feature_spec(unit: str) -> dict:
    """What the image tree holds (for dataset_info.json)."""
    return {
        "layout": "<split>/<class_name>/<media_id>_<frame_index:06d>_<copy_index>.<ext>",
        "label": "the folder name (index in class_names)",
    }


def file_name(example: Example, encoding: str) -> str:
    """The file name of a frame example inside its class folder."""
    frame = example.frame
    ext = _EXTENSIONS.get(encoding) or Path(frame.path).suffix
    return f"{example.media_id}_{frame.frame_index:06d}_{example.copy_index}{ext}"


def write_split(ctx, split: str, examples: list[Example]) -> list[str]:
    """Copies one split's frames into class folders; returns [] (there are no shards).

    Every path is built through :func:`dataprep.safepath.inside`, so a class name that slipped
    into the labels (``../evil``) is refused before anything is written. Files in the split's
    folder that this export did not write are removed.

    Raises:
        UsageError: naming a class folder or file that would leave the export folder.
        DiskError: naming the file that could not be written (disk full...).
    """
    split_dir = inside(ctx.out_dir, split)
    folders = {name: inside(split_dir, name) for name in ctx.selection.class_names}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    wanted: set[Path] = set()
    for example, images, _ in ctx.iter_with_images(examples):
        name = file_name(example, _encoding(images[0], ""))
        target = inside(folders.get(example.label) or inside(split_dir, example.label), name)
        wanted.add(target)
        if _same_bytes(target, images[0]):
            continue
        tmp = target.with_name(f".{target.name}.tmp")
        try:
            tmp.write_bytes(images[0])
            os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise DiskError(os_error_message(target, exc)) from None
        ctx.bytes_written += len(images[0])
    _remove_unwanted(split_dir, wanted)
    return []


def _same_bytes(target: Path, data: bytes) -> bool:
    return target.exists() and target.stat().st_size == len(data) and target.read_bytes() == data


def _remove_unwanted(split_dir: Path, wanted: set[Path]) -> None:
    if split_dir.exists():
        for path in sorted(split_dir.rglob("*"), reverse=True):
            if path.is_file() and path not in wanted:
                path.unlink()
            elif path.is_dir() and path.parent != split_dir and not any(path.iterdir()):
                shutil.rmtree(path)


def _encoding(data: bytes, fallback: str) -> str:
    if data[:2] == b"\xff\xd8":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF":
        return "webp"
    return fallback
