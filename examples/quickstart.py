"""The README's main command: the whole dataprep pipeline on generated example gestures.

Generates short videos of a sprite moving left, right, up or down (no single frame tells the
class), then runs every stage through the real `dataprep` CLI, printing each command before it
runs: init, ingest, frames, preview, labels import (a Label Studio export generated for the
example), split, stats, export of clips, train-baseline (CNN-LSTM), evaluate, and predict on
videos the workspace has never seen. Rerunning reuses what is done.

Usage: ``python3 examples/quickstart.py [--workspace DIR] [--per-class N] [--epochs N]``
(default workspace: ./example-workspace).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

CLASSES = ["left", "right", "up", "down"]
RUN_NAME = "quickstart-cnn-lstm"
EXPORT_NAME = "gestures-clips"


def step(title: str, command: list[str], *, ok_codes: tuple[int, ...] = (0,)) -> None:
    """Prints and runs one dataprep command; stops the walkthrough if it fails."""
    shown = ["dataprep", *command[3:]] if command[1:3] == ["-m", "dataprep.cli.main"] else command
    print(f"\n== {title}\n$ {shlex.join(shown)}", flush=True)
    started = time.monotonic()
    result = subprocess.run(command)
    if result.returncode not in ok_codes:
        sys.exit(f"quickstart: `{shlex.join(shown)}` failed with exit code {result.returncode}")
    print(f"   ({time.monotonic() - started:.1f}s)", flush=True)


def generate_media(raw: Path, unseen: Path, per_class: int) -> None:
    """The example videos (seed 0) and a few unseen ones for predict (another seed)."""
    from dataprep.testing.gestures import GestureSpec, write_gesture_set

    for folder, spec in (
        (raw, GestureSpec(per_class=per_class, seed=0)),
        (unseen, GestureSpec(per_class=1, seed=12345)),
    ):
        marker = folder / ".complete"
        if marker.exists():
            print(f"   {folder}: already generated")
            continue
        write_gesture_set(folder, spec)
        marker.touch()
        print(f"   {folder}: {4 * spec.per_class} videos")


def write_labelstudio_export(workspace: Path, raw: Path, path: Path) -> None:
    """A Label Studio JSON export of the example, as an annotator would have made it.

    Each video gets one whole-video choice (its class). The export carries file names but no
    media_id, like a project whose tasks were not made by `dataprep labels push`, so `labels
    import` matches tasks to media by file name.
    """
    from dataprep import manifests
    from dataprep.testing.labelstudio import ExportAnnotation, write_export
    from dataprep.workspace import open_workspace

    media = [
        r
        for r in manifests.records(manifests.load(open_workspace(workspace), "media"))
        if r["status"] == "ok"
    ]
    annotations = [
        ExportAnnotation(r["media_id"], choices=[Path(r["path"]).parent.name]) for r in media
    ]
    write_export(path, media, annotations, media_root=raw, with_media_id=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path("example-workspace"))
    parser.add_argument("--per-class", type=int, default=100, help="videos per class")
    parser.add_argument("--epochs", type=int, default=25)
    args = parser.parse_args()
    workspace = args.workspace.resolve()
    raw = workspace.parent / f"{workspace.name}-media"
    unseen = workspace.parent / f"{workspace.name}-unseen"
    dataprep = [sys.executable, "-m", "dataprep.cli.main"]
    ws = [*dataprep, "-w", str(workspace)]
    started = time.monotonic()

    print(f"== generate example gesture videos in {raw}")
    generate_media(raw, unseen, args.per_class)
    step(
        "init: create the workspace",
        [*dataprep, "init", str(workspace), "--classes", ",".join(CLASSES), "--exist-ok"],
    )
    step("ingest: find media by content, hash, probe, dedupe", [*ws, "ingest", str(raw)])
    step("frames: every frame, shorter side 32 px, JPEG", [*ws, "frames", "--all", "--size", "32"])
    step(
        "preview: a contact sheet, originals next to augmented (light preset)",
        [*ws, "preview", "--pipeline", "light", "--out", str(workspace / "preview.png")],
    )
    export_json = workspace / "labelstudio-export.json"
    print(f"\n== write a Label Studio export of the annotations: {export_json}")
    write_labelstudio_export(workspace, raw, export_json)
    step(
        "labels import: annotations -> manifests/labels.parquet",
        [*ws, "labels", "import", str(export_json)],
    )
    step(
        "split: grouped by video, stratified by class, stable",
        [*ws, "split", "--ratios", "0.7,0.15,0.15", "--seed", "0"],
    )
    step("stats: per-channel mean/std of the train frames", [*ws, "stats"])
    step(
        "export: TFRecord SequenceExamples, clips of 8 frames",
        [
            *ws,
            "export",
            "--unit",
            "clip",
            "--clip-len",
            "8",
            "--clip-stride",
            "8",
            "--name",
            EXPORT_NAME,
        ],
    )
    run_dir = workspace / "runs" / RUN_NAME
    if (run_dir / "metrics.json").exists():
        print(f"\n== train-baseline: already trained ({run_dir})")
    else:
        if run_dir.exists():  # an interrupted earlier run: train again from scratch
            import shutil

            shutil.rmtree(run_dir)
        step(
            "train-baseline: CNN-LSTM (per-frame cnn-bn encoder -> LSTM)",
            [
                *ws,
                "train-baseline",
                "--export",
                EXPORT_NAME,
                "--model",
                "cnn-lstm",
                "--epochs",
                str(args.epochs),
                "--batch-size",
                "16",
                "--lr",
                "0.003",
                "--patience",
                "6",
                "--seed",
                "0",
                "--run-name",
                RUN_NAME,
            ],
        )
    step(
        "evaluate: metrics and plots on the test split",
        [*ws, "evaluate", RUN_NAME, "--split", "test"],
    )
    unseen_videos = sorted(str(p) for p in unseen.rglob("*.mp4"))
    step(
        "predict: videos the workspace has never seen",
        [*ws, "predict", RUN_NAME, *unseen_videos, "--top-k", "2"],
    )
    step("info: every stage of the workspace", [*ws, "info"])

    metrics = json.loads((run_dir / "metrics.json").read_text())
    print(f"\nDone in {time.monotonic() - started:.0f}s. Outputs:")
    for name, path in [
        ("manifests", workspace / "manifests"),
        ("frames", workspace / "frames"),
        ("contact sheet", workspace / "preview.png"),
        ("Label Studio export (input)", export_json),
        ("TFRecords + dataset_info.json", workspace / "exports" / EXPORT_NAME),
        ("run (model.keras, metrics.json, history.csv)", run_dir),
        ("training curves", run_dir / "curves.png"),
        ("confusion matrix", run_dir / "confusion.png"),
    ]:
        print(f"  {name}: {path}")
    print(f"\nCNN-LSTM test accuracy on gesture clips: {metrics['test_accuracy']:.4f}")


if __name__ == "__main__":
    main()
