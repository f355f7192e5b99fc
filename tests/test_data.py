"""The loaders: tf.data and the TensorFlow-free numpy reader agree; damage is named."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from export_fixtures import build_workspace

from dataprep.data import (
    ExportNotReady,
    iter_examples,
    iter_numpy,
    load,
    naming_corrupt_shards,
    verify_export,
)
from dataprep.errors import UsageError
from dataprep.export.dataset import export_dataset
from dataprep.split import split_media
from dataprep.tfrecord_reader import CorruptShardError


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    workspace = build_workspace(tmp_path_factory.mktemp("data"))
    split_media(workspace, ratios=[0.5, 0.25, 0.25], seed=1)
    stats = {
        "mean": [0.2, 0.3, 0.4],
        "std": [0.5, 0.25, 0.2],
        "scale": "0-1",
        "count_pixels": 1,
        "count_frames": 1,
        "split": "train",
        "fingerprint": "x",
    }
    (workspace.manifests / "stats.json").write_text(json.dumps(stats))
    export_dataset(workspace, name="frames", shard_size="4KB")
    export_dataset(
        workspace,
        name="clips",
        unit="clip",
        clip_len=6,
        clip_stride=3,
        compression="gzip",
        shard_size="4KB",
    )
    # clips longer than the 10- and 11-frame videos: those are padded (length < 12)
    export_dataset(workspace, name="long-clips", unit="clip", clip_len=12, clip_stride=12)
    return workspace


def _tf_batches(dataset):
    return [(x.numpy(), y.numpy()) for x, y in dataset]


@pytest.mark.slow  # tf.data
@pytest.mark.parametrize("name", ["frames", "clips"])
def test_numpy_reader_and_tf_data_agree(ws, name):
    folder = ws.exports_dir / name
    options = dict(batch_size=4, shuffle=False, deterministic=True)
    tf_batches = _tf_batches(load(folder, "train", **options))
    np_batches = list(iter_numpy(folder, "train", **options))
    assert len(tf_batches) == len(np_batches) > 1
    for (tf_x, tf_y), (np_x, np_y) in zip(tf_batches, np_batches, strict=True):
        assert tf_x.dtype == np_x.dtype == np.float32
        assert tf_y.dtype == np_y.dtype == np.int32
        assert tf_x.shape == np_x.shape
        np.testing.assert_array_equal(tf_y, np_y)
        np.testing.assert_allclose(tf_x, np_x, atol=1e-5)
    expected_rank = 4 if name == "frames" else 5
    assert tf_batches[0][0].ndim == expected_rank


@pytest.mark.slow  # tf.data
@pytest.mark.parametrize("augment", [None, "medium"])
def test_padded_frames_are_exactly_zero_in_both_loaders(ws, augment):
    folder = ws.exports_dir / "long-clips"
    lengths = [ex["length"] for ex in iter_examples(folder, "train")]
    assert min(lengths) < 12 and max(lengths) == 12  # padded and full clips
    # one shard at a time: the loaders' order is the file order of iter_examples
    options = dict(batch_size=3, shuffle=False, deterministic=True, cycle_length=1, seed=2)
    tf_clips = np.concatenate(
        [x for x, _ in _tf_batches(load(folder, "train", augment=augment, **options))]
    )
    np_clips = np.concatenate(
        [x for x, _ in iter_numpy(folder, "train", augment=augment, **options)]
    )
    assert tf_clips.shape == np_clips.shape == (len(lengths), 12, 48, 64, 3)
    for tf_clip, np_clip, length in zip(tf_clips, np_clips, lengths, strict=True):
        assert not np.any(tf_clip[length:]) and not np.any(np_clip[length:])
        # every real frame (normalized) has non-zero values: a model can tell them apart
        assert np.any(tf_clip[:length].reshape(length, -1), axis=1).all()
        np.testing.assert_allclose(tf_clip, np_clip, atol=1e-4)


@pytest.mark.slow  # tf.data
def test_normalization_uses_the_export_stats(ws):
    folder = ws.exports_dir / "frames"
    raw = next(
        iter(load(folder, "val", batch_size=3, shuffle=False, normalize=False, deterministic=True))
    )[0].numpy()
    norm = next(iter(load(folder, "val", batch_size=3, shuffle=False, deterministic=True)))[
        0
    ].numpy()
    mean, std = np.array([0.2, 0.3, 0.4]), np.array([0.5, 0.25, 0.2])
    np.testing.assert_allclose(norm, (raw / 255.0 - mean) / std, atol=1e-4)
    assert raw.max() > 200  # normalize=False keeps 0..255


@pytest.mark.slow  # tf.data
def test_resize_shuffle_repeat_and_seeded_determinism(ws):
    folder = ws.exports_dir / "clips"
    options = dict(batch_size=2, image_size=(24, 32), seed=5, deterministic=True)
    first = _tf_batches(load(folder, "train", **options))
    second = _tf_batches(load(folder, "train", **options))
    assert first[0][0].shape == (2, 6, 24, 32, 3)
    for (a, b), (c, d) in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    total = sum(len(y) for _, y in first)
    repeated = load(folder, "train", repeat=True, **options).take(len(first) * 2 + 1)
    assert sum(len(y) for _, y in _tf_batches(repeated)) > total
    np_first = list(iter_numpy(folder, "train", **options))
    np_second = list(iter_numpy(folder, "train", **options))
    assert [y.tolist() for _, y in np_first] == [y.tolist() for _, y in np_second]
    assert sorted(np.concatenate([y for _, y in np_first]).tolist()) == sorted(
        np.concatenate([y for _, y in first]).tolist()
    )


@pytest.mark.slow  # tf.data
def test_augmentation_is_clip_consistent_and_seeded(ws):
    folder = ws.exports_dir / "clips"
    options = dict(
        batch_size=2, shuffle=False, deterministic=True, normalize=False, seed=3, augment="medium"
    )
    one = _tf_batches(load(folder, "train", **options))
    two = _tf_batches(load(folder, "train", **options))
    plain = _tf_batches(
        load(folder, "train", batch_size=2, shuffle=False, deterministic=True, normalize=False)
    )
    assert any(not np.array_equal(a[0], p[0]) for a, p in zip(one, plain, strict=True))
    for (a, _), (b, _) in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    numpy_batches = list(iter_numpy(folder, "train", **options))
    for (a, _), (b, _) in zip(one, numpy_batches, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_truncated_shard_is_named_with_its_record(ws, tmp_path):
    import shutil

    folder = tmp_path / "broken"
    shutil.copytree(ws.exports_dir / "frames", folder)
    info = json.loads((folder / "dataset_info.json").read_text())
    shard = folder / info["splits"]["train"]["shards"][1]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) - 100])
    with pytest.raises(CorruptShardError, match=rf"{shard.name}: record \d+ .*truncated"):
        load(folder, "train", batch_size=2)
    with pytest.raises(CorruptShardError, match=shard.name):
        list(iter_numpy(folder, "train", batch_size=2))


def test_flipped_byte_is_named_by_full_verify_and_the_numpy_reader(ws, tmp_path):
    import shutil

    folder = tmp_path / "flipped"
    shutil.copytree(ws.exports_dir / "frames", folder)
    info = json.loads((folder / "dataset_info.json").read_text())
    shard = folder / info["splits"]["val"]["shards"][0]
    data = bytearray(shard.read_bytes())
    data[200] ^= 0xFF  # inside the first record's image bytes
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptShardError, match=rf"{shard.name}: record 0 .*data checksum"):
        load(folder, "val", batch_size=2, verify="full")
    with pytest.raises(CorruptShardError, match=rf"{shard.name}: record 0"):
        list(iter_numpy(folder, "val", batch_size=2, shuffle=False))
    with pytest.raises(CorruptShardError, match=shard.name):
        verify_export(folder)


@pytest.mark.slow  # tf.data
def test_damage_found_while_tf_data_reads_is_named_by_the_shared_helper(ws, tmp_path):
    import shutil

    import tensorflow as tf

    folder = tmp_path / "flipped-late"
    shutil.copytree(ws.exports_dir / "frames", folder)
    info = json.loads((folder / "dataset_info.json").read_text())
    shard = folder / info["splits"]["train"]["shards"][1]
    data = bytearray(shard.read_bytes())
    data[200] ^= 0x01  # one bit inside the first record's data: the framing stays intact
    shard.write_bytes(bytes(data))
    dataset = load(folder, "train", batch_size=2, shuffle=False)  # the framing check passes
    with pytest.raises(tf.errors.DataLossError):
        _tf_batches(dataset)  # what TensorFlow alone says: no file name
    named = rf"^{shard.name}: record 0 .*data checksum"
    with pytest.raises(CorruptShardError, match=named), naming_corrupt_shards(folder, "train"):
        _tf_batches(dataset)
    # other errors pass through unchanged
    with pytest.raises(ZeroDivisionError), naming_corrupt_shards(folder, "train"):
        _ = 1 / 0


def test_wrong_unit_format_and_unfinished_exports_are_refused(ws, tmp_path):
    with pytest.raises(UsageError, match="unit='frame'"):
        load(ws.exports_dir / "clips", "train", batch_size=2, unit="frame")
    with pytest.raises(ExportNotReady):
        list(iter_numpy(tmp_path, "train", batch_size=2))
    with pytest.raises(UsageError, match="split 'holdout'"):
        load(ws.exports_dir / "frames", "holdout", batch_size=2)


def test_numpy_reader_does_not_import_tensorflow(ws):
    code = (
        "import sys\n"
        "from dataprep.data import iter_numpy\n"
        f"batches = list(iter_numpy({str(ws.exports_dir / 'clips')!r}, 'train', batch_size=2,"
        " augment='light', seed=1))\n"
        "assert batches and batches[0][0].shape[1:] == (6, 48, 64, 3)\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.slow
def test_load_with_default_verification_names_the_damaged_shard_and_record(ws, tmp_path):
    """Issue 11 item 10: iterating ``load()`` (default framing check) names the shard and the
    record of a damaged uncompressed shard, not TensorFlow's bare "corrupted record at N"."""
    import shutil

    import tensorflow as tf

    folder = tmp_path / "damaged-data"
    shutil.copytree(ws.exports_dir / "frames", folder)
    info = json.loads((folder / "dataset_info.json").read_text())
    shard = folder / info["splits"]["val"]["shards"][0]
    data = bytearray(shard.read_bytes())
    data[300] ^= 0x04  # inside the first record's data: the framing check passes
    shard.write_bytes(bytes(data))
    dataset = load(folder, "val", batch_size=2, shuffle=False)
    with pytest.raises(CorruptShardError, match=rf"^{shard.name}: record 0 .*data checksum") as err:
        _tf_batches(dataset)
    assert isinstance(err.value, tf.errors.DataLossError)  # what callers caught so far
    assert "re-run `dataprep export --overwrite`" in str(err.value)
    # a shuffled, repeated dataset names it too (the damage is met in the first epoch)
    repeated = load(folder, "val", batch_size=2, repeat=True, seed=1)
    with pytest.raises(CorruptShardError, match=shard.name):
        for count, _ in enumerate(repeated):
            assert count < 100
