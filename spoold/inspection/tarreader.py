"""Reading an untrusted ``.tar.gz`` sdist in one streaming pass, without trusting it.

A tar.gz has no index: the only way to see its members is to decompress it front to back.
So the scan is a stream: the inflated bytes are counted against the size and ratio limits
as they come out of the one gzip member (:class:`~spoold.inspection.gunzip.GzipMember`),
tarfile reads headers from that stream (refusing huge pax/GNU long-name headers before it
would read them into memory, :class:`_GuardedTarInfo`), every member is checked as it
goes by, and the stream is read on to the gzip trailer so a truncated or corrupt file is
caught even after the members of interest. What follows the tar's end-of-archive blocks
must be zero padding, and nothing may follow the gzip member: either would be a second
archive that some tools unpack and others do not.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from typing import BinaryIO

from spoold.errors import SpooldError
from spoold.inspection.archive import (
    DECODE_ERRORS,
    ArchiveLimits,
    InvalidArchive,
    Limits,
    Member,
    SdistScan,
    UnsafeArchive,
    check_links,
    check_member_path,
    check_mode,
    describe_error,
    too_many_members,
)
from spoold.inspection.gunzip import GzipMember, invalid_tar_gz

__all__ = ["scan_tar_gz"]

#: tarfile reads these header members whole into memory.
_HEADER_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)
_MAX_HEADER_SIZE = 1 << 20


class _GuardedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses huge pax/GNU long-name headers before tarfile reads them."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _HEADER_TYPES and self.size > _MAX_HEADER_SIZE:
            raise ArchiveLimits(
                f"The tar archive has a {self.size}-byte extended header; at most "
                f"{_MAX_HEADER_SIZE} are accepted."
            )
        return super()._proc_member(tarfile_)  # type: ignore[misc]


def scan_tar_gz(
    stream: BinaryIO,
    archive_size: int,
    limits: Limits,
    capture: Callable[[tuple[str, ...]], bool],
) -> SdistScan:
    members: list[Member] = []
    captured: dict[str, bytes] = {}
    links: dict[tuple[str, ...], str] = {}
    files: set[tuple[str, ...]] = set()
    try:
        plain = GzipMember(stream, archive_size, limits)
        with tarfile.open(
            fileobj=plain, mode="r|", tarinfo=_GuardedTarInfo, bufsize=1 << 16
        ) as tar:
            for info in tar:
                if len(members) >= limits.max_members:
                    raise too_many_members(len(members) + 1, limits)
                member = _check_tarinfo(info, limits)
                if member.is_link:
                    assert member.link_target is not None
                    links[member.parts] = member.link_target
                elif not member.is_dir:
                    if member.parts in files:
                        raise UnsafeArchive(
                            f"The member {info.name!r} appears twice; an archive with "
                            "duplicate names can unpack differently in different tools."
                        )
                    if info.islnk():
                        _check_hard_link(info, files, links)
                    files.add(member.parts)
                    if capture(member.parts) and info.isreg():
                        captured["/".join(member.parts)] = _read_tar_member(
                            tar, info, limits.max_metadata_size
                        )
                members.append(member)
            end = tar.offset  # where the end-of-archive blocks start
        # Read on to the gzip trailer, so its CRC and length are verified (a truncated
        # upload fails here), checking that only zero padding follows the tar's end.
        if not plain.check_zeros_from(end):
            raise InvalidArchive(
                "The .tar.gz holds data after the end of its tar archive; some tools would "
                "unpack it as more files. Build the sdist with `python -m build --sdist`."
            )
        plain.finish()
    except SpooldError:
        raise
    except DECODE_ERRORS as exc:
        raise invalid_tar_gz(describe_error(exc)) from None
    check_links(links)
    return SdistScan(tuple(members), captured)


def _check_hard_link(
    info: tarfile.TarInfo, files: set[tuple[str, ...]], links: dict[tuple[str, ...], str]
) -> None:
    """A hard link must name a file that came earlier in the archive.

    Unpacking makes the link's path another name of its target. A target that is a
    symlink makes a symlink at the link's path, whose relative target is then read from
    another directory: contained where it stood, it may escape where it lands. So hard
    links to symlinks are refused outright, as are targets not in the archive (tar would
    link to whatever the extraction directory holds under that name).
    """
    target = check_member_path(info.linkname, allow_dot=True)
    if target in links:
        raise UnsafeArchive(
            f"The hard link {info.name!r} -> {info.linkname[:200]!r} points to a symbolic "
            "link, which would escape the directory it lands in. Replace the hard link "
            "with a copy of the file."
        )
    if target not in files:
        raise UnsafeArchive(
            f"The hard link {info.name!r} -> {info.linkname[:200]!r} names no file that "
            "comes before it in the archive. Replace the hard link with a copy of the file."
        )


def _check_tarinfo(info: tarfile.TarInfo, limits: Limits) -> Member:
    parts = check_member_path(info.name, allow_dot=True)
    name = info.name
    if info.issparse():
        raise UnsafeArchive(f"The member {name!r} is a sparse file; sdists may not hold them.")
    if info.size > limits.max_uncompressed:
        raise ArchiveLimits(
            f"The member {name!r} is {info.size} bytes; at most {limits.max_uncompressed} "
            "are accepted (the max_uncompressed setting)."
        )
    if info.isreg() or info.islnk():
        check_mode(name, info.mode, is_dir=False)
    if info.isreg():
        return Member(name, parts, info.size)
    if info.isdir():
        return Member(name, parts, 0, is_dir=True)
    if info.issym():
        return Member(name, parts, 0, is_link=True, link_target=info.linkname)
    if info.islnk():
        # A hard link names another member by its archive path; it stays inside the
        # archive exactly when that path is itself safe.
        try:
            check_member_path(info.linkname, allow_dot=True)
        except UnsafeArchive:
            raise UnsafeArchive(
                f"The hard link {name!r} -> {info.linkname[:200]!r} points outside the "
                "archive. Replace the link with the file it points to."
            ) from None
        return Member(name, parts, 0)
    raise UnsafeArchive(
        f"The member {name!r} is a device, FIFO or other special file; sdists may only "
        "hold files, directories and links."
    )


def _read_tar_member(tar: tarfile.TarFile, info: tarfile.TarInfo, limit: int) -> bytes:
    if info.size > limit:
        raise ArchiveLimits(
            f"The metadata file {info.name!r} is {info.size} bytes; at most {limit} are read."
        )
    extracted = tar.extractfile(info)
    if extracted is None:  # pragma: no cover - isreg() members always extract
        raise InvalidArchive(f"The member {info.name!r} cannot be read.")
    data = extracted.read(limit + 1)
    if len(data) != info.size:
        raise InvalidArchive(f"The member {info.name!r} is truncated.")
    return data
