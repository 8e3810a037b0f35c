"""Reading an untrusted zip (a wheel, or a ``.zip`` sdist) without trusting it.

:mod:`zipfile` does the decoding, but it believes what the archive says: it builds an
object for every central directory entry, however many there are, and inflates whatever
a member's header promises. :class:`ZipReader` first counts the central directory itself
(with spoold's own end-record reader, :mod:`~spoold.inspection.eocd`), then, before a
byte is decompressed, checks the whole archive's declared size against
:class:`~spoold.inspection.archive.Limits`, that its records tile the file as one plain
archive (:mod:`~spoold.inspection.ziplayout`), and every member's name, type and mode. It
turns what zipfile raises on bad bytes into
:class:`~spoold.inspection.archive.InvalidArchive`, and refuses a member that inflates
past its declared size (zipfile would silently cut it there; other tools would not).
"""

from __future__ import annotations

import copy
import os
import stat
import struct
import zipfile
from collections.abc import Iterator
from typing import BinaryIO, Literal

from spoold.errors import SpooldError
from spoold.inspection.archive import (
    DECODE_ERRORS,
    READ_CHUNK,
    ArchiveLimits,
    InvalidArchive,
    Limits,
    Member,
    UnsafeArchive,
    check_links,
    check_member_path,
    check_mode,
    check_totals,
    describe_error,
    not_a_zip,
    too_many_members,
)
from spoold.inspection.eocd import EndRecord, read_end_record
from spoold.inspection.ziplayout import check_layout

__all__ = ["ZipReader"]

_SUPPORTED_ZIP_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}


def _precount_zip(stream: BinaryIO, record: EndRecord | None, limits: Limits) -> None:
    """Count central directory entries before zipfile builds an object for each.

    zipfile parses the whole central directory eagerly; a small file can hold millions
    of entries, so the count is checked by walking the raw records first: the ones
    zipfile will parse, from where it will start
    (:attr:`~spoold.inspection.eocd.EndRecord.cd_start`), since the count in the end
    record may lie.
    """
    if record is None:
        return  # zipfile reports "not a zip file"
    if record.entries > limits.max_members:
        raise too_many_members(record.entries, limits)
    start = record.cd_start
    if start < 0:
        return  # zipfile reports "Bad offset for central directory"
    count, position, end = 0, start, record.cd_end
    stream.seek(position)
    while position + 46 <= end:
        header = stream.read(46)
        if len(header) < 46 or header[:4] != b"PK\x01\x02":
            return  # zipfile will say what is wrong
        n, m, k = struct.unpack("<HHH", header[28:34])
        count += 1
        if count > limits.max_members:
            raise too_many_members(count, limits)
        position += 46 + n + m + k
        stream.seek(position)


def _zip_file_type(info: zipfile.ZipInfo) -> int:
    """The Unix file type bits of a zip member (0 when the archiver stored none)."""
    if info.create_system != 3:
        return 0
    return stat.S_IFMT(info.external_attr >> 16)


