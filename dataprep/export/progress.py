"""The finished shards of an export in progress, so that a rerun keeps them.

``exports/<name>/.export-progress.jsonl``: a first line with the export's key (its settings and
inputs), then one line per shard, appended once the shard is renamed into place: its name, its
size and the image headers of its examples (``[[height, width, channels, encoding], count]``),
which ``dataset_info.json`` sums up. A rerun with the same key keeps every listed shard whose file
still has that size, and counts its headers from the line instead of reading its frames again
(a resumed export of millions of frames would otherwise read them all in the driver). Appending
costs one line per shard, not the whole list; a line torn by a kill is ignored (that shard is
written again). The file goes when ``dataset_info.json`` is written.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

PROGRESS_NAME = ".export-progress.jsonl"
OLD_NAMES = (".export-progress.json",)  # written by earlier versions: not resumed from


def read_progress(out_dir: Path, run_key: str) -> dict[str, dict[str, Any]]:
    """``{shard: {"size", "images"}}`` finished by an interrupted run with this key whose files
    are whole; the progress file is removed when it belongs to other settings or inputs."""
    for name in OLD_NAMES:
        (out_dir / name).unlink(missing_ok=True)
    path = out_dir / PROGRESS_NAME
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # torn by a kill
    if not entries or entries[0].get("export_key") != run_key:
        path.unlink(missing_ok=True)
        return {}
    done = {}
    for entry in entries[1:]:
        shard = out_dir / entry.get("shard", "")
        if entry.get("shard") and shard.is_file() and shard.stat().st_size == entry.get("size"):
            done[entry["shard"]] = {"size": entry["size"], "images": entry.get("images", [])}
    return done


class ProgressLog:
    """Appends the finished shards of this run (see the module docstring)."""

    def __init__(self, out_dir: Path, run_key: str, kept: dict[str, dict[str, Any]]):
        self.path = out_dir / PROGRESS_NAME
        lines = [{"export_key": run_key}] + [{"shard": k, **v} for k, v in kept.items()]
        tmp = self.path.with_name(f".{PROGRESS_NAME}.tmp")
        tmp.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        os.replace(tmp, self.path)

    def finished(self, shard: str, size: int, images: Counter) -> None:
        line = {"shard": shard, "size": size, "images": [[list(h), n] for h, n in images.items()]}
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(json.dumps(line) + "\n")
            stream.flush()
            os.fsync(stream.fileno())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
