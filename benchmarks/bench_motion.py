"""The motion benchmark: the default cnn-lstm over every family x training-set size x seed.

Each family of :mod:`dataprep.testing.motion` is generated as real H.264 videos (one clip per
video) at three training-set sizes (about 100, 200 and 400 training clips; validation 15 and
test 25 clips per class whatever the size), and goes through the normal pipeline: ingest with
labels from the folders, frames (all, 32 px), split (grouped by video, stratified, seeded),
stats, a clip TFRecord export, then ``train_baseline`` with the workspace's defaults (only the
model, the seed and the run name are given). Per family and size it prints the test accuracy
(mean ± std over the seeds), the train/val accuracy gap at the best epoch and the seconds per
epoch (min/median/max over all epochs after the first of every seed), and writes every run to
JSON.

Generated exports are cached (``--cache``, default ``$DATAPREP_MOTION_CACHE`` or
``~/.cache/dataprep/bench-motion``), keyed by the family's settings, the size and the
generator's version, so a rerun only trains. Results are written after every run; ``--resume``
skips the runs already in ``--out``.

Usage::

    python3 benchmarks/bench_motion.py [--quick] [--families a,b] [--sizes 100,200]
        [--seeds 0,1,2] [--label NAME] [--out FILE] [--resume]

``benchmarks/run.py --only motion`` runs it with the others (``--quick``: two families at 100
clips, one seed).

``--throughput`` measures training speed instead: the default cnn-lstm at 64x64, clips of 12
frames (``texture-noisy`` drawn at 64 px, 168 training clips, as in issue 13), a fixed number of
epochs, images/s over the whole run (every epoch, the first included) and seconds per epoch
(min/median/max), next to the run's own training dataset iterated alone, without the model
(the ratio training/loader, i.e. loader time over training time, stays well below 1: the input
pipeline keeps ahead). ``--baseline-commit SHA`` measures that commit's code on the
same export in the same run (a ``git archive`` in a temporary folder, or ``--baseline-tree DIR``
holding that commit's files), alternating the two.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import statistics
import sys
import time
import zlib
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import row  # noqa: E402

BENCH = "motion"
GENERATOR_VERSION = 1  # bump when dataprep.testing.motion draws different clips
SIZES = (100, 200, 400)
SEEDS = (0, 1, 2)
VAL_PER_CLASS = 15
TEST_PER_CLASS = 25
QUICK_FAMILIES = ("shapes-flat", "shape-x-direction")


def cache_root(cache: Path | None = None) -> Path:
    """Where generated workspaces are kept between runs."""
    if cache is not None:
        return Path(cache)
    env = os.environ.get("DATAPREP_MOTION_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "dataprep" / "bench-motion"


def prepare(family_or_name, n_train: int, cache: Path, log=print):
    """The workspace holding the clip export ``clips`` of one family and size (cached).

    The set is made once: videos, ingest, frames, split, stats, export; a ``.complete`` marker
    is written last, so an interrupted preparation is redone from scratch.
    """
    from dataprep.hashing import settings_fingerprint
    from dataprep.testing.motion import family
    from dataprep.workspace import open_workspace

    spec = family(family_or_name) if isinstance(family_or_name, str) else family_or_name
    family_name = spec.name
    per_class_train = max(1, round(n_train / len(spec.classes)))
    per_class = per_class_train + VAL_PER_CLASS + TEST_PER_CLASS
    key = settings_fingerprint(
        {
            "family": asdict(spec),
            "per_class": [per_class_train, VAL_PER_CLASS, TEST_PER_CLASS],
            "version": GENERATOR_VERSION,
        },
        length=10,
    )
    folder = cache / f"{family_name}-{n_train}-{key}"
    if (folder / ".complete").exists():
        return open_workspace(folder / "ws")
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two sweeps sharing a cache make each set once
        if (folder / ".complete").exists():
            return open_workspace(folder / "ws")
        return _make(folder, spec, per_class_train, per_class, log)


def _make(folder: Path, spec, per_class_train: int, per_class: int, log):
    """Generates, ingests, extracts, splits, measures and exports one set into ``folder``."""
    import shutil

    from dataprep.export.dataset import export_dataset
    from dataprep.frames import extract_frames
    from dataprep.ingest import ingest
    from dataprep.split import split_media
    from dataprep.stats import compute_stats
    from dataprep.testing.motion import write_motion_set
    from dataprep.workspace import init_workspace

    family_name, n_train = spec.name, per_class_train * len(spec.classes)
    if folder.exists():
        shutil.rmtree(folder)
    started = time.perf_counter()
    seed = zlib.crc32(family_name.encode()) + n_train
    write_motion_set(folder / "raw", spec, per_class, seed=seed)
    ws = init_workspace(folder / "ws", classes=list(spec.classes))
    ingest(ws, [folder / "raw"], label_from_dir=True, jobs=1)
    extract_frames(ws, sampling="all", size=str(spec.size), jobs=1)
    total = float(per_class)
    split_media(
        ws,
        ratios=[per_class_train / total, VAL_PER_CLASS / total, TEST_PER_CLASS / total],
        seed=0,
    )
    compute_stats(ws, jobs=1)
    export_dataset(
        ws,
        format="tfrecord",
        unit="clip",
        clip_len=spec.frames,
        clip_stride=spec.frames,
        name="clips",
    )
    (folder / ".complete").write_text(f"{time.perf_counter() - started:.1f}s\n")
    log(f"prepared {folder.name} in {time.perf_counter() - started:.0f}s")
    return ws


def train_one(ws, family_name: str, n_train: int, seed: int, runs_dir: Path) -> dict:
    """Trains the default cnn-lstm once; returns the run's figures."""
    import keras

    from dataprep.train.loop import TrainOptions, train_baseline

    keras.backend.clear_session()
    options = TrainOptions(
        export="clips", model="cnn-lstm", seed=seed, run_name=f"{family_name}-{n_train}-s{seed}"
    )
    lines: list[str] = []
    result = train_baseline(ws, options, log=lines.append, runs_dir=runs_dir)
    history = result.history
    best = history[result.best_epoch - 1]
    seconds = [r["seconds"] for r in history[1:]] or [r["seconds"] for r in history]
    warnings_ = [line for line in lines if "overfit" in line.lower() or "augment" in line.lower()]
    config = json.loads((result.run_dir / "config.json").read_text())
    return {
        "family": family_name,
        "n_train": n_train,
        "seed": seed,
        "train_examples": config["export"]["examples"]["train"],
        "test_examples": result.metrics["examples"],
        "test_accuracy": result.metrics["test_accuracy"],
        "best_epoch": result.best_epoch,
        "epochs_run": len(history),
        "train_accuracy": best.get("accuracy"),
        "val_accuracy": best.get("val_accuracy"),
        "gap": (best.get("accuracy") or 0.0) - (best.get("val_accuracy") or 0.0),
        "epoch_seconds": seconds,
        "first_epoch_seconds": history[0]["seconds"],
        "images_per_s": result.train_images_per_s,
        "run_seconds": result.seconds,
        "resolved": config.get("resolved"),
        "notes": warnings_,
    }