class ZipReader:
    """A zip archive whose central directory has been checked against :class:`Limits`.

    After construction, :attr:`members` lists every member (in file order, so reading
    them in turn reads the file front to back) and each has a safe name and a plausible
    size. Reading a member is bounded by its declared size and its CRC is verified by
    :mod:`zipfile` at the end of the read.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        archive_size: int,
        limits: Limits,
        links: Literal["reject", "contained"],
    ) -> None:
        self._limits = limits
        try:
            record = read_end_record(stream)
            _precount_zip(stream, record, limits)
            self._zip = zipfile.ZipFile(stream)
            infos = self._zip.infolist()
        except SpooldError:
            raise
        except DECODE_ERRORS as exc:
            raise not_a_zip(describe_error(exc)) from None
        if record is None:  # pragma: no cover - zipfile finds no record where we find none
            raise not_a_zip("no end of central directory record")
        if len(infos) > limits.max_members:
            raise too_many_members(len(infos), limits)
        largest = max(infos, key=lambda i: i.file_size, default=None)
        check_totals(
            sum(i.file_size for i in infos), archive_size, limits,
            (largest.filename, largest.file_size) if largest else None,
        )
        check_layout(stream, record, infos, stream.seek(0, os.SEEK_END))
        self._infos: dict[str, zipfile.ZipInfo] = {}
        members: list[Member] = []
        seen: set[tuple[str, ...]] = set()
        link_targets: dict[tuple[str, ...], str] = {}
        for info in sorted(infos, key=lambda i: i.header_offset):
            member = self._check_info(info, links)
            if member.parts in seen and not member.is_dir:
                raise UnsafeArchive(
                    f"The member {info.filename!r} appears twice; an archive with "
                    "duplicate names can unpack differently in different tools."
                )
            seen.add(member.parts)
            self._infos[info.filename] = info
            if member.is_link:
                target = self.read(member, limits.max_link_size, what="symlink target")
                try:
                    text = target.decode("utf-8")
                except UnicodeDecodeError:
                    raise UnsafeArchive(
                        f"The symlink {info.filename!r} has a target that is not UTF-8."
                    ) from None
                member = Member(
                    member.name, member.parts, member.size, is_link=True, link_target=text
                )
                link_targets[member.parts] = text
            members.append(member)
        check_links(link_targets)
        self.members: tuple[Member, ...] = tuple(members)

    def _check_info(self, info: zipfile.ZipInfo, links: str) -> Member:
        name = info.filename
        if "\x00" in info.orig_filename:
            raise UnsafeArchive(f"The member name {info.orig_filename!r} contains a NUL byte.")
        parts = check_member_path(name)
        if info.flag_bits & 0x1:
            raise InvalidArchive(
                f"The member {name!r} is encrypted; distributions must not be."
            )
        if info.compress_type not in _SUPPORTED_ZIP_METHODS:
            raise InvalidArchive(
                f"The member {name!r} uses zip compression method {info.compress_type}; "
                "only stored, deflate, bzip2 and lzma are accepted."
            )
        file_type = _zip_file_type(info)
        is_dir = name.endswith("/") or file_type == stat.S_IFDIR
        if file_type == stat.S_IFLNK:
            if links == "reject":
                raise UnsafeArchive(
                    f"The member {name!r} is a symbolic link; wheels must not contain links."
                )
            return Member(name, parts, info.file_size, is_link=True)
        if file_type not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchive(
                f"The member {name!r} is a device, FIFO or socket; only files and "
                "directories are accepted."
            )
        if info.create_system == 3:
            check_mode(name, info.external_attr >> 16, is_dir=is_dir)
        return Member(name, parts, info.file_size, is_dir=is_dir)

    def chunks(self, member: Member, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
        """Yield the member's bytes; the CRC is checked once the last chunk is read.

        zipfile stops at the declared size and checks the CRC of what it read, so a
        member whose data inflates further would look fine to zipfile and unpack longer
        with tools that inflate to the end of the stream. It is opened with one byte of
        room beyond the declared size: that byte appearing (or the data ending short)
        refuses the archive, and the read stays bounded.
        """
        info = self._infos[member.name]
        probe = copy.copy(info)
        probe.file_size = info.file_size + 1
        total = 0
        try:
            with self._zip.open(probe) as stream:
                while True:
                    chunk = stream.read(chunk_size)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > info.file_size:
                        raise InvalidArchive(
                            f"The member {member.name!r} inflates past its declared size of "
                            f"{info.file_size} bytes; tools would unpack different contents. "
                            "Rebuild the archive with a standard tool."
                        )
                    yield chunk
        except SpooldError:
            raise
        except DECODE_ERRORS as exc:
            raise InvalidArchive(
                f"The member {member.name!r} cannot be read ({describe_error(exc)}); the "
                "archive is corrupt or truncated. Rebuild it and upload it again."
            ) from None
        if total != info.file_size:
            raise InvalidArchive(
                f"The member {member.name!r} holds {total} bytes but declares "
                f"{info.file_size}; the archive is corrupt. Rebuild it and upload it again."
            )

    def read(self, member: Member, limit: int, *, what: str = "file") -> bytes:
        """Read a whole (small) member, refusing it if it is larger than *limit*."""
        if member.size > limit:
            raise ArchiveLimits(
                f"The {what} {member.name!r} is {member.size} bytes; at most {limit} "
                "are read."
            )
        return b"".join(self.chunks(member))

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> ZipReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
