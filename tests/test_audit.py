"""dataprep audit: signatures, the LSH index, near-duplicates and leaks, bad media, class checks,
confident learning, the manifest and the CLI, and split --group-by near-duplicates.

Real encoded videos (generated with planted problems), real PyAV decoding, real Parquet files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dataprep import manifests
from dataprep.audit import duplicates, index, quality, signatures, suspects
from dataprep.cli.main import app
from dataprep.testing.gestures import GESTURE_CLASSES, GestureSpec, gesture_frames
from dataprep.testing.media import write_image, write_video
from dataprep.testing.planted import PlantSpec, near_copy, write_planted_gestures

SPEC = GestureSpec(per_class=6, seed=31)
PLANT = PlantSpec(duplicates=0.25, black=2, frozen=2, flipped=0.0, seed=31)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A workspace of 24 gesture videos, 6 near-copies in other class folders, 2 black and 2
    frozen clips; ingested with folder labels and split."""
    from dataprep.ingest import ingest
    from dataprep.split import split_media
    from dataprep.workspace import init_workspace

    root = tmp_path_factory.mktemp("audit")
    truth = write_planted_gestures(root / "raw", SPEC, PLANT)
    ws = init_workspace(root / "ws", classes=list(GESTURE_CLASSES))
    ingest(ws, [root / "raw"], label_from_dir=True, jobs=1)
    split_media(ws, seed=0)
    media = manifests.load(ws, "media")
    ids = {}
    for media_id, paths in zip(media["media_id"], media["paths"], strict=True):
        for path in paths:
            ids[str(Path(path).relative_to((root / "raw").resolve()))] = media_id
    return ws, truth, ids


def _signature(path: Path, kind="video"):
    return signatures.compute_signature(path.name, path, kind=kind, duration_s=1.6)


def test_signature_survives_reencode_resize_trim_and_crop(tmp_path):
    rng = np.random.default_rng(5)
    frames = gesture_frames("left", rng, GestureSpec(size=64))
    other = gesture_frames("left", rng, GestureSpec(size=64))
    write_video(tmp_path / "a.mp4", frames=frames, fps=10.0, crf=12)
    write_video(tmp_path / "other.mp4", frames=other, fps=10.0, crf=12)
    copy, what = near_copy(frames, np.random.default_rng(3))
    write_video(tmp_path / "copy.mp4", frames=copy, fps=10.0, crf=30)
    a, b, c = (_signature(tmp_path / n) for n in ("a.mp4", "copy.mp4", "other.mp4"))
    assert len(a) == 16 and a.rate == 10.0 and a.coefs.shape == (16, len(signatures.CROPS), 63)
    match = index.compare(a, b)
    assert index.is_near_duplicate(match), (match, what)
    # the alignment undoes the trim: the copy's first frame is the original's frame trim_start
    assert match.first[0] - match.second[0] == what["trim_start"]
    assert not index.is_near_duplicate(index.compare(a, c))


def test_time_grid_halves_for_long_media():
    assert signatures.grid_rate(1.6) == 10.0
    assert signatures.grid_rate(6.4) == 10.0
    assert signatures.grid_rate(6.5) == 5.0
    assert signatures.grid_rate(600) * 600 <= signatures.MAX_FRAMES
    assert signatures.grid_rate(None) == signatures.BASE_RATE


def test_image_matches_a_video_frame_and_resized_image(tmp_path):
    frames = gesture_frames("up", np.random.default_rng(9), GestureSpec(size=64))
    write_video(tmp_path / "v.mp4", frames=frames, fps=10.0, crf=14)
    write_image(tmp_path / "still.png", image=frames[7])
    import cv2

    write_image(tmp_path / "small.jpg", image=cv2.resize(frames[7], (48, 48)))
    video = _signature(tmp_path / "v.mp4")
    still = _signature(tmp_path / "still.png", kind="image")
    small = _signature(tmp_path / "small.jpg", kind="image")
    assert still.rate == 0 and len(still) == 1
    match = index.compare(video, still)
    assert index.is_near_duplicate(match) and match.first == (7, 7)
    assert index.is_near_duplicate(index.compare(still, small))


