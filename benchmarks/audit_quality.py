"""Measures ``dataprep audit`` against planted problems: recall and precision per kind.

Everything runs through the normal pipeline (the ``dataprep`` command) on generated data with
seeds the audit was never tuned on:

* ``duplicates``: a gesture set (:func:`dataprep.testing.planted.write_planted_gestures`) with
  re-encoded, resized, trimmed (and half of them cropped) copies under new names in other class
  folders, black and frozen clips; ingest, split, audit; then ``split --group-by
  near-duplicates --reset`` and a count of the planted pairs that still straddle splits.
* ``digits`` / ``gestures``: 5% of the media moved to a wrong class folder; the normal pipeline
  (frames, split 50/10/40, stats, export, train-baseline) and ``audit --run``; of the top-k
  suspects (k = planted errors among the media scored out of sample), the share that are planted.

Usage: ``python3 benchmarks/audit_quality.py [--only duplicates,digits,gestures] [--out FILE]``
(the label-suspect parts train small models: minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEED = 2026  # never used while developing the audit (development used seeds 7 and 100-102)


def dataprep(ws: Path, *args: str) -> str:
    env = {**os.environ, "DATAPREP_WORKSPACE": str(ws)}
    done = subprocess.run(
        ["dataprep", "--quiet", *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode not in (0, 1):
        raise RuntimeError(f"dataprep {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _export(ws: Path, **options) -> None:
    """The export stage through the library (the same code ``dataprep export`` calls)."""
    from dataprep.data.info import info_path
    from dataprep.export.dataset import export_dataset
    from dataprep.workspace import open_workspace

    if not info_path(Path(ws) / "exports" / options["name"]).exists():
        export_dataset(open_workspace(ws), **options)


def _ids_by_path(ws: Path, root: Path) -> dict[str, str]:
    from dataprep import manifests
    from dataprep.workspace import open_workspace

    media = manifests.load(open_workspace(ws), "media")
    out = {}
    for media_id, paths in zip(media["media_id"], media["paths"], strict=True):
        for path in paths:
            out[str(Path(path).resolve().relative_to(root.resolve()))] = media_id
    return out


def _audit(ws: Path, *args: str):
    import pandas as pd

    data = json.loads(dataprep(ws, "audit", "--json", *args))
    return data, pd.read_parquet(Path(ws) / "manifests" / "audit.parquet")


def _pr(found: set, truth: set) -> dict:
    hit = len(found & truth)
    return {
        "planted": len(truth),
        "found": len(found),
        "true_positives": hit,
        "recall": round(hit / len(truth), 4) if truth else None,
        "precision": round(hit / len(found), 4) if found else None,
    }


def measure_duplicates(work: Path, per_class: int = 100) -> dict:
    from dataprep.testing.gestures import GestureSpec
    from dataprep.testing.planted import PlantSpec, write_planted_gestures

    raw, ws = work / "raw", work / "ws"
    truth = write_planted_gestures(
        raw, GestureSpec(per_class=per_class, seed=SEED), PlantSpec(flipped=0.0, seed=SEED)
    )
    subprocess.run(
        ["dataprep", "init", str(ws), "--classes", "left,right,up,down"],
        check=True,
        capture_output=True,
    )
    dataprep(ws, "ingest", str(raw), "--label-from-dir")
    dataprep(ws, "split", "--seed", "0")
    ids = _ids_by_path(ws, raw)
    started = time.monotonic()
    summary, findings = _audit(ws, "--html", str(work / "report.html"))
    seconds = time.monotonic() - started
    pairs = findings[findings["kind"] == "near_duplicate"]
    found = {frozenset(p) for p in zip(pairs["media_id"], pairs["other_media_id"], strict=True)}
    planted = {frozenset((ids[d["original"]], ids[d["copy"]])) for d in truth["duplicates"]}
    splits = _splits(ws)
    leaks = findings[findings["kind"] == "leak"]
    found_leaks = {
        frozenset(p) for p in zip(leaks["media_id"], leaks["other_media_id"], strict=True)
    }
    planted_leaks = {p for p in planted if len({splits[m] for m in p}) > 1}

    def whole(kind):
        rows = findings[(findings["kind"] == kind) & (findings["action"] == "drop_media")]
        return set(rows["media_id"])

    result = {
        "media": summary["media"],
        "audit_seconds": round(seconds, 1),
        "near_duplicate_pairs": _pr(found, planted),
        "leaks": _pr(found_leaks, planted_leaks),
        "blank_media": _pr(whole("blank"), {ids[p] for p in truth["black"]}),
        "frozen_media": _pr(whole("frozen"), {ids[p] for p in truth["frozen"]}),
        "frame_level_findings": {
            k: int((findings["kind"] == k).sum()) for k in ("blank", "frozen", "dark", "blurry")
        },
    }
    dataprep(ws, "split", "--group-by", "near-duplicates", "--reset", "--seed", "0")
    splits = _splits(ws)
    result["group_by_near_duplicates"] = {
        "planted_pairs_across_splits": sum(len({splits[m] for m in p}) > 1 for p in planted),
        "found_pairs_across_splits": sum(len({splits[m] for m in p}) > 1 for p in found),
    }
    summary_after, _ = _audit(ws)
    result["group_by_near_duplicates"]["leak_findings_after"] = summary_after["by_kind"].get(
        "leak", 0
    )
    return result


def _splits(ws: Path) -> dict[str, str]:
    import pandas as pd

    frame = pd.read_parquet(Path(ws) / "manifests" / "splits.parquet")
    return dict(zip(frame["media_id"], frame["split"], strict=True))


def _suspects(ws: Path, run: str, flipped_ids: set[str]) -> dict:
    summary, findings = _audit(ws, "--run", run)
    from dataprep.audit.suspects import held_out_probabilities, rank_suspects
    from dataprep.workspace import open_workspace

    ranked = rank_suspects(held_out_probabilities(open_workspace(ws), run))
    scored = {s.media_id for s in ranked}
    planted = flipped_ids & scored
    k = len(planted)
    top = {s.media_id for s in ranked[:k]}
    flagged = set(findings.loc[findings["kind"] == "label_suspect", "media_id"])
    metrics = json.loads((Path(ws) / "runs" / run / "metrics.json").read_text())
    return {
        "media_scored_out_of_sample": len(scored),
        "planted_among_scored": k,
        "top_k_precision": round(len(top & planted) / k, 4) if k else None,
        "flagged": _pr(flagged, planted),
        "run_test_accuracy": metrics.get("test_accuracy"),
        "audit_seconds": summary["seconds"],
    }


def measure_digits(work: Path, epochs: int = 30) -> dict:
    from dataprep.testing.digits import write_digits
    from dataprep.testing.planted import flip_folder_labels

    raw, ws = work / "raw", work / "ws"
    write_digits(raw, size=32)
    flipped = flip_folder_labels(raw, 0.05, SEED)
    subprocess.run(
        ["dataprep", "init", str(ws), "--classes", ",".join(map(str, range(10)))],
        check=True,
        capture_output=True,
    )
    dataprep(ws, "ingest", str(raw), "--label-from-dir")
    dataprep(ws, "frames", "--size", "32", "--format", "png")
    dataprep(ws, "split", "--ratios", "0.5,0.1,0.4", "--seed", "0")
    dataprep(ws, "stats")
    _export(ws, unit="frame", name="digits")
    dataprep(
        ws, "train-baseline", "--export", "digits", "--model", "cnn-bn", "--epochs", str(epochs),
        "--lr", "0.003", "--patience", "8", "--seed", "0", "--run-name", "digits-cnn-bn",
    )  # fmt: skip
    ids = _ids_by_path(ws, raw)
    return {
        "flipped": len(flipped),
        **_suspects(ws, "digits-cnn-bn", {ids[f["path"]] for f in flipped}),
    }


def measure_gestures(work: Path, per_class: int = 100, epochs: int = 25) -> dict:
    from dataprep.testing.gestures import GestureSpec
    from dataprep.testing.planted import PlantSpec, write_planted_gestures

    raw, ws = work / "raw", work / "ws"
    if (raw / "truth.json").exists():  # a rerun resumes after the data preparation
        truth = json.loads((raw / "truth.json").read_text())
    else:
        truth = write_planted_gestures(
            raw,
            GestureSpec(per_class=per_class, seed=SEED + 1),
            PlantSpec(duplicates=0.0, black=0, frozen=0, flipped=0.05, seed=SEED + 1),
        )
    if not (ws / "manifests" / "stats.json").exists():
        subprocess.run(
            ["dataprep", "init", str(ws), "--classes", "left,right,up,down"],
            check=True,
            capture_output=True,
        )
        dataprep(ws, "ingest", str(raw), "--label-from-dir")
        dataprep(ws, "frames", "--all", "--size", "32")
        dataprep(ws, "split", "--ratios", "0.5,0.1,0.4", "--seed", "0")
        dataprep(ws, "stats")
    _export(ws, unit="clip", clip_len=8, clip_stride=8, name="clips")
    dataprep(
        ws, "train-baseline", "--export", "clips", "--model", "cnn-lstm", "--epochs", str(epochs),
        "--batch-size", "16", "--lr", "0.003", "--patience", "6", "--seed", "0",
        "--run-name", "gestures-cnn-lstm",
    )  # fmt: skip
    ids = _ids_by_path(ws, raw)
    flipped = {ids[f["path"]] for f in truth["flipped"]}
    return {"flipped": len(flipped), **_suspects(ws, "gestures-cnn-lstm", flipped)}


PARTS = {"duplicates": measure_duplicates, "digits": measure_digits, "gestures": measure_gestures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated parts: duplicates, digits, gestures")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "audit_quality.json"
    )
    parser.add_argument("--workdir", type=Path, help="keep the generated data here")
    args = parser.parse_args(argv)
    parts = args.only.split(",") if args.only else list(PARTS)
    results = {}
    with tempfile.TemporaryDirectory(prefix="dataprep-audit-q-") as tmp:
        base = args.workdir or Path(tmp)
        for name in parts:
            work = base / name
            work.mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            results[name] = PARTS[name](work)
            results[name]["seconds"] = round(time.monotonic() - started, 1)
            print(json.dumps({name: results[name]}, indent=2), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    args.out.write_text(json.dumps({**previous, **results, "seed": SEED}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
