"""Export's plan on disk: hash buckets spilled and sorted one at a time give the same order,
the same shards and the same bytes as the plan held in memory; the frames manifest is read a
media at a time (in any row order)."""

from __future__ import annotations

import hashlib
import math
import random

import pytest
from export_fixtures import build_workspace, copy_workspace

from dataprep import manifests
from dataprep.data import read_info
from dataprep.export import plan_store
from dataprep.export.dataset import PLAN_DIR, export_dataset
from dataprep.export.plan_store import ExampleStore, example_hash, shard_counts
from dataprep.export.selection import Example, FrameItem
from dataprep.split import split_media


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    workspace = build_workspace(tmp_path_factory.mktemp("plan"))
    split_media(workspace, ratios=[0.5, 0.25, 0.25], seed=1)
    return workspace


def _by_middle_byte(sizes: list[int], shard_size: int) -> list[int]:
    """The rule written out directly: item i goes to shard floor(middle_i * n / total)."""
    total = sum(sizes)
    n = max(1, math.ceil(total / shard_size))
    shards: dict[int, int] = {}
    offset = 0
    for size in sizes:
        index = min(n - 1, int((offset + size / 2) * n / total))
        shards[index] = shards.get(index, 0) + 1
        offset += size
    return [shards[i] for i in sorted(shards)]


def test_shard_counts_follow_the_middle_byte_rule():
    rng = random.Random(0)
    for _ in range(200):
        sizes = [rng.choice([1, 10, 100, 5000]) for _ in range(rng.randint(1, 60))]
        shard_size = rng.choice([50, 300, 1000, 10**6])
        counts = shard_counts(iter(sizes), sum(sizes), shard_size)
        assert counts == _by_middle_byte(sizes, shard_size)
        assert sum(counts) == len(sizes) and all(counts)
    assert shard_counts(iter([]), 0, 100) == []


def _example(i: int) -> Example:
    media = hashlib.sha256(str(i // 7).encode()).hexdigest()
    frame = FrameItem(media, i % 7, 0, i / 10, f"frames/{media}/{i % 7}.jpg", 8, 8, False, "a")
    return Example(f"train/{media}/0/{i % 7}", "train", "a", media, 0, (frame,), 1, 10.0, 100 + i)


def test_spilled_buckets_read_back_in_hash_order_with_the_same_shards(tmp_path, monkeypatch):
    examples = [_example(i) for i in range(500)]
    random.Random(1).shuffle(examples)
    memory = ExampleStore(None)
    monkeypatch.setattr(plan_store, "FLUSH_EXAMPLES", 37)
    disk = ExampleStore(tmp_path / "plan", bits=3)
    for example in examples:
        memory.add(example)
        disk.add(example)
    assert len(list((tmp_path / "plan").glob("bucket-*.examples.pickle"))) == 8  # all spilled
    memory.finish(shard_size=5000)
    disk.finish(shard_size=5000)
    expected = sorted(examples, key=lambda e: (example_hash(e.key), e.key))
    assert list(memory) == list(disk) == expected
    assert memory.counts == disk.counts and len(disk.counts) > 5
    assert [len(s) for s in disk.shards()] == disk.counts
    assert [e for shard in disk.shards() for e in shard] == expected
    assert len(disk) == 500 and disk.total_size == sum(e.size for e in examples)
    disk.remove()
    assert not (tmp_path / "plan").exists()


def _tree(folder) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "dataset_info.json"
    }


def _info(folder) -> dict:
    info = read_info(folder)
    return {k: v for k, v in info.items() if k not in ("created_at", "seconds")}


@pytest.mark.parametrize("unit", ["frame", "clip"])
def test_a_plan_cut_into_spilled_buckets_writes_the_same_bytes(ws, tmp_path, monkeypatch, unit):
    options = dict(unit=unit, clip_len=4, clip_stride=2, shard_size="6KB")
    whole = export_dataset(ws, name=f"whole-{unit}", **options)
    assert sum(whole.shards.values()) > 3
    monkeypatch.setattr(plan_store, "BUCKET_FRAMES", 10)  # 2^n buckets of ~10 frames
    monkeypatch.setattr(plan_store, "FLUSH_EXAMPLES", 5)
    flushes = []
    flush = ExampleStore._flush
    monkeypatch.setattr(ExampleStore, "_flush", lambda self: flushes.append(1) or flush(self))
    spilled = copy_workspace(ws, tmp_path / "spilled")
    report = export_dataset(spilled, name=f"whole-{unit}", overwrite=True, **options)
    assert len(flushes) > 5, "the examples went to bucket files"
    assert report.examples == whole.examples and report.shards == whole.shards
    assert report.dropped == whole.dropped and report.padded_clips == whole.padded_clips
    a, b = ws.exports_dir / f"whole-{unit}", spilled.exports_dir / f"whole-{unit}"
    assert _tree(a) == _tree(b)
    assert _info(a)["splits"] == _info(b)["splits"]
    assert not (spilled.state_dir / PLAN_DIR).exists(), "the plan's files are removed"


def test_frames_manifest_in_any_row_order_gives_the_same_export(ws, tmp_path):
    export_dataset(ws, name="sorted", shard_size="6KB")
    shuffled = copy_workspace(ws, tmp_path / "shuffled")
    frames = manifests.load(shuffled, "frames")
    manifests.save(shuffled, "frames", frames.sample(frac=1.0, random_state=3))
    assert list(manifests.load(shuffled, "frames")["media_id"]) != sorted(frames["media_id"])
    export_dataset(shuffled, name="sorted", shard_size="6KB", overwrite=True)
    assert _tree(ws.exports_dir / "sorted") == _tree(shuffled.exports_dir / "sorted")
