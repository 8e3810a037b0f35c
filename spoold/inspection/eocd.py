"""Finding a zip's end of central directory record, with spoold's own bounded reader.

A zip is read from its end: the last record (``PK\\5\\6``, 22 bytes plus a comment of up
to 64 KiB) says how many central directory entries there are, how long the central
directory is and where it starts; a ZIP64 archive puts a locator (``PK\\6\\7``) right
before that record, pointing to a ZIP64 end record (``PK\\6\\6``) with 64-bit values.
:class:`~spoold.inspection.zipreader.ZipReader` needs these numbers *before* handing the
file to :mod:`zipfile`, which would otherwise build an object for every entry of a
central directory of any size; the stdlib's own reader for them is private
(``zipfile._EndRecData``), so this module is spoold's.

The record is chosen exactly as CPython's zipfile chooses it (a comment-less record in the
last 22 bytes, else the last signature in the last 64 KiB + 22 bytes; the ZIP64 record
right before the locator), because the precount must count the central directory zipfile
is about to parse and not some other one. Unlike zipfile, a record whose comment runs past
the end of the file is refused: it is a truncated file or a forgery, and a forged record
is how the count would be dodged. The record also says where the central directory and
the end records sit in the file, so that a stricter layout check (nothing before the
first entry, nothing between the entries and the central directory) can be built on it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from spoold.inspection.archive import not_a_zip

__all__ = ["EndRecord", "read_end_record"]

_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIGNATURE = b"PK\x05\x06"
_LOCATOR = struct.Struct("<4sLQL")
_LOCATOR_SIGNATURE = b"PK\x06\x07"
_EOCD64 = struct.Struct("<4sQ2H2L4Q")
_EOCD64_SIGNATURE = b"PK\x06\x06"

#: The record may be followed by a comment of up to 65535 bytes.
_MAX_TAIL = _EOCD.size + 0xFFFF

@dataclass(frozen=True, slots=True)
class EndRecord:
    """What a zip's end records say about its central directory, and where they are.

    Offsets named ``*_offset`` are positions in the file, except :attr:`cd_offset`, which
    is what the archive declares (counted from the archive's own first byte).
    """

    #: Central directory entries, as the end record counts them (the count can lie; the
    #: records themselves are what zipfile parses).
    entries: int
    #: Length of the central directory in bytes.
    cd_size: int
    #: Where the archive says its central directory starts.
    cd_offset: int
    #: Whether the numbers come from a ZIP64 end record.
    zip64: bool
    #: Where the end of central directory record (``PK\5\6``) starts.
    eocd_offset: int
    #: Where the ZIP64 end record (``PK\6\6``) starts; None unless :attr:`zip64`.
    zip64_eocd_offset: int | None
    #: The comment length the record declares (the comment is all in the file).
    comment_size: int
    #: In a ZIP64 archive, what the classic end record says itself (entries, central
    #: directory size, offset): each must be its sentinel or agree with the ZIP64 record,
    #: or tools that read only the classic record find another central directory.
    classic: tuple[int, int, int] | None = None
    #: Where the ZIP64 locator says the ZIP64 end record is (None unless :attr:`zip64`).
    locator_offset: int | None = None
    #: The disk numbers and per-disk entry counts agree with one disk holding everything.
    one_disk: bool = True

    @property
    def cd_end(self) -> int:
        """Where the central directory must end: where the end records begin."""
        return self.zip64_eocd_offset if self.zip64_eocd_offset is not None else self.eocd_offset

    @property
    def cd_start(self) -> int:
        """Where the central directory is, if it ends at :attr:`cd_end` (as zipfile reads it).

        Equal to :attr:`cd_offset` exactly when nothing precedes the archive in the file
        (a self-extractor stub would); negative when :attr:`cd_size` is a lie.
        """
        return self.cd_end - self.cd_size

    @property
    def end(self) -> int:
        """Where the archive ends, after the comment; any bytes from here on are trailing."""
        return self.eocd_offset + _EOCD.size + self.comment_size


def read_end_record(stream: BinaryIO) -> EndRecord | None:
    """Find and parse the end records of the zip in *stream* (seekable; reads ≤ 64 KiB + 98).

    Returns None when the file has no complete end record where zipfile looks for one
    (it is not a zip, or was cut short inside the record), leaving the caller to say so.
    Raises :class:`~spoold.inspection.archive.InvalidArchive` for a record that is there
    but unusable: its comment would run past the end of the file, a ZIP64 locator has no
    ZIP64 end record before it, or the archive spans several disks. The numbers are
    returned as found; whether the central directory really is where they say is for the
    caller to check.
    """
    size = stream.seek(0, os.SEEK_END)
    if size < _EOCD.size:
        return None
    tail_start = max(size - _MAX_TAIL, 0)
    stream.seek(tail_start)
    tail = stream.read(size - tail_start)
    last = len(tail) - _EOCD.size
    if last >= 0 and tail[last : last + 4] == _EOCD_SIGNATURE and tail[-2:] == b"\x00\x00":
        at = last  # the common case: no comment
    else:
        at = tail.rfind(_EOCD_SIGNATURE)
        if at < 0 or at > last:
            return None
    (_sig, disk, cd_disk, disk_entries, entries, cd_size, cd_offset, comment_size) = (
        _EOCD.unpack_from(tail, at)
    )
    one_disk = disk == cd_disk == 0 and disk_entries == entries
    following = len(tail) - at - _EOCD.size
    if comment_size > following:
        raise not_a_zip(
            f"its end record declares a {comment_size}-byte comment but only {following} "
            "bytes follow"
        )
    eocd_offset = tail_start + at
    classic = EndRecord(
        entries, cd_size, cd_offset, False, eocd_offset, None, comment_size, one_disk=one_disk
    )
    if eocd_offset < _LOCATOR.size:
        return classic
    locator = _read_at(stream, eocd_offset - _LOCATOR.size, _LOCATOR.size)
    if locator[:4] != _LOCATOR_SIGNATURE:
        return classic
    _sig, locator_disk, declared_offset, disks = _LOCATOR.unpack(locator)
    if locator_disk != 0 or disks > 1:
        raise not_a_zip("zipfiles that span multiple disks are not supported")
    # Right before the locator, as zipfile looks for it (the spec allows "extensible
    # data" in between, which no Python tool writes and zipfile does not read either).
    zip64_offset = eocd_offset - _LOCATOR.size - _EOCD64.size
    record = _read_at(stream, zip64_offset, _EOCD64.size) if zip64_offset >= 0 else b""
    if len(record) != _EOCD64.size or record[:4] != _EOCD64_SIGNATURE:
        raise not_a_zip("it has a ZIP64 end locator but no ZIP64 end record before it")
    (_sig, _length, _made_by, _needed, disk64, cd_disk64, disk_entries64, entries64, cd_size64,
     cd_offset64) = _EOCD64.unpack(record)
    return EndRecord(
        entries64, cd_size64, cd_offset64, True, eocd_offset, zip64_offset, comment_size,
        classic=(entries, cd_size, cd_offset),
        locator_offset=declared_offset,
        one_disk=disk64 == cd_disk64 == 0 and disk_entries64 == entries64
        and (disk, cd_disk) in ((0, 0), (0xFFFF, 0xFFFF)) and disk_entries in (entries, 0xFFFF),
    )


def _read_at(stream: BinaryIO, offset: int, length: int) -> bytes:
    stream.seek(offset)
    return stream.read(length)
