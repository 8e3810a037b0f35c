"""A corpus of hostile and broken distributions, each rejected with the right error.

Every case builds its own input in a temporary directory (nothing is checked in), runs
:func:`spoold.inspection.inspect.inspect_file`, and asserts the exact error class and a piece of
the message the uploader will read. Bombs are built cheaply (runs of zeros deflate
1000:1), so the corpus stays fast; the timeout is only a safety net against a hang.
"""

from __future__ import annotations

import base64
import functools
import gzip
import io
import random
import stat
import struct
import tarfile
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from testlib.distbuild import (
    metadata_text,
    record_for,
    wheel_members,
    write_sdist,
    write_tar_gz,
    write_wheel,
    write_zip,
)
from spoold.errors import InvalidFilename, Rejected
from spoold.inspection.archive import ArchiveLimits, InvalidArchive, Limits, UnsafeArchive
from spoold.inspection.digests import DigestMismatch
from spoold.inspection.inspect import inspect_file
from spoold.inspection.metadata import InvalidMetadata, MetadataMismatch
from spoold.inspection.sdist import InvalidSdist
from spoold.inspection.wheel import InvalidWheel, RecordMismatch

WHEEL = "demo-1.0-py3-none-any.whl"
SDIST = "demo-1.0.tar.gz"
DIST_INFO = "demo-1.0.dist-info"


@dataclass
class Case:
    """What to inspect: a file, the name it arrives under, declared digests, limits."""

    path: Path
    filename: str
    declared: dict[str, str] | None = None
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class Expect:
    build: Callable[[Path], Case]
    error: type[Rejected]
    message: str


CASES: dict[str, Expect] = {}


def case(error: type[Rejected], message: str) -> Callable[[Callable[[Path], Case]], Callable[[Path], Case]]:
    def register(build: Callable[[Path], Case]) -> Callable[[Path], Case]:
        CASES[build.__name__] = Expect(build, error, message)
        return build

    return register


# -- helpers ---------------------------------------------------------------------------


def good_wheel(tmp: Path, **kwargs: object) -> Path:
    return write_wheel(tmp, "demo", "1.0", **kwargs)


def wheel_from(tmp: Path, members: dict[str, bytes], filename: str = WHEEL) -> Case:
    return Case(write_zip(tmp / filename, members), filename)


def rewrite_record(members: dict[str, bytes], edit: Callable[[list[list[str]]], None]) -> None:
    rows = [line.split(",") for line in members[f"{DIST_INFO}/RECORD"].decode().splitlines()]
    edit(rows)
    members[f"{DIST_INFO}/RECORD"] = "".join(",".join(r) + "\n" for r in rows).encode()


def sdist_case(tmp: Path, filename: str = SDIST, **kwargs: object) -> Case:
    return Case(write_sdist(tmp, "demo", "1.0", filename=filename, **kwargs), filename)  # type: ignore[arg-type]


def tar_entry(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def central_record(data: bytes, name: str) -> int:
    """Offset of *name*'s central directory record in zip *data*."""
    index = data.find(b"PK\x01\x02")
    while index != -1:
        (length,) = struct.unpack_from("<H", data, index + 28)
        if data[index + 46 : index + 46 + length] == name.encode():
            return index
        index = data.find(b"PK\x01\x02", index + 1)
    raise AssertionError(name)


def member_data_offset(data: bytes, name: str) -> int:
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    n, m = struct.unpack_from("<HH", data, info.header_offset + 26)
    return info.header_offset + 30 + n + m


def patched(path: Path, edit: Callable[[bytearray], None]) -> Path:
    data = bytearray(path.read_bytes())
    edit(data)
    path.write_bytes(bytes(data))
    return path


def random_text(size: int) -> str:
    """Text that deflate cannot shrink much (so it is not mistaken for a bomb)."""
    return base64.b64encode(random.Random(size).randbytes(size * 3 // 4)).decode("ascii")


def many_member_zip(path: Path, count: int) -> Path:
    """A zip of *count* empty stored members, written directly (zipfile is too slow)."""
    path.write_bytes(_many_member_bytes(count))
    return path


@functools.lru_cache(maxsize=2)
def _many_member_bytes(count: int) -> bytes:
    local, central = bytearray(), bytearray()
    for i in range(count):
        name = f"demo/{i}.py".encode()
        offset = len(local)
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0)
        local += name
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21, 0, 0, 0,
            len(name), 0, 0, 0, 0, 0, offset,
        )
        central += name
    entries = min(count, 0xFFFF)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, entries, entries, len(central), len(local), 0)
    return bytes(local + central + end)