def summarize(runs: list[dict]) -> list[dict]:
    """One summary per (family, size): mean ± std of test accuracy, gap, epoch seconds."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for run in runs:
        groups.setdefault((run["family"], run["n_train"]), []).append(run)
    out = []
    for (family_name, n_train), items in groups.items():
        accs = [r["test_accuracy"] for r in items]
        seconds = [s for r in items for s in r["epoch_seconds"]]
        out.append(
            {
                "family": family_name,
                "n_train": n_train,
                "seeds": len(items),
                "test_mean": statistics.fmean(accs),
                "test_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "test_all": accs,
                "gap_mean": statistics.fmean(r["gap"] for r in items),
                "epochs_mean": statistics.fmean(r["epochs_run"] for r in items),
                "epoch_s_min": min(seconds),
                "epoch_s_median": statistics.median(seconds),
                "epoch_s_max": max(seconds),
                "images_per_s": statistics.fmean(r["images_per_s"] for r in items),
            }
        )
    return out


def print_summary(summary: list[dict], label: str = "") -> None:
    print(f"\nmotion benchmark {label}".rstrip())
    print(
        f"{'family':20s} {'clips':>5s} {'test acc (mean ± std)':>22s} {'gap':>6s} "
        f"{'epochs':>6s} {'s/epoch min/med/max':>20s} {'img/s':>6s}"
    )
    for s in summary:
        print(
            f"{s['family']:20s} {s['n_train']:5d} {s['test_mean']:>14.3f} ± {s['test_std']:.3f} "
            f"{s['gap_mean']:6.2f} {s['epochs_mean']:6.1f} "
            f"{s['epoch_s_min']:6.1f}/{s['epoch_s_median']:5.1f}/{s['epoch_s_max']:5.1f} "
            f"{s['images_per_s']:6.0f}"
        )


def sweep(
    families,
    sizes,
    seeds,
    runs_dir: Path,
    *,
    cache: Path | None = None,
    out: Path | None = None,
    label: str = "",
    resume: bool = False,
    log=print,
) -> dict:
    """Trains every family x size x seed; writes ``out`` after every run; returns the results."""
    cache = cache_root(cache)
    runs: list[dict] = []
    if resume and out is not None and out.exists():
        runs = json.loads(out.read_text()).get("runs", [])
    done = {(r["family"], r["n_train"], r["seed"]) for r in runs}
    results: dict = {}
    for family_name in families:
        for n_train in sizes:
            ws = prepare(family_name, n_train, cache, log=log)
            for seed in seeds:
                if (family_name, n_train, seed) in done:
                    continue
                run = train_one(ws, family_name, n_train, seed, runs_dir)
                runs.append(run)
                log(
                    f"{family_name} {n_train} seed {seed}: test {run['test_accuracy']:.3f} "
                    f"gap {run['gap']:.2f} epochs {run['epochs_run']} "
                    f"({run['run_seconds']:.0f}s, {run['images_per_s']:.0f} images/s)"
                )
                results = {
                    "label": label,
                    "families": list(families),
                    "sizes": list(sizes),
                    "seeds": list(seeds),
                    "runs": runs,
                    "summary": summarize(runs),
                }
                if out is not None:
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps(results, indent=2, default=str))
    return results or {"runs": runs, "summary": summarize(runs)}


THROUGHPUT_FAMILY = "texture-noisy"
THROUGHPUT_TRAIN = 168


def throughput_family():
    """``texture-noisy`` drawn at 64 px (sprites and speeds scaled with the frame)."""
    from dataclasses import replace

    from dataprep.testing.motion import family

    spec = family(THROUGHPUT_FAMILY)
    return replace(
        spec,
        name=f"{spec.name}-64",
        size=64,
        sprite_min=10,
        sprite_max=18,
        speed_min=2.0,
        speed_max=6.0,
    )


def throughput(cache: Path, runs_dir: Path, epochs: int = 5, log=print) -> dict:
    """Trains the default cnn-lstm ``epochs`` epochs at 64x64 (no early stopping); returns
    images/s over the run, epoch seconds and the loader's images/s alone."""
    import keras

    from dataprep.train.loop import TrainOptions, train_baseline

    spec = throughput_family()
    ws = prepare(spec, THROUGHPUT_TRAIN, cache, log=log)
    load_before = os.getloadavg()[0]
    keras.backend.clear_session()
    name = f"throughput-{time.time_ns()}"
    options = TrainOptions(
        export="clips", model="cnn-lstm", seed=0, run_name=name, epochs=epochs, patience=epochs
    )
    result = train_baseline(ws, options, log=lambda line: None, runs_dir=runs_dir)
    config = json.loads((result.run_dir / "config.json").read_text())
    history = result.history
    frames = spec.frames * config["export"]["examples"]["train"]
    train_seconds = sum(r["train_seconds"] for r in history)
    batch = config["resolved"]["batch_size"]
    return {
        "batch_size": batch,
        "epochs": len(history),
        "images_per_s_run": frames * len(history) / train_seconds,
        "images_per_s_after_first": result.train_images_per_s,
        "epoch_seconds": [r["seconds"] for r in history],
        "loader_images_per_s": _loader_rate(
            ws.exports_dir / "clips", config["resolved"], spec.frames
        ),
        "load_average": [load_before, os.getloadavg()[0]],
    }