def test_hamming_and_hash_bits():
    a = np.array([0, 0xFF, 2**64 - 1], np.uint64)
    b = np.array([1, 0x0F, 0], np.uint64)
    assert index.hamming(a, b).tolist() == [1, 4, 64]
    coefs = np.arange(63, dtype=np.int8)[None, :]
    bits = signatures.hash_bits(coefs)
    assert index.hamming(bits, np.zeros(1, np.uint64))[0] == 31  # the 31 above the median


def test_planted_duplicates_clusters_and_bad_media(planted):
    from dataprep.audit.core import audit_workspace

    ws, truth, ids = planted
    result = audit_workspace(ws)
    rows = manifests.load(ws, "audit")
    assert len(rows) == result.report.findings
    pairs = rows[rows["kind"] == "near_duplicate"]
    found = {frozenset(p) for p in zip(pairs["media_id"], pairs["other_media_id"], strict=True)}
    planted_pairs = {frozenset((ids[d["original"]], ids[d["copy"]])) for d in truth["duplicates"]}
    assert found == planted_pairs
    # every pair names its cluster and aligned frame ranges
    assert pairs["cluster"].notna().all() and pairs["frame_start"].notna().all()
    assert (pairs["action"] == "keep_one").all() and (pairs["score"] > 0.8).all()
    # leaks are exactly the pairs whose media sit in different splits
    splits = manifests.load(ws, "splits")
    split_of = dict(zip(splits["media_id"], splits["split"], strict=True))
    leaks = rows[rows["kind"] == "leak"]
    expected = {p for p in found if len({split_of[m] for m in p}) == 2}
    assert {
        frozenset(p) for p in zip(leaks["media_id"], leaks["other_media_id"], strict=True)
    } == expected
    # black and frozen clips, whole media
    whole = rows[rows["action"] == "drop_media"]
    assert set(whole.loc[whole["kind"] == "blank", "media_id"]) == {ids[p] for p in truth["black"]}
    assert set(whole.loc[whole["kind"] == "frozen", "media_id"]) == {
        ids[p] for p in truth["frozen"]
    }
    # a black clip is reported blank, not also frozen or dark
    black = {ids[p] for p in truth["black"]}
    assert not rows[rows["media_id"].isin(black) & (rows["kind"] != "blank")].size
    # classes with fewer than [audit] min_class_media (10) media, counted from the folder labels
    counts = manifests.load(ws, "media")["label"].value_counts()
    thin = {c for c in GESTURE_CLASSES if counts.get(c, 0) < ws.config.audit.min_class_media}
    assert set(rows.loc[rows["kind"] == "few_media", "label"]) == thin
    assert result.report.clusters == len(planted_pairs)


def test_signatures_are_cached_by_content(planted):
    ws, _, _ = planted
    cache = signatures.load_cache(ws)
    media = manifests.load(ws, "media")
    assert set(cache) == set(media["media_id"])
    first = next(iter(cache.values()))
    again = signatures.load_cache(ws)[first.media_id]
    assert np.array_equal(first.coefs, again.coefs) and np.array_equal(first.thumbs, again.thumbs)


def test_group_by_near_duplicates_leaves_no_leak_and_is_stable(planted, tmp_path):
    from dataprep.ingest import ingest
    from dataprep.split import split_media

    ws, truth, ids = planted
    split_media(ws, group_by="near-duplicates", reset=True, seed=0)
    frame = manifests.load(ws, "splits")
    split_of = dict(zip(frame["media_id"], frame["split"], strict=True))
    key_of = dict(zip(frame["media_id"], frame["group_key"], strict=True))
    for dup in truth["duplicates"]:
        a, b = ids[dup["original"]], ids[dup["copy"]]
        assert split_of[a] == split_of[b] and key_of[a] == key_of[b]
    # a new near-copy of an already split video joins its split; nobody moves
    original = truth["duplicates"][0]["original"]
    frames = [f.image for f in signatures._read_frames()(
        ws.root.parent / "raw" / original, sampling="all", size=None
    )]  # fmt: skip
    copy, _ = near_copy(frames, np.random.default_rng(77))
    extra = tmp_path / "extra" / "up"
    write_video(extra / "late_copy.mp4", frames=copy, fps=10.0, crf=28)
    ingest(ws, [tmp_path / "extra"], label_from_dir=True, jobs=1)
    report = split_media(ws)
    assert report.settings["group_by"] == "near-duplicates"
    after = manifests.load(ws, "splits")
    after_split = dict(zip(after["media_id"], after["split"], strict=True))
    assert all(after_split[m] == s for m, s in split_of.items())
    new_id = (set(after_split) - set(split_of)).pop()
    assert after_split[new_id] == split_of[ids[original]]


