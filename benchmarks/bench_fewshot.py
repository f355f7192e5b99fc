"""Few-shot, open-set and transfer figures of issue 14, measured end to end through the pipeline.

1. **Digits, unseen classes**: scikit-learn's digits (32x32 PNG) through ingest, frames, split
   (50/10/40), stats and a frame export; ``siamese`` trained with ``--exclude-classes 5,6,7,8,9``
   (:data:`DIGITS_RECIPE`: ``--loss prototypical --class-augment dihedral --embedding-from
   features``, 60 epochs); 5-way 1-shot and 5-shot episodes of the test split on the five unseen
   digits, next to the same episodes scored by nearest prototype on raw pixels
   (``baseline_accuracy``, the floor). The same episodes are also drawn from the *train* split's
   unseen digits (``selection``): never trained on (they are excluded), five times the val
   split's images, and what the recipe was chosen on, so that test is only reported.
2. **Motion clips, unseen motions**: the gesture generator's eight motions (four axis directions,
   four diagonals) as clips of 8 frames; ``siamese-lstm`` trained on the axis directions only;
   4-way 5-shot episodes on the diagonals (test split), and the open set: with only the axis
   directions enrolled, the diagonals' queries should be answered "unknown". The diagonals are
   also enrolled with ``enroll`` from 5 videos each (train split) and their held-out test videos
   predicted through the gallery.
3. **Transfer**: digits 5-9 with 10 labelled images per class (and 10 val images per class that
   choose the epoch): ``cnn-bn`` from scratch vs ``--init-from`` a ``cnn-bn`` run on digits 0-4,
   and vs ``--init-from`` a ``siamese`` run on digits 0-4 (the digits recipe), both
   ``--freeze-trunk --fine-tune-epochs``; the same epochs in all three; test accuracy per seed.
   ``--transfer-models cnn`` (in the default) adds the reference ``cnn`` (no batch norm,
   dropout or augmentation): from scratch vs started from a ``cnn`` run on digits 0-4. The
   library's ``--init-from`` refuses a ``cnn`` source (it has no trunk sub-model), so this arm
   is run with Keras on the same split arrays (``cnn_transfer.cnn_arm``): its five
   convolutions copied from the source run, frozen for the first phase, then all trained at a
   tenth of the rate, with the pipeline's ``cnn`` recipe, callbacks and best-epoch rule; the
   pipeline's own ``cnn`` from scratch is run next to it (``cnn_scratch_pipeline``) as a check
   that the loop matches.

Every figure is reported per seed with the mean and spread; ``python3 benchmarks/bench_fewshot.py
--out benchmarks/results/fewshot.json`` writes them (``--quick``: a smoke run, figures
meaningless). The runner (``benchmarks/run.py --only fewshot``) prints the summary rows.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cnn_transfer import cnn_arm, split_arrays  # noqa: E402
from common import row  # noqa: E402

BENCH = "fewshot"
DIGITS_UNSEEN = ("5", "6", "7", "8", "9")
# The digits recipe (docs/training.md, "Measured"): a prototypical loss over in-batch class
# prototypes, each training digit also seen in its 8 symmetries as 8 classes of its own (40
# training classes instead of 5), batches of 10 such classes x 4 examples, and the trunk's
# features before the projection as the embedding. Chosen on episodes of the unseen digits'
# train-split images (never trained on; never test): the features over the projection, the loss
# scale 5 over 2, 3, 10 and 20, 60 epochs (660 steps) over 120, 32x32 over 16x16.
DIGITS_RECIPE = {
    "loss": "prototypical",
    "class_augment": "dihedral",
    "embedding_dim": 128,
    "batch_size": 40,
    "per_class": 4,
    "lr": 3e-3,
    "embedding_from": "features",
}
DIGITS_EPOCHS = 60
# What the figures were before issue 14's rework (15 epochs): triplet, semi-hard, 64 dims.
DIGITS_BEFORE = {"loss": "triplet", "batch_size": 40, "per_class": 8, "lr": 3e-3}


def _prepare(ws, *, ratios, unit="frame", clip_len=8, name="export", sampling="all"):
    from dataprep.export.dataset import export_dataset
    from dataprep.frames import extract_frames
    from dataprep.split import split_media
    from dataprep.stats import compute_stats

    extract_frames(ws, sampling=sampling, size="32", jobs=1)
    split_media(ws, ratios=ratios, seed=0)
    compute_stats(ws, jobs=1)
    kwargs = {"clip_len": clip_len, "clip_stride": clip_len} if unit == "clip" else {}
    export_dataset(ws, format="tfrecord", unit=unit, name=name, **kwargs)


def digits_workspace(workdir: Path, digits: tuple[str, ...], ratios, limit=None):
    """A workspace of the digits ``digits`` (class folders of the generated PNGs)."""
    from dataprep.ingest import ingest
    from dataprep.testing.digits import write_digits
    from dataprep.workspace import init_workspace

    raw = workdir / "raw"
    if not raw.exists():
        write_digits(raw, size=32, limit=limit)
    ws = init_workspace(workdir / "ws", classes=list(digits))
    ingest(ws, [raw / d for d in digits], label_from_dir=True, jobs=1)
    _prepare(ws, ratios=ratios, name="digits")
    return ws


def gestures_workspace(workdir: Path, per_class: int):
    """A workspace of the eight generated motions, exported as clips of 8 frames."""
    from dataprep.ingest import ingest
    from dataprep.testing.gestures import MOTION_CLASSES, GestureSpec, write_gesture_set
    from dataprep.workspace import init_workspace

    spec = GestureSpec(per_class=per_class, frames=16, size=32, seed=7)
    write_gesture_set(workdir / "raw", spec, MOTION_CLASSES)
    ws = init_workspace(workdir / "ws", classes=list(MOTION_CLASSES))
    ingest(ws, [workdir / "raw"], label_from_dir=True, jobs=1)
    _prepare(ws, ratios=[0.5, 0.15, 0.35], unit="clip", name="motions")
    return ws


def _train(ws, **options):
    from dataprep.train.loop import TrainOptions, train_baseline

    started = time.perf_counter()
    result = train_baseline(ws, TrainOptions(**options), log=lambda line: None)
    return result, time.perf_counter() - started


def _fewshot(ws, run, split="test", **request):
    from dataprep.train.evaluate import FewShotRequest, evaluate_run

    return evaluate_run(ws, run, split=split, fewshot=FewShotRequest(**request))


def _spread(values: list[float]) -> dict:
    return {
        "values": values,
        "mean": statistics.fmean(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def _episode_figures(result: dict) -> dict:
    keep = ("accuracy", "ci95", "baseline_accuracy", "baseline_ci95", "episodes", "open_set")
    return {k: result[k] for k in keep if k in result}


def measure_digits(
    workdir: Path, seeds, epochs: int, episodes: int, limit=None, recipe=None
) -> dict:
    ws = digits_workspace(workdir, tuple(str(d) for d in range(10)), [0.5, 0.1, 0.4], limit)
    recipe = DIGITS_RECIPE if recipe is None else recipe
    per_seed = []
    for seed in seeds:
        run, seconds = _train(
            ws,
            export="digits",
            model="siamese",
            exclude_classes=",".join(DIGITS_UNSEEN),
            epochs=epochs,
            patience=epochs,
            seed=seed,
            run_name=f"digits-siamese-{seed}",
            **recipe,
        )
        figures = {"seed": seed, "train_seconds": seconds, "best_epoch": run.best_epoch}
        for shots in (1, 5):
            for split, suffix in (("test", ""), ("train", "-selection")):
                result = _fewshot(
                    ws, run.run_id, split, ways=5, shots=shots, episodes=episodes,
                    classes=DIGITS_UNSEEN,
                )  # fmt: skip
                figures[f"{shots}-shot{suffix}"] = _episode_figures(result)
        per_seed.append(figures)
    summary = {
        key: {
            "accuracy": _spread([s[key]["accuracy"] for s in per_seed]),
            "baseline_accuracy": _spread([s[key]["baseline_accuracy"] for s in per_seed]),
        }
        for key in ("1-shot", "5-shot", "1-shot-selection", "5-shot-selection")
    }
    return {"per_seed": per_seed, "summary": summary, "epochs": epochs, "recipe": recipe}


def _gallery_accuracy(ws, run_id: str) -> dict:
    """Enroll the diagonals from 5 train videos each; predict their test videos (and the axis
    directions' test videos, which are not enrolled and should come back unknown)."""
    from dataprep import manifests
    from dataprep.testing.gestures import DIAGONAL_CLASSES, GESTURE_CLASSES
    from dataprep.train.gallery import enroll
    from dataprep.train.predict import predict_paths

    media = manifests.load(ws, "media")[["media_id", "path", "label"]]
    splits = manifests.load(ws, "splits")[["media_id", "split"]]
    table = media.merge(splits, on="media_id").sort_values("path")
    label_col = "label"
    support = {
        c: list(table[(table[label_col] == c) & (table.split == "train")].path[:5])
        for c in DIAGONAL_CLASSES
    }
    started = time.perf_counter()
    for label, paths in support.items():
        enroll(ws, run_id, [Path(p) for p in paths], label=label)
    enroll_seconds = time.perf_counter() - started
    test = table[table.split == "test"]
    known = test[test[label_col].isin(DIAGONAL_CLASSES)]
    unknown = test[test[label_col].isin(GESTURE_CLASSES)]
    right = [
        r["prediction"] == c
        for r, c in zip(
            predict_paths(ws, run_id, [Path(p) for p in known.path]), known[label_col], strict=True
        )
    ]
    rejected = [
        r["prediction"] == "unknown"
        for r in predict_paths(ws, run_id, [Path(p) for p in unknown.path])
    ]
    return {
        "enrolled_videos_per_class": 5,
        "enroll_seconds": enroll_seconds,
        "enrolled_test_videos": len(right),
        "enrolled_accuracy": sum(right) / len(right),
        "not_enrolled_test_videos": len(rejected),
        "not_enrolled_answered_unknown": sum(rejected) / len(rejected),
    }


def measure_gestures(workdir: Path, seeds, per_class: int, epochs: int, episodes: int) -> dict:
    from dataprep.testing.gestures import DIAGONAL_CLASSES, GESTURE_CLASSES

    ws = gestures_workspace(workdir, per_class)
    per_seed = []
    for seed in seeds:
        run, seconds = _train(
            ws,
            export="motions",
            model="siamese-lstm",
            exclude_classes=",".join(DIAGONAL_CLASSES),
            epochs=epochs,
            batch_size=32,
            per_class=8,
            lr=3e-3,
            patience=epochs,
            seed=seed,
            run_name=f"motions-siamese-lstm-{seed}",
        )
        figures = {"seed": seed, "train_seconds": seconds, "best_epoch": run.best_epoch}
        unseen = _fewshot(
            ws, run.run_id, ways=4, shots=5, episodes=episodes, classes=DIAGONAL_CLASSES
        )
        figures["diagonals_4way_5shot"] = _episode_figures(unseen)
        open_set = _fewshot(
            ws,
            run.run_id,
            ways=4,
            shots=5,
            episodes=episodes,
            classes=GESTURE_CLASSES,
            open_set=True,
        )
        figures["open_set_axis_enrolled"] = _episode_figures(open_set)
        figures["gallery"] = _gallery_accuracy(ws, run.run_id)
        per_seed.append(figures)
    pick = lambda key, field: _spread([s[key][field] for s in per_seed])  # noqa: E731
    rates = [s["open_set_axis_enrolled"]["open_set"] for s in per_seed]
    summary = {
        "diagonals_4way_5shot": pick("diagonals_4way_5shot", "accuracy"),
        "diagonals_baseline": pick("diagonals_4way_5shot", "baseline_accuracy"),
        "unknown_rejected": _spread([r["unknown_rejected"] for r in rates]),
        "known_accepted": _spread([r["known_accepted"] for r in rates]),
        "gallery_enrolled_accuracy": pick("gallery", "enrolled_accuracy"),
        "gallery_not_enrolled_unknown": pick("gallery", "not_enrolled_answered_unknown"),
    }
    return {"per_seed": per_seed, "summary": summary, "epochs": epochs, "per_class": per_class}


def _sources(source, epochs: int, siamese_epochs: int) -> dict:
    """The runs on digits 0-4 that the target starts from: ``cnn-bn`` (a classifier) and
    ``siamese`` with the digits recipe (its trunk learned from 40 turned and mirrored classes)."""
    cnn_bn, _ = _train(
        source,
        export="digits",
        model="cnn-bn",
        epochs=epochs,
        lr=3e-3,
        patience=epochs,
        seed=0,
        run_name="digits-0-4",
    )
    siamese, _ = _train(
        source,
        export="digits",
        model="siamese",
        epochs=siamese_epochs,
        patience=siamese_epochs,
        seed=0,
        run_name="digits-0-4-siamese",
        **DIGITS_RECIPE,
    )
    return {"transfer": cnn_bn, "transfer_siamese": siamese}


# Transfer schedules, in units of ``epochs``: (frozen trunk, fine-tuning, early-stopping patience
# in epochs); from scratch trains as many epochs in all. Each arm's val loss says which it prefers.
TRANSFER_SCHEDULES = {"short": (1, 2, 10), "long": (1, 8, 30)}


def _transfer_runs(target, sources: dict, seed: int, epochs: int, schedule: str) -> dict:
    """One seed of one schedule: from scratch and from each source run; per arm the test
    accuracy and the val loss of its best epoch."""
    frozen, tune, patience = TRANSFER_SCHEDULES[schedule]
    common = {"export": "digits", "model": "cnn-bn", "lr": 3e-3, "batch_size": 16}
    common.update(patience=patience, seed=seed)
    runs = {
        "scratch": _train(
            target, **common, epochs=(frozen + tune) * epochs, run_name=f"scratch-{schedule}-{seed}"
        )[0]
    }
    for arm, base in sources.items():
        runs[arm], _ = _train(
            target,
            **common,
            epochs=frozen * epochs,
            fine_tune_epochs=tune * epochs,
            init_from=str(base.run_dir),
            freeze_trunk=True,
            run_name=f"{arm}-{schedule}-{seed}",
        )
    return {
        arm: {
            "test_accuracy": run.metrics["test_accuracy"],
            "val_loss": run.history[run.best_epoch - 1]["val_loss"],
            "best_epoch": run.best_epoch,
            "epochs_run": len(run.history),
        }
        for arm, run in runs.items()
    }


def _cnn_transfer_runs(target, cnn_source, data, seed: int, epochs: int, schedule: str) -> dict:
    """One seed of one schedule for the reference ``cnn``: from scratch (the pipeline's and this
    loop's) and from the ``cnn`` run on digits 0-4."""
    from dataprep.train.evaluate import load_run_model

    frozen, tune, patience = TRANSFER_SCHEDULES[schedule]
    lr = 3e-3
    scratch, _ = _train(
        target, export="digits", model="cnn", lr=lr, batch_size=16, patience=patience,
        seed=seed, epochs=(frozen + tune) * epochs, run_name=f"cnn-scratch-{schedule}-{seed}",
    )  # fmt: skip
    work = Path(target.root) / "cnn-arms" / f"{schedule}-{seed}"
    arms = {
        "cnn_scratch_pipeline": {
            "test_accuracy": scratch.metrics["test_accuracy"],
            "val_loss": scratch.history[scratch.best_epoch - 1]["val_loss"],
            "best_epoch": scratch.best_epoch,
            "epochs_run": len(scratch.history),
        },
        "cnn_scratch": cnn_arm(
            data, work / "scratch", seed=seed, patience=patience,
            phases=[((frozen + tune) * epochs, lr, True)],
        ),
        "cnn_transfer": cnn_arm(
            data, work / "transfer", seed=seed, patience=patience,
            source=load_run_model(cnn_source.run_dir),
            phases=[(frozen * epochs, lr, False), (tune * epochs, lr / 10, True)],
        ),
    }  # fmt: skip
    return arms


def _transfer_summary(per_seed: list[dict], arms: dict[str, str]) -> dict:
    """Per schedule and arm the test accuracy and val loss over seeds, each arm's gain over its
    scratch (``arms``: arm -> the arm it is compared with, or "" for a scratch arm); ``by_val``:
    each arm in the schedule its mean val loss prefers."""
    pick = lambda sched, arm, key: [s[sched][arm][key] for s in per_seed]  # noqa: E731
    summary: dict = {}
    for sched in TRANSFER_SCHEDULES:
        summary[sched] = {
            arm: {"test_accuracy": _spread(pick(sched, arm, "test_accuracy")),
                  "val_loss": _spread(pick(sched, arm, "val_loss"))}
            for arm in arms
        }  # fmt: skip
    chosen = {
        arm: min(TRANSFER_SCHEDULES, key=lambda sched: summary[sched][arm]["val_loss"]["mean"])
        for arm in arms
    }
    by_val: dict = {"schedule": chosen}
    for arm, baseline in arms.items():
        accuracy = pick(chosen[arm], arm, "test_accuracy")
        by_val[arm] = _spread(accuracy)
        if baseline:
            scratch = pick(chosen[baseline], baseline, "test_accuracy")
            gains = [100 * (a - b) for a, b in zip(accuracy, scratch, strict=True)]
            by_val[f"{arm}_gain_points"] = _spread(gains)
    summary["by_val"] = by_val
    return summary


def measure_transfer(
    workdir: Path, seeds, epochs: int, siamese_epochs: int, limit=None, models=("cnn-bn", "cnn")
) -> dict:
    """Digits 5-9 from 10 labelled images per class: each of ``models`` from scratch against the
    same model started from a run on digits 0-4 (``--freeze-trunk``, then
    ``--fine-tune-epochs``; for ``cnn``, :func:`_cnn_transfer_runs`): the same epochs in all,
    batches, augmentation, val split (10 images per class, which choose the epoch) and test split
    (the 88.8% of digits 5-9 left), for each :data:`TRANSFER_SCHEDULES`."""
    source = digits_workspace(workdir / "source", tuple("01234"), [0.8, 0.1, 0.1], limit)
    target = digits_workspace(workdir / "target", DIGITS_UNSEEN, [0.056, 0.056, 0.888], limit)
    info = json.loads((target.exports_dir / "digits" / "dataset_info.json").read_text())
    sources = _sources(source, epochs, siamese_epochs) if "cnn-bn" in models else {}
    arms = {"scratch": "", **dict.fromkeys(sources, "scratch")} if sources else {}
    if "cnn" in models:
        cnn_source, _ = _train(
            source, export="digits", model="cnn", epochs=epochs, lr=3e-3, patience=epochs,
            seed=0, run_name="digits-0-4-cnn",
        )  # fmt: skip
        data = {split: split_arrays(target, split) for split in ("train", "val", "test")}
        arms.update(cnn_scratch_pipeline="", cnn_scratch="", cnn_transfer="cnn_scratch")
    per_seed = []
    for seed in seeds:
        runs = {}
        for s in TRANSFER_SCHEDULES:
            runs[s] = _transfer_runs(target, sources, seed, epochs, s) if sources else {}
            if "cnn" in models:
                runs[s].update(_cnn_transfer_runs(target, cnn_source, data, seed, epochs, s))
        per_seed.append({"seed": seed, **runs})
    if "cnn" in models:
        sources = {**sources, "cnn_transfer": cnn_source}
    return {
        "train_examples_per_class": info["splits"]["train"]["by_class"],
        "val_examples_per_class": info["splits"]["val"]["by_class"],
        "test_examples": info["splits"]["test"]["examples"],
        "epochs": epochs,
        "schedules": TRANSFER_SCHEDULES,
        "source_runs": {
            arm: {"run": base.run_id, "test_accuracy": base.metrics["test_accuracy"]}
            for arm, base in sources.items()
        },
        "per_seed": per_seed,
        "summary": _transfer_summary(per_seed, arms),
    }


def measure(
    workdir: Path,
    quick: bool,
    parts=("digits", "gestures", "transfer"),
    transfer_models=("cnn-bn", "cnn"),
) -> dict:
    seeds = (0,) if quick else (0, 1, 2)
    out: dict = {}
    if "digits" in parts:
        out["digits"] = measure_digits(
            workdir / "digits",
            seeds,
            epochs=2 if quick else DIGITS_EPOCHS,
            episodes=50 if quick else 600,
            limit=300 if quick else None,
        )
    if "gestures" in parts:
        out["gestures"] = measure_gestures(
            workdir / "gestures",
            seeds,
            per_class=24 if quick else 60,  # val needs 2+ media of a class
            epochs=2 if quick else 40,
            episodes=50 if quick else 600,
        )
    if "transfer" in parts:
        out["transfer"] = measure_transfer(
            workdir / "transfer",
            seeds,
            epochs=2 if quick else 10,
            siamese_epochs=2 if quick else DIGITS_EPOCHS,
            limit=400 if quick else None,
            models=transfer_models,
        )
    return out


def run(workdir: Path, quick: bool) -> list[dict]:
    """The runner's rows: each few-shot figure with its raw-pixel floor as the peer."""
    figures = measure(Path(workdir), quick)
    rows = []
    for shots in (1, 5):
        fig = figures["digits"]["summary"][f"{shots}-shot"]
        model, floor = fig["accuracy"]["mean"], fig["baseline_accuracy"]["mean"]
        rows.append(
            row(
                BENCH,
                f"digits unseen 5-way {shots}-shot",
                model,
                "accuracy",
                limit="raw pixels",
                limit_value=floor,
                ratio=model / floor,
                notes=f"mean of {len(fig['accuracy']['values'])} seeds",
            )  # fmt: skip
        )
    fig = figures["gestures"]["summary"]
    rows.append(
        row(
            BENCH,
            "diagonals 4-way 5-shot",
            fig["diagonals_4way_5shot"]["mean"],
            "accuracy",
            limit="raw pixels",
            limit_value=fig["diagonals_baseline"]["mean"],
        )  # fmt: skip
    )
    fig = figures["transfer"]["summary"]["by_val"]
    for arm, scratch, name in (
        ("transfer", "scratch", "cnn-bn from cnn-bn"),
        ("transfer_siamese", "scratch", "cnn-bn from siamese"),
        ("cnn_transfer", "cnn_scratch", "cnn from cnn"),
    ):
        rows.append(
            row(
                BENCH,
                f"transfer digits 5-9 (10/class), {name} on 0-4",
                fig[arm]["mean"],
                "accuracy",
                limit="from scratch",
                limit_value=fig[scratch]["mean"],
                ratio=fig[arm]["mean"] / fig[scratch]["mean"],
            )  # fmt: skip
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (figures meaningless)")
    parser.add_argument("--only", default="digits,gestures,transfer")
    parser.add_argument(
        "--transfer-models", default="cnn-bn,cnn", help="transfer arms: cnn-bn (from cnn-bn and "
        "from siamese), cnn (the reference cnn from a cnn run)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fewshot.json"))
    parser.add_argument("--workdir", type=Path, help="keep the workspaces here (default: temp)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dataprep-fewshot-"))
    started = time.perf_counter()
    try:
        figures = measure(
            workdir, args.quick, tuple(args.only.split(",")), tuple(args.transfer_models.split(","))
        )
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    figures["seconds"] = time.perf_counter() - started
    figures["quick"] = args.quick
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v.get("summary") for k, v in figures.items() if isinstance(v, dict)},
                     indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