def _loader_rate(export_dir: Path, resolved: dict, frames: int) -> float:
    """The run's own training dataset alone (its settings, no model): images/s over 2 passes
    after a warm-up batch. ``resolved``: the run's ``config.json`` settings."""
    try:
        from dataprep.train.inputs import make_dataset
        from dataprep.train.options import TrainSettings

        settings = TrainSettings.from_resolved(resolved)
    except ImportError:  # an older tree (the baseline commit) takes the settings as a dict
        from dataprep.train.loop import make_dataset

        settings = resolved
    batch_size = resolved["batch_size"]
    dataset = make_dataset(export_dir, "train", settings, training=True, batch_size=batch_size)
    for _ in dataset.take(1):
        pass
    images, started = 0, time.perf_counter()
    for _ in range(2):
        for batch, _labels in dataset:
            images += int(batch.shape[0]) * frames
    return images / (time.perf_counter() - started)


def _throughput_main(args) -> int:
    """``--throughput``: this tree's figures (``--json``: one JSON line), and with
    ``--baseline-commit`` the baseline's, measured alternately in subprocesses."""
    import tempfile

    cache = cache_root(args.cache)
    with tempfile.TemporaryDirectory(prefix="bench-motion-tp-") as tmp:
        if args.json or not args.baseline_commit:
            result = throughput(cache, Path(tmp), epochs=args.epochs)
            if args.json:
                print("THROUGHPUT " + json.dumps(result))
                return 0
            results = {"current": [result]}
        else:
            repo = HERE.parent
            base = _baseline_tree(repo, args.baseline_commit, args.baseline_tree, Path(tmp))
            results = {"baseline": [], "current": []}
            for _ in range(args.repeats):
                for key, tree in (("baseline", base), ("current", repo)):
                    results[key].append(_measure_in(tree, cache, args.epochs))
                    print(f"{key}: {results[key][-1]['images_per_s_run']:.0f} images/s")
    rows = _throughput_rows(results, args.baseline_commit)
    for item in rows:
        print(f"{item['measure']}: {item['value']:.0f} {item['unit']} ({item['notes']})")
    out = (
        args.out
        if args.out.name != "motion-latest.json"
        else args.out.with_name("motion-throughput.json")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "rows": rows}, indent=2, default=str))
    print(f"wrote {out}")
    return 0


