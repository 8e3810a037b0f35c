"""Reading untrusted zip and tar.gz archives without trusting them.

Everything here assumes the archive was written by an attacker: member names may try to
escape a directory, links may point anywhere, declared sizes may lie, a few kilobytes may
inflate to terabytes, and the bytes may simply be truncated or corrupt. Each reader
checks names, types and limits *before* decompressing anything, bounds every read, and
turns whatever :mod:`zipfile`, :mod:`tarfile`, :mod:`gzip` or :mod:`zlib` raise on bad
input into a :class:`~spoold.errors.Rejected` subclass whose message names the member.

Nothing is ever extracted to disk; callers stream member bytes (to hash them) or read a
few small members (metadata) with a size cap.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

from spoold.errors import Rejected, SpooldError, Transient

__all__ = [
    "ArchiveLimits",
    "InvalidArchive",
    "Limits",
    "Member",
    "SdistScan",
    "UnsafeArchive",
    "ZipReader",
    "check_member_path",
    "open_source",
    "scan_sdist",
]

_READ_CHUNK = 1 << 20


class InvalidArchive(Rejected):
    """Not a readable archive: wrong format, truncated, or corrupt (CRC, deflate, gzip)."""

    code = "invalid-archive"


class ArchiveLimits(Rejected):
    """The archive exceeds a size, count or compression-ratio limit (a bomb, or absurd)."""

    code = "archive-limits"


class UnsafeArchive(Rejected):
    """A member that could escape or abuse a directory when unpacked (traversal, links)."""

    code = "unsafe-archive"


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what an archive may make spoold do; the defaults fit every real package.

    The ratio limits apply only to members (or archives) that inflate past
    ``ratio_min_size``: small, very repetitive files compress far better than 200:1
    without being bombs.
    """

    #: Sum of the uncompressed sizes of all members.
    max_total_size: int = 4 << 30
    max_members: int = 50_000
    #: Uncompressed/compressed, per zip member and for the whole archive.
    max_ratio: float = 200.0
    ratio_min_size: int = 1 << 20
    #: METADATA, PKG-INFO and WHEEL are read into memory, never more than this.
    max_metadata_size: int = 4 << 20
    #: RECORD is read into memory too; it grows with the member count.
    max_record_size: int = 64 << 20
    #: Longest accepted symlink target (read from zip members into memory).
    max_link_size: int = 4096


@dataclass(frozen=True, slots=True)
class Member:
    """One archive member that passed the safety checks."""

    #: The name as stored (a zip name keeps its trailing slash for directories).
    name: str
    #: The checked path components; never empty, never ``..``.
    parts: tuple[str, ...]
    #: Uncompressed size as declared by the archive (reads never go past it).
    size: int
    is_dir: bool = False
    is_link: bool = False
    #: Symlink target (sdists only; wheels may not contain links).
    link_target: str | None = None


# -- the file underneath ---------------------------------------------------------------


