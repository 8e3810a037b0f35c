"""A zip that every tool reads the same way: its records tile the file, nothing else.

A zip can be read two ways: from the central directory at its end (pip, zipfile, unzip)
or front to back through the local headers (streaming readers, some scanners). Archives
built so that the two disagree -- two zips concatenated, a second archive hidden in a
gap, a member whose local header says another name, size or method -- install one thing
and show reviewers another; PyPI refuses them since 2025 (``warehouse/utils/zipfiles.py``,
"ZIP archive not accepted"). :func:`check_layout` accepts exactly the layout every
writer of wheels produces: from byte 0, one local header after another, each followed by
its data and (when its flags say so) its data descriptor, then the central directory,
the end records and the comment, and then the end of the file. Each local header must
agree with its central directory entry, and nothing may give a member a second name
(an Info-ZIP Unicode Path field that disagrees: Python 3.12+ zipfile uses it, 3.11 not).
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from spoold.inspection.archive import InvalidArchive
from spoold.inspection.eocd import EndRecord

__all__ = ["check_layout"]

_LOCAL = struct.Struct("<4sHHHHHLLLHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_DESCRIPTOR_SIGNATURE = b"PK\x07\x08"
_CENTRAL_FIXED = 46
_ZIP64_EXTRA = 0x0001
_UNICODE_PATH_EXTRA = 0x7075
#: Record signatures; an end-record comment holding one is hiding records.
_SIGNATURES = (b"PK\x01\x02", b"PK\x03\x04", b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07", b"PK\x07\x08")
#: Flag bits a streaming reader acts on: encrypted, data descriptor, UTF-8 names.
_ENCRYPTED, _DESCRIPTOR, _UTF8 = 0x1, 0x8, 0x800


def _refuse(detail: str) -> InvalidArchive:
    return InvalidArchive(
        f"The zip archive is not laid out as one plain archive ({detail}); tools would "
        "read different files from it. Rebuild it with a standard build tool, and do not "
        "append to, prepend to or edit the archive afterwards."
    )


def check_layout(stream: BinaryIO, record: EndRecord, infos: list[zipfile.ZipInfo], size: int) -> None:
    """Refuse unless the archive in *stream* (*size* bytes) is laid out as described above.

    *record* is the end record zipfile used, *infos* the entries it parsed from it. Reads
    every local header (and data descriptor), never member data.
    """
    _check_end(stream, record, size)
    raw_names = [_raw_name(info) for info in infos]
    cd_length = sum(_CENTRAL_FIXED + len(n) + len(i.extra) + len(i.comment) for n, i in zip(raw_names, infos, strict=True))
    if len(infos) != record.entries or cd_length != record.cd_size:
        raise _refuse(
            f"the end record declares {record.entries} entries in {record.cd_size} bytes, the "
            f"central directory holds {len(infos)} in {cd_length}"
        )
    position = 0
    for info, raw in sorted(zip(infos, raw_names, strict=True), key=lambda pair: pair[0].header_offset):
        if info.header_offset != position:
            what = "a gap of unknown bytes" if info.header_offset > position else "entries overlapping"
            raise _refuse(f"{what} before the member {info.filename!r}, at offset {position}")
        _check_unicode_path(info.extra, raw, info.orig_filename, "central directory")
        position = _check_local_entry(stream, info, raw)
    if position != record.cd_start:
        what = "bytes that belong to no member" if position < record.cd_start else "a member running into it"
        raise _refuse(f"{what} before the central directory, at offset {position}")


def _check_end(stream: BinaryIO, record: EndRecord, size: int) -> None:
    if record.end != size:
        raise _refuse(f"{size - record.end} bytes after the end of the archive, at offset {record.end}")
    if record.cd_start != record.cd_offset:
        raise _refuse(
            f"{record.cd_start - record.cd_offset} bytes before the archive's first record"
            if record.cd_start > record.cd_offset
            else "its central directory is not where the end record says"
        )
    if not record.one_disk:
        raise _refuse("its end record counts entries on several disks")
    if record.zip64:
        assert record.classic is not None
        ours = (record.entries, record.cd_size, record.cd_offset)
        for value, zip64_value, sentinel in zip(record.classic, ours, (0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF), strict=True):
            if value not in (sentinel, zip64_value):
                raise _refuse("its classic and ZIP64 end records describe different central directories")
        if record.locator_offset != record.zip64_eocd_offset:
            raise _refuse("its ZIP64 locator points elsewhere than the ZIP64 end record")
    if record.comment_size:
        stream.seek(record.end - record.comment_size)
        comment = stream.read(record.comment_size)
        if any(signature in comment for signature in _SIGNATURES):
            raise _refuse("zip records hidden in the archive comment")


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    """The name's bytes as stored (zipfile decodes them with UTF-8 or cp437, both reversible)."""
    return info.orig_filename.encode("utf-8" if info.flag_bits & _UTF8 else "cp437")