def _baseline_tree(repo: Path, commit: str, tree: Path | None, tmp: Path) -> Path:
    """The baseline's source: ``tree`` (a copy of ``commit`` made beforehand, for a checkout
    that is not a git repository) or a ``git archive`` of ``commit`` in ``tmp``; this file
    and the motion generator are copied into it, so both sides draw the same export."""
    import subprocess

    base = Path(tree) if tree else tmp / "baseline"
    if not tree:
        base.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", commit], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
    (base / "benchmarks" / "bench_motion.py").write_bytes(Path(__file__).read_bytes())
    (base / "dataprep" / "testing" / "motion.py").write_bytes(
        (repo / "dataprep" / "testing" / "motion.py").read_bytes()
    )
    return base


def _measure_in(tree: Path, cache: Path, epochs: int) -> dict:
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [
        sys.executable,
        str(tree / "benchmarks" / "bench_motion.py"),
        "--throughput",
        "--json",
        "--epochs",
        str(epochs),
        "--cache",
        str(cache),
    ]
    done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True, check=True)
    line = [x for x in done.stdout.splitlines() if x.startswith("THROUGHPUT ")][-1]
    return json.loads(line.removeprefix("THROUGHPUT "))


def _throughput_rows(results: dict, baseline: str | None) -> list[dict]:
    rows = []
    for key, items in results.items():
        rate = statistics.median(r["images_per_s_run"] for r in items)
        loader = statistics.median(r["loader_images_per_s"] for r in items)
        seconds = [s for r in items for s in r["epoch_seconds"]]
        loads = [x for r in items for x in r.get("load_average", [])]
        peer = None
        if key == "current" and "baseline" in results:
            peer = statistics.median(r["images_per_s_run"] for r in results["baseline"])
        who = f"commit {baseline}" if key == "baseline" else "this tree"
        rows.append(
            row(
                BENCH,
                f"cnn-lstm 64x64 T=12, {who}: training images/s over a whole run",
                rate,
                "images/s",
                limit="baseline commit" if peer else "the training dataset alone",
                limit_value=peer or loader,
                ratio=rate / (peer or loader),
                notes=(
                    f"batch {items[0]['batch_size']}, {items[0]['epochs']} epochs, "
                    f"{len(items)} runs; s/epoch {min(seconds):.1f}/"
                    f"{statistics.median(seconds):.1f}/{max(seconds):.1f} (min/median/max); "
                    f"training/loader {rate / loader:.2f}"
                    + (f"; load average {min(loads):.1f}-{max(loads):.1f}" if loads else "")
                ),
            )
        )
    return rows