class _Source(io.RawIOBase):
    """The file on disk, as seen by zipfile/tarfile.

    A failed read is the environment's fault (disk, NFS) and becomes
    :class:`~spoold.errors.Transient`, so it can never be mistaken for a bad archive;
    a seek the archive's own offsets make impossible is the archive's fault.
    """

    def __init__(self, raw: io.FileIO) -> None:
        self._raw = raw

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            return self._raw.readinto(buffer) or 0
        except OSError as exc:
            raise Transient(f"Could not read the file being inspected: {exc}") from exc

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        try:
            return self._raw.seek(offset, whence)
        except (OSError, ValueError, OverflowError) as exc:
            raise InvalidArchive(
                f"The archive points outside itself (seek to {offset}: {exc}); "
                "the file is corrupt. Rebuild it."
            ) from None

    def tell(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def open_source(path: str | os.PathLike[str]) -> BinaryIO:
    """Open *path* for the readers below (buffered; read errors become ``Transient``)."""
    raw = open(path, "rb", buffering=0)  # noqa: SIM115 - owned by the returned reader
    return io.BufferedReader(_Source(raw), buffer_size=1 << 16)  # type: ignore[return-value]


# -- member names ----------------------------------------------------------------------


def check_member_path(name: str, *, allow_dot: bool = False) -> tuple[str, ...]:
    """Split a member name into components, refusing anything that could escape.

    Refused: empty names, NUL, backslashes, absolute paths, drive letters and ``..``
    components. ``.`` components and repeated slashes are refused too unless *allow_dot*
    (tar writes ``./name`` when run as ``tar czf x.tar.gz ./dir``), since in a wheel
    they would make RECORD and the member list disagree about names.
    """
    shown = repr(name[:200])
    if not name:
        raise UnsafeArchive("The archive has a member with an empty name.")
    if "\x00" in name:
        raise UnsafeArchive(f"The member name {shown} contains a NUL byte.")
    if "\\" in name:
        raise UnsafeArchive(
            f"The member name {shown} contains a backslash; archive paths use '/'. "
            "Rebuild the distribution with a standard build tool."
        )
    if name.startswith("/"):
        raise UnsafeArchive(f"The member {shown} has an absolute path.")
    if len(name) >= 2 and name[1] == ":" and name[0].isascii() and name[0].isalpha():
        raise UnsafeArchive(f"The member {shown} starts with a drive letter.")
    raw_parts = name.rstrip("/").split("/") if name != "/" else []
    parts: list[str] = []
    for part in raw_parts:
        if part == "..":
            raise UnsafeArchive(f"The member {shown} contains '..' (path traversal).")
        if part in ("", "."):
            if allow_dot:
                continue
            raise UnsafeArchive(f"The member name {shown} has an empty or '.' component.")
        parts.append(part)
    if not parts:
        raise UnsafeArchive(f"The member name {shown} names no file.")
    return tuple(parts)


def _link_escapes(
    parts: tuple[str, ...], target: str, links: dict[tuple[str, ...], str]
) -> bool:
    """Whether following the symlink at *parts* leaves the archive root.

    Resolves like realpath over the archive's own links (a link may go through another
    link), with a hop limit for loops; a purely lexical check would miss
    ``a -> ..`` followed by ``b -> a/..``.
    """
    stack = list(parts[:-1])
    queue: deque[str] = deque(target.split("/"))
    if target.startswith("/") or "\\" in target or "\x00" in target:
        return True
    hops = 0
    while queue:
        part = queue.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return True
            stack.pop()
            continue
        stack.append(part)
        next_target = links.get(tuple(stack))
        if next_target is not None:
            hops += 1
            if hops > 40 or next_target.startswith("/") or "\\" in next_target:
                return True
            stack.pop()
            queue.extendleft(reversed(next_target.split("/")))
    return False


def _check_links(links: dict[tuple[str, ...], str]) -> None:
    for parts, target in links.items():
        if _link_escapes(parts, target, links):
            raise UnsafeArchive(
                f"The symlink {'/'.join(parts)!r} -> {target[:200]!r} points outside the "
                "archive. Replace the link with the file it points to."
            )


# -- zip -------------------------------------------------------------------------------

_SUPPORTED_ZIP_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}

#: What the zip and compression modules raise on bad bytes. Our own errors (and
#: Transient read failures) are SpooldError and are let through first.
_DECODE_ERRORS = (
    zipfile.BadZipFile,
    tarfile.TarError,
    gzip.BadGzipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    struct.error,
    NotImplementedError,
    RuntimeError,
    KeyError,
    IndexError,
    OverflowError,
    UnicodeError,
    MemoryError,
)

try:  # lzma is optional in CPython builds
    import lzma

    _DECODE_ERRORS = (*_DECODE_ERRORS, lzma.LZMAError)  # type: ignore[assignment]
except ImportError:  # pragma: no cover
    pass


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]