def _extras(extra: bytes, where: str, name: str) -> Iterator[tuple[int, bytes]]:
    """The (id, data) fields of an extra block; malformed or repeated ones are refused."""
    seen: set[int] = set()
    offset = 0
    while offset < len(extra):
        if offset + 4 > len(extra):
            raise _refuse(f"a truncated extra field in the {where} of {name!r}")
        field_id, length = struct.unpack_from("<HH", extra, offset)
        if offset + 4 + length > len(extra):
            raise _refuse(f"an extra field running past its block in the {where} of {name!r}")
        if field_id in seen and field_id in (_ZIP64_EXTRA, _UNICODE_PATH_EXTRA):
            raise _refuse(f"a repeated extra field {field_id:#06x} in the {where} of {name!r}")
        seen.add(field_id)
        yield field_id, extra[offset + 4 : offset + 4 + length]
        offset += 4 + length


def _check_unicode_path(extra: bytes, raw_name: bytes, name: str, where: str) -> None:
    """An Info-ZIP Unicode Path field that tools would apply must give the same name."""
    for field_id, data in _extras(extra, where, name):
        if field_id != _UNICODE_PATH_EXTRA or len(data) < 5:
            continue
        version, crc = struct.unpack_from("<BL", data)
        if version != 1 or crc != zlib.crc32(raw_name):
            continue  # every reader ignores it
        if data[5:] != name.encode("utf-8"):
            raise _refuse(f"the member {name!r} has a second name in its {where}'s Unicode Path field")


def _check_local_entry(stream: BinaryIO, info: zipfile.ZipInfo, raw_name: bytes) -> int:
    """Check one local header (and data descriptor) against *info*; return where it ends."""
    stream.seek(info.header_offset)
    header = stream.read(_LOCAL.size)
    name = info.filename
    if len(header) != _LOCAL.size or header[:4] != _LOCAL_SIGNATURE:
        raise _refuse(f"no local header where the central directory puts {name!r}")
    _sig, _needed, flags, method, _time, _date, crc, packed, size, name_length, extra_length = _LOCAL.unpack(header)
    local_name = stream.read(name_length)
    extra = stream.read(extra_length)
    if len(extra) != extra_length:
        raise _refuse(f"the local header of {name!r} is cut short")
    if local_name != raw_name:
        raise _refuse(
            f"the local header of {name!r} names {local_name[:200]!r}: the central directory "
            "and the local headers differ"
        )
    if method != info.compress_type or (flags ^ info.flag_bits) & (_ENCRYPTED | _UTF8):
        raise _refuse(f"the local header of {name!r} gives another compression method or flags")
    zip64 = False
    for field_id, data in _extras(extra, "local header", name):
        if field_id == _ZIP64_EXTRA:
            zip64 = True
            size, packed = _zip64_sizes(data, size, packed, name)
    _check_unicode_path(extra, raw_name, info.orig_filename, "local header")
    declared = (info.CRC, info.compress_size, info.file_size)
    if not flags & _DESCRIPTOR:
        if (crc, packed, size) != declared:
            raise _refuse(f"the local header of {name!r} gives another size or CRC than the central directory")
        return info.header_offset + _LOCAL.size + name_length + extra_length + info.compress_size
    if (crc, packed, size) not in ((0, 0, 0), declared):
        raise _refuse(f"the local header of {name!r} gives another size or CRC than the central directory")
    end = info.header_offset + _LOCAL.size + name_length + extra_length + info.compress_size
    return end + _check_descriptor(stream, end, zip64, declared, name)


def _zip64_sizes(data: bytes, size: int, packed: int, name: str) -> tuple[int, int]:
    """The local sizes, with the ZIP64 field's values where the header holds sentinels."""
    values = [v for (v,) in struct.iter_unpack("<Q", data[: len(data) // 8 * 8])]
    if size == 0xFFFFFFFF:
        if not values:
            raise _refuse(f"the ZIP64 field of {name!r} lacks the size")
        size = values.pop(0)
    if packed == 0xFFFFFFFF:
        if not values:
            raise _refuse(f"the ZIP64 field of {name!r} lacks the compressed size")
        packed = values.pop(0)
    return size, packed


def _check_descriptor(stream: BinaryIO, at: int, zip64: bool, declared: tuple[int, int, int], name: str) -> int:
    """The data descriptor after a member's data must repeat the central directory's values."""
    stream.seek(at)
    data = stream.read(24)
    signature = 4 if data[:4] == _DESCRIPTOR_SIGNATURE else 0
    layout = "<LQQ" if zip64 else "<LLL"
    length = signature + struct.calcsize(layout)
    if len(data) < length:
        raise _refuse(f"the data descriptor of {name!r} is cut short")
    if struct.unpack_from(layout, data, signature) != declared:
        raise _refuse(f"the data descriptor of {name!r} disagrees with the central directory")
    return length
