"""Splits: grouped (no leak), stratified as far as groups allow, stable when media are added."""

from __future__ import annotations

import pandas as pd
import pytest
from export_fixtures import build_workspace, segment_media_id, write_raw
from hypothesis import given, settings
from hypothesis import strategies as st

from dataprep import manifests
from dataprep.errors import UsageError
from dataprep.split import assign_groups, group_keys, split_by_position, split_media

RATIOS = [0.6, 0.2, 0.2]


def _media_frame(groups: list[int], labels: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "media_id": [f"m{i:04d}" for i in range(len(groups))],
            "path": [f"/data/session{g}/clip{i}.mp4" for i, g in enumerate(groups)],
            "label": labels,
        }
    )


structures = st.integers(min_value=1, max_value=40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 12), min_size=n, max_size=n),
        st.lists(st.sampled_from(["a", "b", "c", None]), min_size=n, max_size=n),
        st.integers(0, 2**31),
        st.booleans(),
    )
)


@settings(max_examples=150, deadline=None)
@given(structures)
def test_no_group_lands_in_two_splits(structure):
    groups, labels, seed, stratify = structure
    media = _media_frame(groups, labels)
    for group_by in ("folder", "label"):
        key_of = group_keys(media, group_by)
        classes = {key_of[m]: lab for m, lab in zip(media["media_id"], labels, strict=True)}
        assigned = assign_groups(classes, RATIOS, seed=seed, stratify=stratify)
        split_of_media = {m: assigned[key_of[m]] for m in media["media_id"]}
        by_group: dict[str, set[str]] = {}
        for media_id, split in split_of_media.items():
            by_group.setdefault(key_of[media_id], set()).add(split)
        assert all(len(splits) == 1 for splits in by_group.values())
        assert set(split_of_media.values()) <= {"train", "val", "test"}
        if group_by == "folder":  # media of one session folder always share the split
            for session in set(groups):
                members = [
                    m for m, g in zip(media["media_id"], groups, strict=True) if g == session
                ]
                assert len({split_of_media[m] for m in members}) == 1


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", None]), min_size=2, max_size=40),
    st.integers(0, 1000),
    st.integers(1, 20),
    st.booleans(),
)
def test_adding_groups_never_moves_existing_ones(labels, seed, added, stratify):
    classes = {f"g{i}": lab for i, lab in enumerate(labels)}
    first = assign_groups(classes, RATIOS, seed=seed, stratify=stratify)
    more = {**classes, **{f"new{i}": labels[i % len(labels)] for i in range(added)}}
    second = assign_groups(more, RATIOS, seed=seed, stratify=stratify, previous=first)
    assert {k: second[k] for k in first} == first
    if not stratify:  # a pure function of key and seed: no memory needed
        assert assign_groups(more, RATIOS, seed=seed, stratify=False) == second


def test_stratification_spreads_every_class_over_the_splits():
    classes = {f"{label}{i}": label for label in "abc" for i in range(10)}
    assigned = assign_groups(classes, [0.8, 0.1, 0.1], seed=0, stratify=True)
    for label in "abc":
        splits = [assigned[f"{label}{i}"] for i in range(10)]
        assert (splits.count("train"), splits.count("val"), splits.count("test")) == (8, 1, 1)


def test_split_by_position_follows_the_ratios():
    assert split_by_position(0.1, RATIOS) == "train"
    assert split_by_position(0.7, RATIOS) == "val"
    assert split_by_position(0.95, RATIOS) == "test"
    assert split_by_position(0.95, [0.5, 0.5, 0.0]) == "val"


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("split"))


def test_split_media_groups_stratifies_and_counts(labelled, tmp_path):
    import shutil

    from dataprep.workspace import open_workspace

    shutil.copytree(labelled.root, tmp_path / "ws")
    ws = open_workspace(tmp_path / "ws")
    report = split_media(ws, ratios=[0.5, 0.25, 0.25], seed=2)
    splits = manifests.load(ws, "splits")
    media = manifests.load(ws, "media")
    assert sorted(splits["media_id"]) == sorted(media["media_id"])
    assert (splits["group_key"] == splits["media_id"]).all()
    # the segment-labelled b video counts as class a (most of its labelled frames): 5 a, 3 b
    for label, groups in (("a", 5), ("b", 3)):
        per_split = [report.by_class[split].get(label, 0) for split in ("train", "val", "test")]
        assert sum(per_split) == groups and min(per_split) >= 1
    assert report.by_class["train"]["a"] >= 2
    assert report.warnings == []
    # frames per class count segment frames under their segment label
    total = sum(sum(c.values()) for c in report.frames_by_class.values())
    assert total == len(manifests.load(ws, "frames"))
    segment_split = splits.set_index("media_id").loc[segment_media_id(ws), "split"]
    assert report.frames_by_class[segment_split].get("(unlabelled)", 0) == 17 - 7

    # adding media never moves the existing ones
    from dataprep.frames import extract_frames
    from dataprep.ingest import ingest

    before = dict(zip(splits["media_id"], splits["split"], strict=True))
    raw = write_raw(tmp_path / "more", {"a": [20, 21, 22], "b": [23, 24, 25]})
    ingest(ws, [raw], label_from_dir=True, jobs=1)
    extract_frames(ws, sampling="all", size="48", jobs=1)
    again = split_media(ws)
    after = manifests.load(ws, "splits")
    after_map = dict(zip(after["media_id"], after["split"], strict=True))
    assert {m: after_map[m] for m in before} == before
    assert len(after_map) == len(before) + 6
    assert again.kept == 8 and again.placed == 6

    # other settings need --reset, which may move everything
    with pytest.raises(UsageError, match="--reset"):
        split_media(ws, seed=3)
    reset = split_media(ws, seed=3, reset=True)
    assert reset.kept == 0


def test_group_by_folder_and_missing_class_warning(labelled, tmp_path):
    import shutil

    from dataprep.workspace import open_workspace

    shutil.copytree(labelled.root, tmp_path / "ws")
    ws = open_workspace(tmp_path / "ws")
    report = split_media(ws, group_by="folder", reset=True)
    splits = manifests.load(ws, "splits")
    # two folders (raw/a, raw/b): each lands whole in one split, so classes are missing
    assert splits["group_key"].nunique() == 2
    assert splits.groupby("group_key")["split"].nunique().max() == 1
    assert any("has no media in the" in w for w in report.warnings)
    with pytest.raises(UsageError, match="not a media column"):
        split_media(ws, group_by="session", reset=True)
    with pytest.raises(UsageError, match="--ratios"):
        split_media(ws, ratios="0.5,0.5", reset=True)


def test_splits_changed_behind_the_state_ask_for_reset(labelled, tmp_path):
    import shutil

    from dataprep.workspace import open_workspace

    shutil.copytree(labelled.root, tmp_path / "ws")
    ws = open_workspace(tmp_path / "ws")
    split_media(ws, seed=5, reset=True)
    assert split_media(ws).settings["seed"] == 5  # options not given reuse the recorded ones
    # a run killed between writing splits.parquet and its settings leaves them unmatched
    splits = manifests.load(ws, "splits")
    manifests.save(ws, "splits", splits.iloc[::-1].reset_index(drop=True))
    with pytest.raises(UsageError, match="--reset"):
        split_media(ws, seed=5)
    assert split_media(ws, seed=5, reset=True).kept == 0
