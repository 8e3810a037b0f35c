"""The end-of-central-directory reader on bytes: plain, commented, ZIP64, cut short, garbage."""

from __future__ import annotations

import io
import random
import struct
import zipfile

import pytest

from spoold.inspection.archive import InvalidArchive
from spoold.inspection.eocd import EndRecord, read_end_record

MEMBERS = {"a.txt": b"alpha", "b/c.txt": b"gamma" * 10, "d.txt": b""}


def make_zip(comment: bytes = b"", members: dict[str, bytes] = MEMBERS) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.comment = comment
    return buffer.getvalue()


def record_of(data: bytes) -> EndRecord | None:
    return read_end_record(io.BytesIO(data))


def first_central_header(data: bytes) -> int:
    return data.index(b"PK\x01\x02")


class CountingReader(io.BytesIO):
    """A BytesIO that counts the bytes handed out."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def test_plain_zip() -> None:
    data = make_zip()
    record = record_of(data)
    assert record == EndRecord(
        entries=3,
        cd_size=len(data) - 22 - first_central_header(data),
        cd_offset=first_central_header(data),
        zip64=False,
        eocd_offset=len(data) - 22,
        zip64_eocd_offset=None,
        comment_size=0,
    )
    assert record.cd_start == record.cd_offset == first_central_header(data)
    assert record.cd_end == record.eocd_offset
    assert record.end == len(data)


@pytest.mark.parametrize("length", [1, 100, 0xFFFF])
def test_zip_with_comment(length: int) -> None:
    comment = (b"a comment " * (length // 10 + 1))[:length]
    data = make_zip(comment)
    record = record_of(data)
    assert record is not None
    assert record.comment_size == length
    assert record.eocd_offset == len(data) - 22 - length
    assert record.end == len(data)
    assert record.cd_start == record.cd_offset == first_central_header(data)
    assert record.entries == len(zipfile.ZipFile(io.BytesIO(data)).infolist())


def test_signature_in_the_comment_is_taken_as_zipfile_takes_it() -> None:
    """The last signature wins, as in zipfile: the count is of what zipfile will parse."""
    fake = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0, 0, 0, 0, 0)
    data = make_zip(b"see: " + fake)
    record = record_of(data)
    assert record is not None
    assert (record.entries, record.cd_size, record.comment_size) == (0, 0, 0)
    assert record.eocd_offset == len(data) - len(fake)
    assert zipfile.ZipFile(io.BytesIO(data)).infolist() == []


def test_zip64_written_by_zipfile(monkeypatch: pytest.MonkeyPatch) -> None:
    """zipfile writes the ZIP64 end records once the entry count passes its limit."""
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 2)
    data = make_zip()
    monkeypatch.undo()
    record = record_of(data)
    assert record is not None
    assert record.zip64
    assert record.entries == 3
    assert record.eocd_offset == len(data) - 22
    assert record.zip64_eocd_offset == len(data) - 22 - 20 - 56
    assert data[record.zip64_eocd_offset : record.zip64_eocd_offset + 4] == b"PK\x06\x06"
    assert record.cd_end == record.zip64_eocd_offset
    assert record.cd_start == record.cd_offset == first_central_header(data)
    assert [i.filename for i in zipfile.ZipFile(io.BytesIO(data)).infolist()] == list(MEMBERS)
    # The classic record keeps what fits, the locator points at the ZIP64 record.
    assert record.classic == (record.entries, record.cd_size, record.cd_offset)
    assert record.locator_offset == record.zip64_eocd_offset
    assert record.one_disk


def test_disk_fields_of_the_classic_record() -> None:
    data = bytearray(make_zip())
    assert record_of(bytes(data)).one_disk  # type: ignore[union-attr]
    struct.pack_into("<H", data, len(data) - 22 + 8, 2)  # entries on this disk: 2 of 3
    record = record_of(bytes(data))
    assert record is not None and not record.one_disk and record.classic is None


def zip64_tail(entries: int, cd_size: int, cd_offset: int, *, disk: int = 0, disks: int = 1) -> bytes:
    """ZIP64 end record + locator + a classic end record holding only sentinels."""
    zip64 = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, cd_size, cd_offset
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", disk, cd_offset + cd_size, disks)
    classic = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0
    )
    return zip64 + locator + classic


def test_zip64_values_beyond_32_bits() -> None:
    """The numbers come from the ZIP64 record, not from the classic record's sentinels."""
    entries, cd_size, cd_offset = (1 << 33) + 5, (1 << 32) + 7, (1 << 34) + 9
    data = b"\x00" * 100 + zip64_tail(entries, cd_size, cd_offset)
    record = record_of(data)
    assert record == EndRecord(
        entries, cd_size, cd_offset, True, 100 + 76, 100, 0,
        classic=(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF), locator_offset=cd_offset + cd_size,
    )
    assert record.cd_start == 100 - cd_size  # negative: this central directory is a lie


