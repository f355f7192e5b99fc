"""A TensorFlow-free reader (and the matching encoder) of TFRecord files of ``tf.train.Example``.

Two small pieces, both pure Python so that PyTorch, JAX or Keras-on-another-backend users can read
a dataprep export without installing TensorFlow:

* TFRecord framing: each record is ``uint64 length``, ``uint32 masked_crc32c(length)``,
  ``data``, ``uint32 masked_crc32c(data)`` (little endian). Both checksums are verified; a bad
  one raises :class:`CorruptShardError` naming the file, the record number and the byte offset.
  GZIP-compressed shards (``.gz``) are the same stream inside a gzip file.
* Protocol buffers: instead of depending on the ``protobuf`` package (and on TensorFlow's generated
  ``example_pb2``), a ~100 line varint / length-delimited parser decodes exactly the messages of
  ``tensorflow/core/example/example.proto`` and ``feature.proto``. The same module encodes them,
  with map keys sorted, so the writer's bytes are deterministic.

CRC32C uses the ``google-crc32c`` C extension when it is installed and a table-driven pure Python
implementation otherwise (correct, about 10 MB/s).
"""

from __future__ import annotations

import gzip
import io
import numbers
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from dataprep.errors import DataprepError

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
HEADER_BYTES = 12  # length (8) + masked crc of the length (4)
FOOTER_BYTES = 4  # masked crc of the data
_MASK_DELTA = 0xA282EAD8


class CorruptShardError(DataprepError):
    """A TFRecord shard is truncated or has a checksum or message that does not decode."""


# --------------------------------------------------------------------------------------- CRC32C


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _make_table()