def test_runs_and_class_findings():
    assert quality.runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 2), (4, 4)]
    assert quality.runs(np.array([], bool)) == []

    class Settings:
        min_class_media = 3
        drift = 0.2

    label_of = {f"m{i}": "a" for i in range(10)} | {"n0": "b", "n1": "b"}
    split_of = {f"m{i}": "train" for i in range(10)} | {"n0": "test", "n1": "test"}
    rows = quality.class_findings(label_of, split_of, ["a", "b", "c"], Settings)
    few = {r["label"]: r for r in rows if r["kind"] == "few_media"}
    assert set(few) == {"b", "c"} and few["c"]["score"] == 1.0
    drift = {r["split"]: r for r in rows if r["kind"] == "class_drift"}
    assert set(drift) == {"test"}  # train: 100% a vs 83% overall, within 0.2
    expected = 0.5 * (abs(0 - 10 / 12) + abs(1 - 2 / 12))
    assert drift["test"]["score"] == pytest.approx(expected, abs=1e-4)


def test_confident_learning_flags_the_disagreeing_media():
    rng = np.random.default_rng(0)
    given = np.repeat(np.arange(3), 20)
    probs = np.full((60, 3), 0.05)
    probs[np.arange(60), given] = 0.9
    probs += rng.uniform(0, 0.02, probs.shape)
    wrong = [3, 25, 47]  # labelled 0, 1, 2 but the model says 2, 0, 1
    for n, target in zip(wrong, [2, 0, 1], strict=True):
        probs[n] = 0.05
        probs[n, target] = 0.9
    probs /= probs.sum(axis=1, keepdims=True)
    thresholds, confident, flagged = suspects.confident_learning(given, probs)
    assert np.flatnonzero(flagged).tolist() == wrong
    assert confident[wrong].tolist() == [2, 0, 1]
    assert (thresholds > 0.8).all()
    scored = suspects.Scored("r", ["x", "y", "z"], [f"m{i:02d}" for i in range(60)], given, probs)
    ranked = suspects.rank_suspects(scored)
    assert {s.media_id for s in ranked[:3]} == {"m03", "m25", "m47"}
    assert ranked[0].flagged and not ranked[3].flagged
    rows = suspects.suspect_findings(scored, ranked)
    assert {(r["label"], r["suggested_label"]) for r in rows} == {
        ("x", "z"),
        ("y", "x"),
        ("z", "y"),
    }


def test_candidate_pairs_never_enumerate_all_pairs(tmp_path):
    rng = np.random.default_rng(12)
    sigs = []
    for n in range(30):
        frames = gesture_frames(GESTURE_CLASSES[n % 4], rng, GestureSpec(size=48, frames=8))
        write_video(tmp_path / f"{n}.mp4", frames=frames, fps=10.0, crf=16)
        sigs.append(signatures.compute_signature(str(n), tmp_path / f"{n}.mp4", kind="video"))
    sigs.append(sigs[0])  # an identical signature collides in every key
    pairs = set(index.candidate_pairs(sigs))
    assert (0, 30) in pairs
    assert len(pairs) < 30 * 31 / 2 / 2


