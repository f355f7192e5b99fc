"""``dataset_info.json``: the one place it is read and written, and the shard list it holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dataprep.errors import DataprepError, UsageError

INFO_NAME = "dataset_info.json"


class ExportNotReady(DataprepError):
    """The folder is not a complete dataprep TFRecord export."""


def info_path(export_dir: Path | str) -> Path:
    """Where an export's ``dataset_info.json`` is."""
    return Path(export_dir) / INFO_NAME


def read_info(export_dir: Path | str, *, missing_ok: bool = False) -> dict[str, Any]:
    """Reads ``dataset_info.json`` of an export.

    Args:
        export_dir: the export folder.
        missing_ok: return ``{}`` instead of raising when the file is absent or unreadable
            (for callers that only ask whether an export is there).

    Raises:
        ExportNotReady: when the file is absent (the export is missing or unfinished) or is not
            valid JSON.
    """
    path = info_path(export_dir)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise ExportNotReady(
            f"{path} is missing: {export_dir} is not a finished export; run `dataprep export` "
            "(again) to complete it"
        ) from None
    except (OSError, ValueError) as exc:
        if missing_ok:
            return {}
        raise ExportNotReady(f"{path}: not valid JSON ({exc}); re-run `dataprep export`") from None


def write_info(export_dir: Path | str, info: dict[str, Any]) -> Path:
    """Writes ``dataset_info.json`` atomically (its presence marks a complete export)."""
    from dataprep.atomic import atomic_write_text

    path = info_path(export_dir)
    atomic_write_text(path, json.dumps(info, indent=2, sort_keys=False) + "\n")
    return path


def shard_paths(export_dir: Path | str, split: str, info: dict | None = None) -> list[Path]:
    """The shard files of ``split``, in their written order.

    Raises:
        UsageError: when the export is not TFRecord or has no such split, or it is empty.
    """
    info = info or read_info(export_dir)
    if info.get("format") != "tfrecord":
        raise UsageError(
            f"{export_dir} is a {info.get('format')} export; the loaders read tfrecord exports "
            "(use keras.utils.image_dataset_from_directory or pandas for the others)"
        )
    if split not in info["splits"]:
        raise UsageError(
            f"split {split!r} is not in {export_dir}; use one of {', '.join(info['splits'])}"
        )
    shards = info["splits"][split]["shards"]
    if not shards:
        raise UsageError(
            f"split {split!r} of {export_dir} has no examples; check "
            "`dataprep split` and the labels"
        )
    return [Path(export_dir) / name for name in shards]