def crc32c_pure(data: bytes) -> int:
    """CRC32C (Castagnoli) of ``data`` in pure Python."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


try:  # the C extension is ~1000x faster; the pure version keeps the reader dependency-free
    import google_crc32c as _gcrc

    if _gcrc.implementation != "c":  # its own fallback is no faster than ours
        raise ImportError

    def crc32c(data: bytes) -> int:
        """CRC32C (Castagnoli) of ``data``."""
        return _gcrc.value(data)

except ImportError:  # pragma: no cover - depends on the environment
    crc32c = crc32c_pure


def masked_crc32c(data: bytes) -> int:
    """The rotated-and-offset CRC32C that TFRecord stores (see TensorFlow's ``crc32c::Mask``)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


# ------------------------------------------------------------------------------------- framing


def frame_record(data: bytes) -> bytes:
    """One TFRecord: header, ``data`` and footer."""
    length = _U64.pack(len(data))
    return b"".join(
        (length, _U32.pack(masked_crc32c(length)), data, _U32.pack(masked_crc32c(data)))
    )


def is_gzip_path(path: Path | str) -> bool:
    """True for shards written with ``--compression gzip`` (``.gz`` suffix)."""
    return str(path).endswith(".gz")


def open_shard(path: Path | str) -> BinaryIO:
    """Opens a shard for reading, decompressing ``.gz`` files."""
    path = Path(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - returned to the caller
    except OSError as exc:
        raise CorruptShardError(
            f"{path}: cannot be opened ({exc.strerror}); re-run the export"
        ) from None
    if is_gzip_path(path):
        return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
    return handle


def iter_records(
    path: Path | str, *, verify: bool = True, check_data: bool = True
) -> Iterator[bytes]:
    """Yields the records of one TFRecord shard, in file order.

    Args:
        path: the shard (``.gz`` ones are decompressed).
        verify: check the masked CRC32C of every length field.
        check_data: also check the CRC32C of every record's data (reads everything).

    Raises:
        CorruptShardError: naming the file, the record number and its byte offset (in the
            uncompressed stream) when a record is truncated or a checksum does not match.
    """
    path = Path(path)
    with open_shard(path) as handle:
        index = 0
        offset = 0
        while True:
            try:
                header = handle.read(HEADER_BYTES)
            except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
                raise _corrupt(path, index, offset, f"cannot be decompressed ({exc})") from None
            if not header:
                return
            if len(header) < HEADER_BYTES:
                raise _corrupt(path, index, offset, "is truncated inside its header")
            length_bytes = header[:8]
            (length,) = _U64.unpack(length_bytes)
            if verify and _U32.unpack(header[8:])[0] != masked_crc32c(length_bytes):
                raise _corrupt(path, index, offset, "has a bad length checksum")
            try:
                body = handle.read(length + FOOTER_BYTES)
            except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
                raise _corrupt(path, index, offset, f"cannot be decompressed ({exc})") from None
            if len(body) < length + FOOTER_BYTES:
                raise _corrupt(path, index, offset, "is truncated inside its data")
            data = body[:length]
            if check_data and _U32.unpack(body[length:])[0] != masked_crc32c(data):
                raise _corrupt(path, index, offset, "has a bad data checksum")
            yield data
            index += 1
            offset += HEADER_BYTES + length + FOOTER_BYTES


def scan_framing(path: Path | str) -> int:
    """Walks a shard's record headers without reading the data; returns the record count.

    Uncompressed shards are walked by seeking, so this costs one small read per record; it
    catches truncated files and damaged headers. GZIP shards are decompressed while walking.

    Raises:
        CorruptShardError: naming the file and record.
    """
    path = Path(path)
    if is_gzip_path(path):
        return sum(1 for _ in iter_records(path, verify=True, check_data=False))
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CorruptShardError(
            f"{path}: cannot be read ({exc.strerror}); re-run the export"
        ) from None
    index = 0
    offset = 0
    with open(path, "rb") as handle:
        while offset < size:
            handle.seek(offset)
            header = handle.read(HEADER_BYTES)
            if len(header) < HEADER_BYTES:
                raise _corrupt(path, index, offset, "is truncated inside its header")
            (length,) = _U64.unpack(header[:8])
            if _U32.unpack(header[8:])[0] != masked_crc32c(header[:8]):
                raise _corrupt(path, index, offset, "has a bad length checksum")
            end = offset + HEADER_BYTES + length + FOOTER_BYTES
            if end > size:
                raise _corrupt(path, index, offset, "is truncated inside its data")
            offset = end
            index += 1
    return index


def _corrupt(path: Path, index: int, offset: int, what: str) -> CorruptShardError:
    return CorruptShardError(
        f"{path.name}: record {index} (byte {offset}) {what}; the shard {path} is damaged, "
        "re-run `dataprep export --overwrite`"
    )


# ------------------------------------------------------------------------------ protobuf wire


_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """Yields ``(field_number, wire_type, value)``; LEN values are ``bytes`` (memory slices)."""
    pos = 0
    end = len(buf)
    while pos < end:
        tag, pos = _read_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
        elif wire == _LEN:
            size, pos = _read_varint(buf, pos)
            if pos + size > end:
                raise ValueError("length-delimited field runs past the message end")
            value = buf[pos : pos + size]
            pos += size
        elif wire == _I64:
            value = buf[pos : pos + 8]
            pos += 8
        elif wire == _I32:
            value = buf[pos : pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > end:
            raise ValueError("field runs past the message end")
        yield number, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_feature(buf: bytes) -> list:
    """A ``Feature``: returns its values (bytes, floats or ints; empty for an empty feature)."""
    for number, _, payload in _fields(buf):
        values: list = []
        if number == 1:  # BytesList: repeated bytes value = 1
            values = [bytes(v) for n, _, v in _fields(payload) if n == 1]
        elif number == 2:  # FloatList: repeated float value = 1 (packed or not)
            for n, wire, v in _fields(payload):
                if n != 1:
                    continue
                if wire == _LEN:
                    values.extend(struct.unpack(f"<{len(v) // 4}f", v))
                else:
                    values.append(struct.unpack("<f", v)[0])
        elif number == 3:  # Int64List: repeated int64 value = 1 (packed or not)
            for n, wire, v in _fields(payload):
                if n != 1:
                    continue
                if wire == _LEN:
                    pos = 0
                    while pos < len(v):
                        raw, pos = _read_varint(v, pos)
                        values.append(_signed64(raw))
                else:
                    values.append(_signed64(v))
        return values
    return []


def _decode_map(buf: bytes, value_decoder) -> tuple[str, object]:
    key = ""
    value = value_decoder(b"")
    for number, _, payload in _fields(buf):
        if number == 1:
            key = bytes(payload).decode("utf-8")
        elif number == 2:
            value = value_decoder(payload)
    return key, value


def _decode_features(buf: bytes) -> dict[str, list]:
    features: dict[str, list] = {}
    for number, _, payload in _fields(buf):
        if number == 1:
            key, value = _decode_map(payload, _decode_feature)
            features[key] = value
    return features


def _decode_feature_list(buf: bytes) -> list[list]:
    return [_decode_feature(payload) for number, _, payload in _fields(buf) if number == 1]


@dataclass
class ParsedExample:
    """A decoded ``tf.train.Example`` (``context`` only) or ``tf.train.SequenceExample``."""

    context: dict[str, list] = field(default_factory=dict)
    feature_lists: dict[str, list[list]] = field(default_factory=dict)


def parse_example(data: bytes) -> dict[str, list]:
    """Decodes a serialized ``tf.train.Example`` into ``{name: [values]}``.

    Raises:
        ValueError: when the bytes are not a valid message.
    """
    features: dict[str, list] = {}
    try:
        for number, _, payload in _fields(data):
            if number == 1:
                features.update(_decode_features(payload))
    except (IndexError, struct.error) as exc:
        raise ValueError(f"not a valid tf.train.Example ({exc})") from None
    return features


def parse_sequence_example(data: bytes) -> ParsedExample:
    """Decodes a serialized ``tf.train.SequenceExample``.

    Raises:
        ValueError: when the bytes are not a valid message.
    """
    parsed = ParsedExample()
    try:
        for number, _, payload in _fields(data):
            if number == 1:
                parsed.context.update(_decode_features(payload))
            elif number == 2:
                for n, _, entry in _fields(payload):
                    if n == 1:
                        key, value = _decode_map(entry, _decode_feature_list)
                        parsed.feature_lists[key] = value
    except (IndexError, struct.error) as exc:
        raise ValueError(f"not a valid tf.train.SequenceExample ({exc})") from None
    return parsed


# ----------------------------------------------------------------------------------- encoding


_SMALL_VARINTS = [bytes([v]) for v in range(128)]


def _varint(value: int) -> bytes:
    if 0 <= value < 128:
        return _SMALL_VARINTS[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


_LEN_TAGS = {number: _varint((number << 3) | _LEN) for number in (1, 2, 3)}


def _len_field(number: int, payload: bytes) -> bytes:
    return b"".join((_LEN_TAGS[number], _varint(len(payload)), payload))


def encode_feature(values: bytes | str | int | float | list) -> bytes:
    """Encodes one ``Feature``: bytes/str values make a BytesList, ints an Int64List, floats a
    FloatList (float32). A list takes the type of its first element; an empty list an empty
    BytesList."""
    if not isinstance(values, list):
        values = [values]
    first = values[0] if values else b""
    if isinstance(first, (bytes, bytearray, memoryview, str)):
        items = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values]
        return _len_field(1, b"".join(_len_field(1, v) for v in items))
    if isinstance(first, numbers.Integral):
        packed = b"".join(_varint(int(v)) for v in values)
        return _len_field(3, _len_field(1, packed))
    packed = struct.pack(f"<{len(values)}f", *values)
    return _len_field(2, _len_field(1, packed))


def _encode_features(features: dict[str, object]) -> bytes:
    out = io.BytesIO()
    for key in sorted(features):
        entry = _len_field(1, key.encode("utf-8")) + _len_field(2, encode_feature(features[key]))
        out.write(_len_field(1, entry))
    return out.getvalue()


def encode_example(features: dict[str, object]) -> bytes:
    """Serializes a ``tf.train.Example`` (keys sorted: the same input gives the same bytes)."""
    return _len_field(1, _encode_features(features))


def encode_sequence_example(context: dict[str, object], feature_lists: dict[str, list]) -> bytes:
    """Serializes a ``tf.train.SequenceExample``; ``feature_lists`` maps a name to a list of
    per-step values (each one Feature)."""
    lists = io.BytesIO()
    for key in sorted(feature_lists):
        payload = b"".join(_len_field(1, encode_feature(v)) for v in feature_lists[key])
        entry = _len_field(1, key.encode("utf-8")) + _len_field(2, payload)
        lists.write(_len_field(1, entry))
    return _len_field(1, _encode_features(context)) + _len_field(2, lists.getvalue())