def test_cli_json_summary_and_bad_option(planted):
    ws, _, _ = planted
    runner = CliRunner()
    result = runner.invoke(app, ["-w", str(ws.root), "audit", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["media"] == len(manifests.load(ws, "media"))
    assert data["by_kind"]["near_duplicate"] == len(PLANT_PAIRS(ws))
    result = runner.invoke(app, ["-w", str(ws.root), "audit", "--dup-distance", "-1"])
    assert result.exit_code == 2 and "--dup-distance" in result.output
    result = runner.invoke(app, ["-w", str(ws.root), "audit", "--run", "nope"])
    assert result.exit_code == 2 and "no run 'nope'" in result.output


def PLANT_PAIRS(ws):  # noqa: N802 - the findings of the last audit, as pairs
    rows = manifests.load(ws, "audit")
    pairs = rows[rows["kind"] == "near_duplicate"]
    return list(zip(pairs["media_id"], pairs["other_media_id"], strict=True))


def test_unreadable_media_is_a_finding(workspace, tmp_path):
    from dataprep.audit.core import audit_workspace
    from dataprep.ingest import ingest
    from dataprep.testing.media import write_bad_files

    raw = tmp_path / "raw" / "a"
    write_bad_files(raw)
    frames = gesture_frames("left", np.random.default_rng(2), GestureSpec())
    write_video(raw / "ok.mp4", frames=frames, fps=10.0)
    ingest(workspace, [tmp_path / "raw"], label_from_dir=True, jobs=1)
    result = audit_workspace(workspace)
    unreadable = [f for f in result.findings if f["kind"] == "unreadable"]
    assert unreadable and all(f["action"] == "fix_file" and f["detail"] for f in unreadable)
    assert {f["label"] for f in result.findings if f["kind"] == "few_media"} == {"a", "b"}


def test_duplicates_module_clusters_are_connected_components():
    m = index.Match(0.0, 0.0, 3, (0, 2), (0, 2), 0.0)
    pairs = [
        duplicates.Pair("b", "c", m),
        duplicates.Pair("a", "b", m),
        duplicates.Pair("x", "y", m),
    ]
    assert duplicates.clusters(pairs) == {
        "a": "dup:a", "b": "dup:a", "c": "dup:a", "x": "dup:x", "y": "dup:x",
    }  # fmt: skip


@pytest.mark.slow
def test_label_suspects_from_a_real_run(tmp_path):
    """Digits through the normal pipeline with planted flips; a short cnn run; audit --run."""
    from dataprep.testing.digits import write_digits
    from dataprep.testing.planted import flip_folder_labels
    from dataprep.workspace import init_workspace

    write_digits(tmp_path / "raw", size=16, limit=300)
    flipped = flip_folder_labels(tmp_path / "raw", 0.05, seed=3)
    ws = init_workspace(tmp_path / "ws", classes=[str(d) for d in range(10)])
    runner = CliRunner()

    def call(*args):
        result = runner.invoke(app, ["-q", "-w", str(ws.root), *args])
        assert result.exit_code == 0, result.output
        return result.output

    call("ingest", str(tmp_path / "raw"), "--label-from-dir")
    call("frames", "--size", "16", "--format", "png")
    call("split", "--ratios", "0.5,0.1,0.4", "--seed", "0")
    call("stats")
    call("export", "--unit", "frame", "--name", "d")
    call("train-baseline", "--export", "d", "--model", "cnn-bn", "--epochs", "4",
         "--image-size", "16", "--seed", "0", "--run-name", "r")  # fmt: skip
    data = json.loads(call("audit", "--run", "r", "--json"))
    splits = manifests.load(ws, "splits")
    held_out = set(splits.loc[splits["split"] != "train", "media_id"])
    assert data["run"] == "r" and data["scored_media"] == len(held_out)
    rows = manifests.load(ws, "audit")
    found = rows[rows["kind"] == "label_suspect"]
    assert set(found["media_id"]) <= held_out
    assert found["suggested_label"].notna().all()
    assert (found["suggested_label"] != found["label"]).all()
    # the ranking puts planted flips near the top (a weak model: not all of them)
    media = manifests.load(ws, "media")
    by_path = {Path(p).name: m for m, ps in zip(media["media_id"], media["paths"], strict=True)
               for p in ps}  # fmt: skip
    planted = {by_path[Path(f["path"]).name] for f in flipped} & held_out
    from dataprep.audit.suspects import suspect_media

    top = suspect_media(ws, "r", top=max(1, len(planted)))
    assert len(set(top) & planted) >= 1
    with pytest.raises(Exception, match="run `dataprep audit --run other` first"):
        suspect_media(ws, "other")


def test_signatures_in_worker_processes_match(planted, tmp_path):
    from dataprep.workspace import init_workspace

    ws, _, _ = planted
    rows = manifests.records(manifests.load(ws, "media"))[:4]
    fresh = init_workspace(tmp_path / "fresh", classes=list(GESTURE_CLASSES))
    pooled = duplicates.media_signatures(fresh, rows, jobs=2)
    here = signatures.load_cache(ws)
    for row in rows:
        assert np.array_equal(pooled[row["media_id"]].coefs, here[row["media_id"]].coefs)
    assert set(signatures.load_cache(fresh)) == {r["media_id"] for r in rows}