def _precount_zip(stream: BinaryIO, limits: Limits) -> None:
    """Count central directory entries before zipfile builds an object for each.

    zipfile parses the whole central directory eagerly; a small file can hold millions
    of entries, so the count is checked by walking the raw records first.
    """
    try:
        endrec = zipfile._EndRecData(stream)  # type: ignore[attr-defined]
    except (OSError, struct.error):
        return
    if not endrec:
        return  # zipfile reports "not a zip file"
    if endrec[4] > limits.max_members:
        raise _too_many_members(endrec[4], limits)
    size_cd, location = endrec[5], endrec[9]
    start = location - size_cd
    if endrec[0] == zipfile.stringEndArchive64:  # type: ignore[attr-defined]
        start -= 56 + 20
    if start < 0:
        return
    count, position, end = 0, start, start + size_cd
    stream.seek(position)
    while position + 46 <= end:
        header = stream.read(46)
        if len(header) < 46 or header[:4] != b"PK\x01\x02":
            return  # zipfile will say what is wrong
        n, m, k = struct.unpack("<HHH", header[28:34])
        count += 1
        if count > limits.max_members:
            raise _too_many_members(count, limits)
        position += 46 + n + m + k
        stream.seek(position)


def _too_many_members(count: int, limits: Limits) -> ArchiveLimits:
    return ArchiveLimits(
        f"The archive has {count} or more members; at most {limits.max_members} are "
        "accepted. Leave generated or data files out of the distribution."
    )


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
            _precount_zip(stream, limits)
            self._zip = zipfile.ZipFile(stream)
            infos = self._zip.infolist()
        except SpooldError:
            raise
        except _DECODE_ERRORS as exc:
            raise InvalidArchive(
                f"The file is not a valid zip archive ({_describe(exc)}). It may be "
                "truncated or not a zip at all; upload the complete file again."
            ) from None
        if len(infos) > limits.max_members:
            raise _too_many_members(len(infos), limits)
        self._infos: dict[str, zipfile.ZipInfo] = {}
        members: list[Member] = []
        total = 0
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
            total += info.file_size
            if total > limits.max_total_size:
                raise ArchiveLimits(
                    f"The archive's members add up to more than {limits.max_total_size} "
                    "bytes uncompressed, the most accepted."
                )
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
        if total > limits.ratio_min_size and total > limits.max_ratio * max(archive_size, 1):
            raise ArchiveLimits(
                f"The archive inflates from {archive_size} to {total} bytes, more than "
                f"{limits.max_ratio:g} times its size; this looks like a zip bomb."
            )
        _check_links(link_targets)
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
        size, packed = info.file_size, info.compress_size
        if size > self._limits.ratio_min_size and size > self._limits.max_ratio * max(packed, 1):
            raise ArchiveLimits(
                f"The member {name!r} inflates from {packed} to {size} bytes, more than "
                f"{self._limits.max_ratio:g} times; this looks like a zip bomb."
            )
        return Member(name, parts, size, is_dir=is_dir)

    def chunks(self, member: Member, chunk_size: int = _READ_CHUNK) -> Iterator[bytes]:
        """Yield the member's bytes; the CRC is checked once the last chunk is read."""
        info = self._infos[member.name]
        try:
            with self._zip.open(info) as stream:
                while True:
                    chunk = stream.read(chunk_size)
                    if not chunk:
                        break
                    yield chunk
        except SpooldError:
            raise
        except _DECODE_ERRORS as exc:
            raise InvalidArchive(
                f"The member {member.name!r} cannot be read ({_describe(exc)}); the "
                "archive is corrupt or truncated. Rebuild it and upload it again."
            ) from None

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


# -- tar.gz ----------------------------------------------------------------------------

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