def zip_link(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


# -- filenames -------------------------------------------------------------------------


def named(filename: str) -> Callable[[Path], Case]:
    def build(tmp: Path) -> Case:
        return Case(good_wheel(tmp), filename)

    return build


for _id, _name, _message in [
    ("filename_parent_dir", "../demo-1.0.tar.gz", "path separator"),
    ("filename_subdir", "sub/demo-1.0-py3-none-any.whl", "path separator"),
    ("filename_backslash", "sub\\demo-1.0.tar.gz", "path separator"),
    ("filename_nul", "demo-1.0.tar.gz\x00.whl", "NUL"),
    ("filename_leading_dot", ".demo-1.0.tar.gz", "starts with a dot"),
    ("filename_rsync_partial", ".demo-1.0.tar.gz.Xa3b9z", "starts with a dot"),
    ("filename_non_ascii", "d\u00e9mo-1.0.tar.gz", "non-ASCII"),
    ("filename_control", "demo-1.0\n.tar.gz", "control"),
    ("filename_space", "demo 1.0.tar.gz", "whitespace"),
    ("filename_dotdot", "demo..1.0.tar.gz", "'..'"),
    ("filename_too_long", "a" * 240 + "-1.0.tar.gz", "characters long"),
    ("filename_empty", "", "empty"),
    ("filename_egg", "demo-1.0-py3.11.egg", ".egg"),
    ("filename_exe", "demo-1.0.win32.exe", ".exe"),
    ("filename_tar_bz2", "demo-1.0.tar.bz2", ".tar.bz2"),
    ("filename_tgz", "demo-1.0.tgz", ".tgz"),
    ("filename_upper_extension", "demo-1.0-py3-none-any.WHL", "upper-case"),
    ("filename_unknown_extension", "demo-1.0.rar", "not a distribution filename"),
    ("filename_wheel_parts", "demo-1.0.whl", "not a valid wheel filename"),
    ("filename_bad_version", "demo-one.tar.gz", "not a valid sdist filename"),
    ("filename_bad_project", "de$mo-1.0.tar.gz", "not a valid sdist filename"),
]:
    CASES[_id] = Expect(named(_name), InvalidFilename, _message)


# -- not an archive at all -------------------------------------------------------------


@case(InvalidArchive, "empty")
def empty_wheel(tmp: Path) -> Case:
    (tmp / WHEEL).write_bytes(b"")
    return Case(tmp / WHEEL, WHEEL)


@case(InvalidArchive, "empty")
def empty_sdist(tmp: Path) -> Case:
    (tmp / SDIST).write_bytes(b"")
    return Case(tmp / SDIST, SDIST)


@case(InvalidArchive, "not a valid zip archive")
def text_named_whl(tmp: Path) -> Case:
    (tmp / WHEEL).write_text("<html>502 Bad Gateway</html>\n")
    return Case(tmp / WHEEL, WHEEL)


@case(InvalidArchive, "Not a gzipped file")
def text_named_tar_gz(tmp: Path) -> Case:
    (tmp / SDIST).write_text("not a tarball\n" * 100)
    return Case(tmp / SDIST, SDIST)


@case(InvalidArchive, "Not a gzipped file")
def plain_tar_named_tar_gz(tmp: Path) -> Case:
    path = write_sdist(tmp, filename="x.tar.gz")
    raw = gzip.decompress(path.read_bytes())
    (tmp / SDIST).write_bytes(raw)
    return Case(tmp / SDIST, SDIST)


@case(InvalidArchive, "not a valid zip archive")
def wheel_that_is_a_tar_gz(tmp: Path) -> Case:
    path = write_sdist(tmp)
    path.rename(tmp / WHEEL)
    return Case(tmp / WHEEL, WHEEL)


# -- truncated and corrupt -------------------------------------------------------------


@case(InvalidArchive, "not a valid zip archive")
def truncated_zip(tmp: Path) -> Case:
    path = good_wheel(tmp)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return Case(path, WHEEL)


@case(InvalidArchive, "not a valid zip archive")
def truncated_zip_end_record(tmp: Path) -> Case:
    path = good_wheel(tmp)
    path.write_bytes(path.read_bytes()[:-10])
    return Case(path, WHEEL)


@case(InvalidArchive, "Compressed file ended before the end-of-stream marker")
def truncated_gzip(tmp: Path) -> Case:
    path = write_sdist(tmp, files={"demo-1.0/data.bin": bytes(range(256)) * 400})
    path.write_bytes(path.read_bytes()[:-100])
    return Case(path, SDIST)


@case(InvalidArchive, "CRC check failed")
def gzip_bad_crc(tmp: Path) -> Case:
    path = write_sdist(tmp)
    return Case(patched(path, lambda d: d.__setitem__(-8, d[-8] ^ 0xFF)), SDIST)


@case(InvalidArchive, "bytes after the end of its gzip stream")
def gzip_trailing_garbage(tmp: Path) -> Case:
    path = write_sdist(tmp)
    path.write_bytes(path.read_bytes() + b"trailing garbage")
    return Case(path, SDIST)


@case(InvalidArchive, "invalid")
def gzip_corrupt_deflate(tmp: Path) -> Case:
    path = write_sdist(tmp, files={"demo-1.0/data.txt": b"some text " * 5000})
    return Case(patched(path, lambda d: d.__setitem__(slice(40, 60), b"\xff" * 20)), SDIST)


@case(InvalidArchive, "Bad CRC-32")
def zip_bad_crc(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0", files={"demo/__init__.py": b"x = 1\n" * 10})
    path = write_zip(tmp / WHEEL, members, compression=zipfile.ZIP_STORED)

    def flip(data: bytearray) -> None:
        offset = member_data_offset(bytes(data), "demo/__init__.py")
        data[offset] ^= 0x01

    return Case(patched(path, flip), WHEEL)


@case(InvalidArchive, "cannot be read")
def zip_corrupt_deflate(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0", files={"demo/__init__.py": b"print('hello')\n" * 500})
    path = write_zip(tmp / WHEEL, members)

    def garble(data: bytearray) -> None:
        offset = member_data_offset(bytes(data), "demo/__init__.py")
        data[offset : offset + 16] = b"\xff" * 16

    return Case(patched(path, garble), WHEEL)


@case(InvalidArchive, "differ")
def zip_local_name_differs(tmp: Path) -> Case:
    path = good_wheel(tmp)

    def rename_local(data: bytearray) -> None:
        info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("demo/__init__.py")
        data[info.header_offset + 30] = ord("X")

    return Case(patched(path, rename_local), WHEEL)


@case(InvalidArchive, "encrypted")
def zip_encrypted_member(tmp: Path) -> Case:
    path = good_wheel(tmp)

    def encrypt(data: bytearray) -> None:
        index = central_record(bytes(data), "demo/__init__.py")
        data[index + 8] |= 0x01
        local = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo("demo/__init__.py").header_offset
        data[local + 6] |= 0x01  # as an encrypting archiver writes it: in both headers

    return Case(patched(path, encrypt), WHEEL)


@case(InvalidArchive, "compression method")
def zip_unknown_method(tmp: Path) -> Case:
    path = good_wheel(tmp)

    def method(data: bytearray) -> None:
        index = central_record(bytes(data), "demo/__init__.py")
        struct.pack_into("<H", data, index + 10, 99)

    return Case(patched(path, method), WHEEL)


# -- limits ----------------------------------------------------------------------------


class Zeros(io.RawIOBase):
    """*size* zero bytes, read in pieces (a bomb's payload, never in memory at once)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left, 1 << 20)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


#: Past ratio_min_size (64 MiB), so the whole archive's ratio is judged.
BOMB_SIZE = 100 << 20


@case(ArchiveLimits, "times its size; this looks like a zip bomb")
def zip_bomb_member(tmp: Path) -> Case:
    path = good_wheel(tmp)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf, zf.open("demo/zeros.bin", "w") as out:
        zeros = Zeros(BOMB_SIZE)
        while chunk := zeros.read(1 << 20):
            out.write(chunk)
    return Case(path, WHEEL)


@case(ArchiveLimits, "zip bomb")
def zip_member_lies_about_size(tmp: Path) -> Case:
    path = good_wheel(tmp)

    def inflate(data: bytearray) -> None:
        index = central_record(bytes(data), "demo/__init__.py")
        struct.pack_into("<I", data, index + 24, 0xFFFFFFF0)

    return Case(patched(path, inflate), WHEEL)


@case(ArchiveLimits, "METADATA")
def metadata_100_mb(tmp: Path) -> Case:
    path = tmp / WHEEL
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("demo/__init__.py", b"")
        zf.writestr(f"{DIST_INFO}/WHEEL", b"Wheel-Version: 1.0\n")
        with zf.open(f"{DIST_INFO}/METADATA", "w") as out:
            out.write(metadata_text().encode() + b"\n")
            chunk = b"A" * (1 << 20)
            for _ in range(100):
                out.write(chunk)
        zf.writestr(f"{DIST_INFO}/RECORD", b"")
    return Case(path, WHEEL)


@case(ArchiveLimits, "at most 4194304")
def metadata_over_limit_incompressible(tmp: Path) -> Case:
    body = random_text(5 << 20)
    members = wheel_members("demo", "1.0", metadata=metadata_text(body=body))
    return wheel_from(tmp, members)


@case(ArchiveLimits, "at most 4194304")
def pkg_info_over_limit(tmp: Path) -> Case:
    return sdist_case(tmp, pkg_info=metadata_text(body=random_text(5 << 20)))


@case(ArchiveLimits, "decompression bomb")
def tar_gz_bomb(tmp: Path) -> Case:
    path = write_sdist(tmp, "demo", "1.0", filename=SDIST)
    with tarfile.open(tmp / "bomb.tar.gz", "w:gz") as tf:
        with tarfile.open(path) as original:
            for info in original:
                tf.addfile(info, original.extractfile(info) if info.isreg() else None)
        info = tar_entry("demo-1.0/zeros.bin")
        info.size = BOMB_SIZE
        tf.addfile(info, Zeros(BOMB_SIZE))
    (tmp / "bomb.tar.gz").replace(path)
    return Case(path, SDIST)


@case(ArchiveLimits, "at most 50000")
def zip_100k_members(tmp: Path) -> Case:
    return Case(many_member_zip(tmp / WHEEL, 100_000), WHEEL)


@case(ArchiveLimits, "has 50001 or more members; at most 50000")
def zip_100k_members_count_hidden(tmp: Path) -> Case:
    """The end record claims 10 entries; the central directory really holds 100k.

    "50001 or more": the precount stopped at the limit (zipfile's list would say 100000).
    """
    path = many_member_zip(tmp / WHEEL, 100_000)
    return Case(patched(path, lambda d: struct.pack_into("<HH", d, len(d) - 22 + 8, 10, 10)), WHEEL)


@case(ArchiveLimits, "at most 100")
def tar_too_many_members(tmp: Path) -> Case:
    files = {f"demo-1.0/m{i}.py": b"" for i in range(150)}
    built = sdist_case(tmp, files=files)
    built.limits = Limits(max_members=100)
    return built


@case(ArchiveLimits, "extended header")
def tar_huge_pax_header(tmp: Path) -> Case:
    info = tar_entry("demo-1.0/README")
    info.pax_headers = {"comment": "x" * (2 << 20)}
    return sdist_case(tmp, extra=[(info, b"hello")])


# -- unsafe members --------------------------------------------------------------------


@case(UnsafeArchive, "path traversal")
def wheel_dotdot_member(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0", files={"../../evil.py": b"boom"})
    return wheel_from(tmp, members)


@case(UnsafeArchive, "absolute path")
def wheel_absolute_member(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0", files={"/etc/cron.d/evil": b"boom"})
    return wheel_from(tmp, members)


@case(UnsafeArchive, "backslash")
def wheel_backslash_member(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0", files={"demo\\..\\..\\evil.py": b"boom"})
    return wheel_from(tmp, members)


@case(UnsafeArchive, "drive letter")
def wheel_drive_letter_member(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0", files={"C:/Windows/evil.dll": b"boom"})
    return wheel_from(tmp, members)


@case(UnsafeArchive, "path traversal")
def sdist_dotdot_member(tmp: Path) -> Case:
    return sdist_case(tmp, extra=[(tar_entry("demo-1.0/../../evil.sh"), b"boom")])


@case(UnsafeArchive, "absolute path")
def sdist_absolute_member(tmp: Path) -> Case:
    return sdist_case(tmp, extra=[(tar_entry("/etc/profile.d/evil.sh"), b"boom")])


@case(UnsafeArchive, "symbolic link")
def wheel_symlink(tmp: Path) -> Case:
    members = list(wheel_members("demo", "1.0").items())
    members.insert(0, zip_link("demo/link", "__init__.py"))
    return Case(write_zip(tmp / WHEEL, members), WHEEL)


@case(UnsafeArchive, "points outside")
def sdist_symlink_outside(tmp: Path) -> Case:
    link = tar_entry("demo-1.0/passwd", tarfile.SYMTYPE, "../../../etc/passwd")
    return sdist_case(tmp, extra=[(link, None)])


@case(UnsafeArchive, "points outside")
def sdist_symlink_absolute(tmp: Path) -> Case:
    link = tar_entry("demo-1.0/passwd", tarfile.SYMTYPE, "/etc/passwd")
    return sdist_case(tmp, extra=[(link, None)])


@case(UnsafeArchive, "points outside")
def sdist_symlink_chain_outside(tmp: Path) -> Case:
    """Each link alone resolves inside; followed through each other they escape."""
    up = tar_entry("demo-1.0/up", tarfile.SYMTYPE, "..")
    escape = tar_entry("demo-1.0/escape", tarfile.SYMTYPE, "up/../x")
    return sdist_case(tmp, extra=[(up, None), (escape, None)])


@case(UnsafeArchive, "points outside")
def sdist_zip_symlink_outside(tmp: Path) -> Case:
    members = [
        ("demo-1.0/PKG-INFO", metadata_text().encode()),
        zip_link("demo-1.0/passwd", "../../etc/passwd"),
    ]
    return Case(write_zip(tmp / "demo-1.0.zip", members), "demo-1.0.zip")


@case(UnsafeArchive, "hard link")
def sdist_hardlink_outside(tmp: Path) -> Case:
    link = tar_entry("demo-1.0/shadow", tarfile.LNKTYPE, "../etc/shadow")
    return sdist_case(tmp, extra=[(link, None)])


@case(UnsafeArchive, "device")
def sdist_char_device(tmp: Path) -> Case:
    dev = tar_entry("demo-1.0/null", tarfile.CHRTYPE)
    dev.devmajor, dev.devminor = 1, 3
    return sdist_case(tmp, extra=[(dev, None)])


@case(UnsafeArchive, "FIFO")
def sdist_fifo(tmp: Path) -> Case:
    return sdist_case(tmp, extra=[(tar_entry("demo-1.0/pipe", tarfile.FIFOTYPE), None)])


@case(UnsafeArchive, "device, FIFO or socket")
def wheel_device_member(tmp: Path) -> Case:
    info = zipfile.ZipInfo("demo/dev")
    info.create_system = 3
    info.external_attr = (stat.S_IFCHR | 0o644) << 16
    members = [*wheel_members("demo", "1.0").items(), (info, b"")]
    return Case(write_zip(tmp / WHEEL, members), WHEEL)


@case(UnsafeArchive, "appears twice")
def wheel_duplicate_member(tmp: Path) -> Case:
    members = [*wheel_members("demo", "1.0").items(), ("demo/__init__.py", b"evil = 1\n")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Case(write_zip(tmp / WHEEL, members), WHEEL)


@case(UnsafeArchive, "appears twice")
def sdist_duplicate_member(tmp: Path) -> Case:
    return sdist_case(tmp, extra=[(tar_entry("demo-1.0/setup.py"), b"evil()\n")])


# -- wheel structure and RECORD --------------------------------------------------------


@case(RecordMismatch, "does not match RECORD")
def record_hash_mismatch(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0")
    members["demo/__init__.py"] = b"x = 2\n"  # same size, other bytes
    return wheel_from(tmp, members)


@case(RecordMismatch, "bytes but the wheel holds")
def record_size_mismatch(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0")
    rewrite_record(members, lambda rows: rows[0].__setitem__(2, "999"))
    return wheel_from(tmp, members)


@case(RecordMismatch, "not in demo-1.0.dist-info/RECORD")
def record_missing_entry(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0")
    members["demo/extra.py"] = b"sneaky = True\n"
    return wheel_from(tmp, members)


@case(RecordMismatch, "which is not in the wheel")
def record_entry_for_missing_file(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0")
    del members["demo/__init__.py"]
    return wheel_from(tmp, members)


@case(RecordMismatch, "without a hash")
def record_entry_without_hash(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0")
    rewrite_record(members, lambda rows: rows[0].__setitem__(1, ""))
    return wheel_from(tmp, members)


@case(RecordMismatch, "twice")
def record_duplicate_entry(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0")
    rewrite_record(members, lambda rows: rows.insert(0, list(rows[0])))
    return wheel_from(tmp, members)


@case(InvalidWheel, "sha256 or better")
def record_md5(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0")
    rewrite_record(members, lambda rows: rows[0].__setitem__(1, "md5=AAAA"))
    return wheel_from(tmp, members)


@case(InvalidWheel, "path,hash,size")
def record_wrong_field_count(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0")
    rewrite_record(members, lambda rows: rows[0].append("extra"))
    return wheel_from(tmp, members)


@case(InvalidWheel, "not a number")
def record_bad_size(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0")
    rewrite_record(members, lambda rows: rows[0].__setitem__(2, "-6"))
    return wheel_from(tmp, members)


@case(InvalidWheel, "has no demo-1.0.dist-info/RECORD")
def wheel_without_record(tmp: Path) -> Case:
    return wheel_from(tmp, wheel_members("demo", "1.0", record=False))


@case(InvalidWheel, "has no demo-1.0.dist-info/METADATA")
def wheel_without_metadata(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0", record=False)
    del members[f"{DIST_INFO}/METADATA"]
    members[f"{DIST_INFO}/RECORD"] = record_for(members, f"{DIST_INFO}/RECORD")
    return wheel_from(tmp, members)


@case(InvalidWheel, "has no demo-1.0.dist-info/WHEEL")
def wheel_without_wheel_file(tmp: Path) -> Case:
    return wheel_from(tmp, wheel_members("demo", "1.0", wheel=None))


@case(InvalidWheel, "only wheel format 1.x")
def wheel_version_2(tmp: Path) -> Case:
    return wheel_from(tmp, wheel_members("demo", "1.0", wheel=b"Wheel-Version: 2.0\n"))


@case(InvalidWheel, "no Wheel-Version")
def wheel_version_missing(tmp: Path) -> Case:
    return wheel_from(tmp, wheel_members("demo", "1.0", wheel=b"Generator: nothing\n"))


@case(InvalidWheel, ".dist-info directories")
def wheel_two_dist_infos(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0", files={
        "demo/__init__.py": b"",
        "demo-2.0.dist-info/METADATA": metadata_text("demo", "2.0").encode(),
    })
    return wheel_from(tmp, members)


@case(InvalidWheel, "no .dist-info directory")
def wheel_without_dist_info(tmp: Path) -> Case:
    return wheel_from(tmp, {"demo/__init__.py": b""})


@case(InvalidWheel, "does not match the filename")
def wheel_dist_info_other_version(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0", dist_info="demo-1.1.dist-info")
    return wheel_from(tmp, members)


@case(InvalidWheel, "does not match the filename")
def wheel_dist_info_other_project(tmp: Path) -> Case:
    members = wheel_members("demo", "1.0", dist_info="other-1.0.dist-info")
    return wheel_from(tmp, members)


# -- sdist structure -------------------------------------------------------------------


@case(InvalidSdist, "top-level entries")
def sdist_two_top_dirs(tmp: Path) -> Case:
    return sdist_case(tmp, extra=[(tar_entry("other-1.0/setup.py"), b"")])


@case(InvalidSdist, "top-level entries")
def sdist_zip_two_top_dirs(tmp: Path) -> Case:
    members = {"demo-1.0/PKG-INFO": metadata_text().encode(), "README": b"hi"}
    return Case(write_zip(tmp / "demo-1.0.zip", members), "demo-1.0.zip")


@case(InvalidSdist, "no demo-1.0/PKG-INFO")
def sdist_without_pkg_info(tmp: Path) -> Case:
    return sdist_case(tmp, include_pkg_info=False)


@case(InvalidSdist, "no demo-1.0/PKG-INFO")
def sdist_pkg_info_nested_only(tmp: Path) -> Case:
    return sdist_case(
        tmp,
        include_pkg_info=False,
        files={"demo-1.0/demo.egg-info/PKG-INFO": metadata_text().encode()},
    )


@case(InvalidSdist, "no top-level directory")
def sdist_single_file(tmp: Path) -> Case:
    path = write_tar_gz(tmp / SDIST, [(tar_entry("PKG-INFO"), metadata_text().encode())])
    return Case(path, SDIST)


# -- metadata --------------------------------------------------------------------------


@case(MetadataMismatch, "Name: 'other'")
def wheel_metadata_other_name(tmp: Path) -> Case:
    return wheel_from(tmp, wheel_members("demo", "1.0", metadata=metadata_text("other", "1.0")))


@case(MetadataMismatch, "Version: 2.0")
def sdist_metadata_other_version(tmp: Path) -> Case:
    return sdist_case(tmp, pkg_info=metadata_text("demo", "2.0"))


@case(InvalidMetadata, "'1.0-beta-x' is invalid for 'version'")
def metadata_invalid_version(tmp: Path) -> Case:
    return sdist_case(tmp, pkg_info=metadata_text("demo", "1.0-beta-x"))


@case(InvalidMetadata, "not valid UTF-8 (byte 0xe9")
def metadata_latin1(tmp: Path) -> Case:
    text = metadata_text(summary="Caf\u00e9 tools").encode("latin-1")
    return wheel_from(tmp, wheel_members("demo", "1.0", metadata=text))


@case(InvalidMetadata, "no (single) Metadata-Version")
def metadata_without_metadata_version(tmp: Path) -> Case:
    return sdist_case(tmp, pkg_info="Name: demo\nVersion: 1.0\n")


@case(InvalidMetadata, "Metadata-Version '9.9'")
def metadata_unknown_metadata_version(tmp: Path) -> Case:
    return sdist_case(tmp, pkg_info=metadata_text(metadata_version="9.9"))


@case(InvalidMetadata, "Requires-Python")
def metadata_bad_requires_python_lenient(tmp: Path) -> Case:
    return sdist_case(tmp, pkg_info=metadata_text(metadata_version="1.0", requires_python=">=3.x"))


@case(InvalidMetadata, "requires-python")
def metadata_bad_requires_python_strict(tmp: Path) -> Case:
    return sdist_case(tmp, pkg_info=metadata_text(metadata_version="2.1", requires_python="3 or later"))


@case(InvalidMetadata, "requires-dist")
def metadata_bad_requires_dist(tmp: Path) -> Case:
    extra = [("Requires-Dist", "requests >>= 2"), ("Requires-Dist", "ok-dep")]
    return sdist_case(tmp, pkg_info=metadata_text(metadata_version="2.3", extra=extra))


@case(InvalidMetadata, "unrecognized field")
def metadata_unknown_field_strict(tmp: Path) -> Case:
    extra = [("Favourite-Colour", "blue")]
    return sdist_case(tmp, pkg_info=metadata_text(metadata_version="2.4", extra=extra))


@case(InvalidMetadata, "not a valid project name")
def metadata_lenient_bad_name(tmp: Path) -> Case:
    return sdist_case(tmp, pkg_info=metadata_text("demo!", "1.0", metadata_version="1.0"))


@case(InvalidMetadata, "Version is missing")
def metadata_lenient_no_version(tmp: Path) -> Case:
    return sdist_case(tmp, pkg_info="Metadata-Version: 1.0\nName: demo\n")


# -- declared digests ------------------------------------------------------------------


def declared(**fields: str) -> Callable[[Path], Case]:
    def build(tmp: Path) -> Case:
        return Case(good_wheel(tmp), WHEEL, declared=fields)

    return build


for _id, _fields, _message in [
    ("declared_sha256_wrong", {"sha256_digest": "0" * 64}, "sha256_digest was 000"),
    ("declared_md5_wrong", {"md5_digest": "f" * 32}, "md5_digest was fff"),
    ("declared_blake2_wrong", {"blake2_256_digest": "a" * 64}, "blake2_256_digest was aaa"),
    ("declared_sha256_not_hex", {"sha256_digest": "not-a-digest"}, "not a 64-digit hex digest"),
]:
    CASES[_id] = Expect(declared(**_fields), DigestMismatch, _message)


@case(DigestMismatch, "sha256_digest")
def declared_digest_wins_over_archive_error(tmp: Path) -> Case:
    """A transfer that garbled the file is reported as that, not as a broken zip."""
    (tmp / WHEEL).write_bytes(b"garbage")
    return Case(tmp / WHEEL, WHEEL, declared={"sha256_digest": "1" * 64})


# -- the tests -------------------------------------------------------------------------


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


#: Cases with inputs of tens of megabytes, used by two tests: each is built once.
BOMBS = ("metadata_100_mb", "tar_gz_bomb", "zip_bomb_member", "zip_member_lies_about_size")


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, Path], Case]:
    """Build a case in *tmp_path*, or, for one of :data:`BOMBS`, reuse its first build."""
    built: dict[str, Case] = {}

    def build_case(name: str, tmp_path: Path) -> Case:
        if name not in BOMBS:
            return CASES[name].build(tmp_path)
        if name not in built:
            built[name] = CASES[name].build(tmp_path_factory.mktemp(name))
        return built[name]

    return build_case


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(CASES))
def test_rejected(name: str, tmp_path: Path, build: Callable[[str, Path], Case]) -> None:
    expect = CASES[name]
    built = build(name, tmp_path)
    with pytest.raises(Rejected) as info:
        inspect_file(built.path, built.filename, declared=built.declared, limits=built.limits)
    assert type(info.value) is expect.error, f"{type(info.value).__name__}: {info.value}"
    assert expect.message in info.value.message
    assert info.value.code == expect.error.code


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", BOMBS)
def test_bombs_use_bounded_memory(name: str, tmp_path: Path, build: Callable[[str, Path], Case]) -> None:
    built = build(name, tmp_path)
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveLimits):
            inspect_file(built.path, built.filename, limits=built.limits)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20


def test_uncaught_library_error_becomes_rejection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The safety net: an exception type nobody foresaw still rejects, never escapes."""
    import spoold.inspection.inspect

    def explode(*args: object, **kwargs: object) -> bytes:
        raise LookupError("something tarfile never raised before")

    monkeypatch.setattr(spoold.inspection.inspect, "inspect_sdist", explode)
    path = write_sdist(tmp_path)
    with pytest.raises(InvalidArchive, match="LookupError"):
        inspect_file(path, path.name)


def test_zlib_error_message_names_member(tmp_path: Path) -> None:
    built = CASES["zip_corrupt_deflate"].build(tmp_path)
    with pytest.raises(InvalidArchive) as info:
        inspect_file(built.path, built.filename)
    assert "'demo/__init__.py'" in info.value.message
    # The corruption is one zlib itself reports, and zlib's reason reaches the uploader.
    with zipfile.ZipFile(built.path) as zf, pytest.raises(zlib.error) as raw:
        zf.read("demo/__init__.py")
    assert f"({raw.value})" in info.value.message
