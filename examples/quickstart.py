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
    train_gestures(workspace.parent / f"{workspace.name}-gestures", dataprep)


def train_gestures(gestures: Path, dataprep: list[str]) -> None:
    """The reference CNN-LSTM on generated gesture videos (no single frame tells the class)."""
    import json

    raw = gestures.parent / f"{gestures.name}-raw"
    print(f"\n== generate gesture videos in {raw} (a sprite moving left/right/up/down)")
    if (raw / "gestures.json").exists():
        print("   (already generated)")
    else:
        step("gestures", [sys.executable, "-m", "dataprep.testing.gestures", str(raw),
                          "--per-class", "100"])
    step("create the gestures workspace", [*dataprep, "init", str(gestures), "--classes",
                                           "left,right,up,down", "--exist-ok"])
    ws = [*dataprep, "-w", str(gestures), "--quiet"]
    step("ingest", [*ws, "ingest", str(raw), "--label-from-dir"])
    step("frames: every frame, 32 px", [*ws, "frames", "--all", "--size", "32"])
    step("split", [*ws, "split", "--ratios", "0.7,0.15,0.15", "--seed", "0"])
    step("stats: mean/std of the train frames", [*ws, "stats"])
    step("export: clips of 8 frames", [*ws, "export", "--unit", "clip", "--clip-len", "8",
                                       "--clip-stride", "8", "--name", "gestures-clips"])
    run_dir = gestures / "runs" / "quickstart-cnn-lstm"
    if not (run_dir / "metrics.json").exists():
        if run_dir.exists():  # an interrupted earlier run: train again from scratch
            import shutil

            shutil.rmtree(run_dir)
        step("train-baseline: CNN-LSTM (per-frame cnn-bn encoder -> LSTM)",
             [*ws, "train-baseline", "--export", "gestures-clips", "--model", "cnn-lstm",
              "--epochs", "25", "--batch-size", "16", "--lr", "0.003", "--patience", "6",
              "--seed", "0", "--run-name", "quickstart-cnn-lstm"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(f"\nCNN-LSTM test accuracy on gesture clips: {metrics['test_accuracy']:.4f}")
    print(f"  training curves: {run_dir / 'curves.png'}")
    print(f"  confusion matrix: {run_dir / 'confusion.png'}")


if __name__ == "__main__":
    main()