class _InflateBudget(io.RawIOBase):
    """The decompressed tar stream, counted against the size and ratio limits."""

    def __init__(self, gz: gzip.GzipFile, archive_size: int, limits: Limits) -> None:
        self._gz = gz
        self._archive_size = max(archive_size, 1)
        self._limits = limits
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = self._gz.readinto(buffer)
        self.total += n
        limits = self._limits
        if self.total > limits.max_total_size:
            raise ArchiveLimits(
                f"The archive inflates to more than {limits.max_total_size} bytes, the "
                "most accepted."
            )
        if self.total > limits.ratio_min_size and self.total > limits.max_ratio * self._archive_size:
            raise ArchiveLimits(
                f"The archive inflates from {self._archive_size} to more than "
                f"{self.total} bytes, over {limits.max_ratio:g} times its size; this "
                "looks like a decompression bomb."
            )
        return n


@dataclass(frozen=True, slots=True)
class SdistScan:
    """Every member of an sdist (checked), plus the bytes of the members asked for."""

    members: tuple[Member, ...]
    captured: dict[str, bytes] = field(default_factory=dict)


def scan_sdist(
    stream: BinaryIO,
    extension: str,
    *,
    archive_size: int,
    limits: Limits,
    capture: Callable[[tuple[str, ...]], bool],
) -> SdistScan:
    """Check every member of a ``.tar.gz`` or ``.zip`` sdist, reading it once.

    Members for which ``capture(parts)`` is true are returned whole (at most
    ``limits.max_metadata_size`` bytes each). The whole archive is decompressed, so a
    truncated or corrupt file is caught even if the interesting members came first.
    Symlinks are allowed only if they resolve inside the archive.
    """
    if extension == ".zip":
        return _scan_zip_sdist(stream, archive_size, limits, capture)
    if extension == ".tar.gz":
        return _scan_tar_gz(stream, archive_size, limits, capture)
    raise ValueError(f"not an sdist extension: {extension!r}")


def _scan_zip_sdist(
    stream: BinaryIO,
    archive_size: int,
    limits: Limits,
    capture: Callable[[tuple[str, ...]], bool],
) -> SdistScan:
    captured: dict[str, bytes] = {}
    with ZipReader(stream, archive_size=archive_size, limits=limits, links="contained") as zf:
        for member in zf.members:
            if member.is_dir or member.is_link:
                continue
            if capture(member.parts):
                captured["/".join(member.parts)] = zf.read(
                    member, limits.max_metadata_size, what="metadata file"
                )
            else:
                for _chunk in zf.chunks(member):
                    pass  # verifies the CRC
        return SdistScan(zf.members, captured)


def _scan_tar_gz(
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
        gz = gzip.GzipFile(fileobj=stream, mode="rb")
        budget = _InflateBudget(gz, archive_size, limits)
        plain = io.BufferedReader(budget, buffer_size=1 << 16)
        with tarfile.open(
            fileobj=plain, mode="r|", tarinfo=_GuardedTarInfo, bufsize=1 << 16
        ) as tar:
            for info in tar:
                if len(members) >= limits.max_members:
                    raise _too_many_members(len(members) + 1, limits)
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
                    files.add(member.parts)
                    if capture(member.parts) and info.isreg():
                        captured["/".join(member.parts)] = _read_tar_member(
                            tar, info, limits.max_metadata_size
                        )
                members.append(member)
        # tarfile stops at the end-of-archive blocks; read on to the gzip trailer so
        # its CRC and length are verified (a truncated upload fails here).
        while plain.read(_READ_CHUNK):
            pass
    except SpooldError:
        raise
    except _DECODE_ERRORS as exc:
        raise InvalidArchive(
            f"The file is not a valid .tar.gz archive ({_describe(exc)}); it is "
            "truncated, corrupt or not gzip-compressed tar. Upload the complete file again."
        ) from None
    _check_links(links)
    return SdistScan(tuple(members), captured)


def _check_tarinfo(info: tarfile.TarInfo, limits: Limits) -> Member:
    parts = check_member_path(info.name, allow_dot=True)
    name = info.name
    if info.issparse():
        raise UnsafeArchive(f"The member {name!r} is a sparse file; sdists may not hold them.")
    if info.size > limits.max_total_size:
        raise ArchiveLimits(
            f"The member {name!r} is {info.size} bytes; at most {limits.max_total_size} "
            "are accepted."
        )
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
