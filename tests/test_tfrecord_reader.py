"""The pure-Python TFRecord and tf.train.Example codec against TensorFlow's own."""

from __future__ import annotations

import gzip

import pytest

from dataprep.tfrecord_reader import (
    CorruptShardError,
    crc32c,
    crc32c_pure,
    encode_example,
    encode_sequence_example,
    frame_record,
    iter_records,
    masked_crc32c,
    parse_example,
    parse_sequence_example,
    scan_framing,
)


def test_crc32c_known_values_and_pure_fallback_agree():
    assert crc32c_pure(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc32c(b"123456789") == 0xE3069283
    data = bytes(range(256)) * 7
    assert crc32c(data) == crc32c_pure(data)
    assert masked_crc32c(b"") == ((((0 >> 15) | (0 << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


@pytest.mark.slow  # imports TensorFlow
def test_examples_match_tensorflow_both_ways(tmp_path):
    import tensorflow as tf

    features = {
        "image": b"\xff\xd8\x00bytes",
        "label": 3,
        "neg": -7,
        "big": 2**40,
        "timestamp_s": 1.5,
        "media_id": "abc",
        "many": [1.0, 2.5],
    }
    ours = encode_example(features)
    theirs = tf.train.Example.FromString(ours)
    assert theirs.features.feature["neg"].int64_list.value == [-7]
    assert theirs.features.feature["big"].int64_list.value == [2**40]
    assert list(theirs.features.feature["many"].float_list.value) == [1.0, 2.5]
    parsed = parse_example(theirs.SerializeToString())
    assert parsed == {
        "image": [b"\xff\xd8\x00bytes"],
        "label": [3],
        "neg": [-7],
        "big": [2**40],
        "timestamp_s": [1.5],
        "media_id": [b"abc"],
        "many": [1.0, 2.5],
    }
    # an unpacked repeated field (allowed on the wire) decodes too
    unpacked = tf.train.Example()
    unpacked.features.feature["x"].int64_list.value.extend([5, 6])
    assert parse_example(unpacked.SerializeToString())["x"] == [5, 6]

    sequence = encode_sequence_example(
        {"label": 1, "fps": 10.0}, {"frames": [b"a", b"bb"], "frame_index": [4, 5]}
    )
    tf_sequence = tf.train.SequenceExample.FromString(sequence)
    assert [
        f.bytes_list.value[0] for f in tf_sequence.feature_lists.feature_list["frames"].feature
    ] == [b"a", b"bb"]
    parsed_seq = parse_sequence_example(tf_sequence.SerializeToString())
    assert parsed_seq.context == {"label": [1], "fps": [10.0]}
    assert parsed_seq.feature_lists == {"frames": [[b"a"], [b"bb"]], "frame_index": [[4], [5]]}


@pytest.mark.slow  # imports TensorFlow
def test_framing_is_byte_identical_to_tensorflow_writer_and_gzip_reads(tmp_path):
    import tensorflow as tf

    messages = [encode_example({"i": i, "data": b"x" * i}) for i in range(20)]
    ours = tmp_path / "ours.tfrecord"
    ours.write_bytes(b"".join(frame_record(m) for m in messages))
    theirs = tmp_path / "theirs.tfrecord"
    with tf.io.TFRecordWriter(str(theirs)) as writer:
        for message in messages:
            writer.write(message)
    assert ours.read_bytes() == theirs.read_bytes()
    packed = tmp_path / "ours.tfrecord.gz"
    with gzip.GzipFile(filename="", mode="wb", fileobj=open(packed, "wb"), mtime=0) as stream:
        stream.write(ours.read_bytes())
    read_by_tf = [r.numpy() for r in tf.data.TFRecordDataset(str(packed), compression_type="GZIP")]
    assert read_by_tf == messages == list(iter_records(packed))
    assert scan_framing(ours) == scan_framing(packed) == 20


def test_damage_is_reported_with_file_record_and_offset(tmp_path):
    path = tmp_path / "train-00000-of-00001.tfrecord"
    records = [frame_record(b"a" * 50), frame_record(b"b" * 50)]
    path.write_bytes(b"".join(records))
    damaged = bytearray(path.read_bytes())
    damaged[len(records[0]) + 20] ^= 1
    path.write_bytes(bytes(damaged))
    with pytest.raises(
        CorruptShardError,
        match=r"train-00000-of-00001.tfrecord: record 1 "
        r"\(byte 66\) has a bad data checksum",
    ):
        list(iter_records(path))
    assert scan_framing(path) == 2  # the framing is intact
    path.write_bytes(b"".join(records)[:-10])
    with pytest.raises(CorruptShardError, match="record 1 .*truncated"):
        scan_framing(path)
    with pytest.raises(CorruptShardError, match="record 1 .*truncated"):
        list(iter_records(path))
    path.write_bytes(b"\x05" * 30)
    with pytest.raises(CorruptShardError, match="record 0 .*length checksum"):
        list(iter_records(path))
    with pytest.raises(ValueError, match="tf.train.Example"):
        parse_example(b"\x0a\xff\xff")