def test_zip64_locator_without_zip64_record() -> None:
    tail = zip64_tail(1, 2, 3)
    broken = b"\x00" * 100 + b"XX" + tail[2:]  # the ZIP64 record's signature is gone
    with pytest.raises(InvalidArchive, match="ZIP64 end locator but no ZIP64 end record"):
        record_of(broken)
    with pytest.raises(InvalidArchive, match="ZIP64 end locator but no ZIP64 end record"):
        record_of(tail[56:])  # no room for one before the locator


def test_multi_disk_zip64() -> None:
    with pytest.raises(InvalidArchive, match="span multiple disks"):
        record_of(b"\x00" * 10 + zip64_tail(1, 2, 3, disks=2))
    with pytest.raises(InvalidArchive, match="span multiple disks"):
        record_of(b"\x00" * 10 + zip64_tail(1, 2, 3, disk=1))


def test_prepended_and_trailing_bytes_are_located() -> None:
    """A stub before the archive shifts the central directory; bytes after it are trailing."""
    data = b"#!/bin/sh\nexit 0\n" + make_zip() + b"junk"
    record = record_of(data)
    assert record is not None
    assert record.cd_start - record.cd_offset == len(b"#!/bin/sh\nexit 0\n")
    assert record.cd_start == first_central_header(data)
    assert record.end == len(data) - 4


def test_truncated_inside_the_end_record_has_no_record() -> None:
    data = make_zip()
    for cut in range(1, 23):
        assert record_of(data[:-cut]) is None, cut


def test_truncated_inside_the_comment() -> None:
    data = make_zip(b"a comment of thirty-two bytes!!!")
    with pytest.raises(InvalidArchive, match="declares a 32-byte comment but only 31 bytes follow"):
        record_of(data[:-1])
    with pytest.raises(InvalidArchive, match="declares a 32-byte comment but only 0 bytes follow"):
        record_of(data[:-32])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"PK\x05\x06",
        b"x" * 21,
        b"x" * 22,
        b"<html>502 Bad Gateway</html>\n",
        random.Random(1).randbytes(100_000).replace(b"PK", b"pk"),
    ],
    ids=["empty", "signature-only", "21-bytes", "22-bytes", "html", "random"],
)
def test_garbage_has_no_record(data: bytes) -> None:
    assert record_of(data) is None


def test_search_is_bounded_to_the_last_64_kib() -> None:
    """A record followed by more than a comment's worth of bytes is not looked for, or read."""
    data = make_zip() + b"\x00" * (0xFFFF + 1)
    stream = CountingReader(data)
    assert read_end_record(stream) is None
    assert stream.bytes_read <= 0xFFFF + 22
    big = b"\x00" * (4 << 20) + make_zip(b"c" * 0xFFFF)
    stream = CountingReader(big)
    record = read_end_record(stream)
    assert record is not None and record.comment_size == 0xFFFF
    assert stream.bytes_read <= 0xFFFF + 22 + 20 + 56
