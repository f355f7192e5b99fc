"""The README's main command: the whole dataprep pipeline on generated example data.

Generates example media, then runs each stage through the real `dataprep` CLI, printing every
command before it runs. Rerunning reuses what is done. Usage: ``python3 examples/quickstart.py
[--workspace DIR]`` (default: ./example-workspace).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_example_media(raw: Path) -> None:
    """Small videos and images in class folders (generated, nothing is downloaded)."""
    from dataprep.testing.media import write_image, write_video

    marker = raw / ".complete"
    if marker.exists():
        print("   (already generated)")
        return
    for label, offset in (("even", 0), ("odd", 1)):
        for i in range(4):
            write_video(raw / label / f"clip{i}.mp4", 24 + 2 * i + offset, fps=12)
            write_image(raw / label / f"still{i}.png", 2 * i + offset)
    marker.touch()


def step(title: str, command: list[str]) -> None:
    print(f"\n== {title}\n$ {shlex.join(command)}", flush=True)
    started = time.monotonic()
    result = subprocess.run(command)
    if result.returncode != 0:
        sys.exit(f"quickstart: `{shlex.join(command)}` failed with exit code {result.returncode}")
    print(f"   ({time.monotonic() - started:.1f}s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path("example-workspace"))
    args = parser.parse_args()
    workspace = args.workspace.resolve()
    raw = workspace.parent / f"{workspace.name}-raw"
    dataprep = [sys.executable, "-m", "dataprep.cli.main"]
    started = time.monotonic()

    print(f"== generate example media in {raw}")
    make_example_media(raw)
    step("create the workspace",
         [*dataprep, "init", str(workspace), "--classes", "even,odd", "--exist-ok"])
    ws = [*dataprep, "-w", str(workspace)]
    step("ingest: probe, hash, dedupe", [*ws, "ingest", str(raw), "--label-from-dir"])
    step("frames: sample by timestamps, resize, encode",
         [*ws, "frames", "--fps", "4", "--size", "64"])
    step("preview: contact sheet, original next to augmented",
         [*ws, "preview", "--pipeline", "medium", "--out", str(workspace / "preview.png")])
    step("split: grouped by media, stratified, stable",
         [*ws, "split", "--ratios", "0.5,0.25,0.25"])
    step("export: TFRecord shards of frames + dataset_info.json", [*ws, "export"])
    step("export: TFRecord clips of 8 frames (SequenceExample)",
         [*ws, "export", "--unit", "clip", "--clip-len", "8", "--clip-stride", "4"])
    step("what the workspace holds", [*ws, "info"])

    print(f"\nDone in {time.monotonic() - started:.0f}s. Outputs:")
    print(f"  media manifest: {workspace / 'manifests' / 'media.parquet'}")
    print(f"  frames manifest: {workspace / 'manifests' / 'frames.parquet'}")
    print(f"  contact sheet: {workspace / 'preview.png'}")
    print(f"  splits manifest: {workspace / 'manifests' / 'splits.parquet'}")
    print(f"  exports (read with dataprep.data.load): {workspace / 'exports'}")


if __name__ == "__main__":
    main()