def run(workdir: Path, quick: bool) -> list[dict]:
    """The runner's entry (``benchmarks/run.py``): one row per family and size, and the
    training throughput at 64x64 against the training dataset alone (``--throughput`` without
    a baseline: 10 epochs, 2 with ``quick``)."""
    families = QUICK_FAMILIES if quick else tuple(_families())
    sizes = (100,) if quick else SIZES
    seeds = (0,) if quick else SEEDS
    results = sweep(
        families,
        sizes,
        seeds,
        Path(workdir) / "runs",
        log=lambda line: print(line, file=sys.stderr),
    )
    rows = []
    for s in results["summary"]:
        rows.append(
            row(
                BENCH,
                f"cnn-lstm on {s['family']}, {s['n_train']} training clips: test accuracy",
                s["test_mean"],
                "accuracy",
                limit="target (>= 0.95 at 200 clips, >= 0.90 at 100)",
                limit_value=0.95 if s["n_train"] >= 200 else 0.90,
                ratio=s["test_mean"] / (0.95 if s["n_train"] >= 200 else 0.90),
                notes=(
                    f"± {s['test_std']:.3f} over {s['seeds']} seeds; train/val gap "
                    f"{s['gap_mean']:.2f}; s/epoch {s['epoch_s_min']:.1f}/"
                    f"{s['epoch_s_median']:.1f}/{s['epoch_s_max']:.1f} (min/median/max)"
                ),
            )
        )
    tp = throughput(cache_root(), Path(workdir) / "runs", epochs=2 if quick else 10)
    return rows + _throughput_rows({"current": [tp]}, None)


def _families():
    from dataprep.testing.motion import FAMILIES

    return FAMILIES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two families, 100 clips, 1 seed")
    parser.add_argument("--families", help="comma-separated family names (default: all)")
    parser.add_argument("--sizes", help="comma-separated training-set sizes (default 100,200,400)")
    parser.add_argument("--seeds", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--label", default="", help="a name for this sweep (e.g. before/after)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "motion-latest.json")
    parser.add_argument("--cache", type=Path, help="generated exports (kept between runs)")
    parser.add_argument("--runs-dir", type=Path, help="where runs go (default: a temp folder)")
    parser.add_argument("--resume", action="store_true", help="skip runs already in --out")
    parser.add_argument("--throughput", action="store_true", help="training speed at 64x64")
    parser.add_argument("--baseline-commit", help="--throughput: also measure this commit")
    parser.add_argument(
        "--baseline-tree", type=Path, help="--throughput: the baseline commit's files, extracted"
    )
    parser.add_argument("--epochs", type=int, default=5, help="--throughput: epochs per run")
    parser.add_argument("--repeats", type=int, default=2, help="--throughput: runs of each")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.throughput:
        return _throughput_main(args)
    families = (
        args.families.split(",")
        if args.families
        else (list(QUICK_FAMILIES) if args.quick else list(_families()))
    )
    sizes = (
        [int(v) for v in args.sizes.split(",")]
        if args.sizes
        else ([100] if args.quick else list(SIZES))
    )
    seeds = (
        [int(v) for v in args.seeds.split(",")]
        if args.seeds
        else ([0] if args.quick else list(SEEDS))
    )
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-motion-runs-") as tmp:
        runs_dir = args.runs_dir or Path(tmp)
        results = sweep(
            families,
            sizes,
            seeds,
            runs_dir,
            cache=args.cache,
            out=args.out,
            label=args.label,
            resume=args.resume,
        )
    print_summary(results["summary"], args.label)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
