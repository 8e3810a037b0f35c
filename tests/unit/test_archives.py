"""The safe readers on their own: names, links, limits, and whose fault a failure is."""

from __future__ import annotations

import base64
import io
import os
import random
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from testlib.distbuild import write_sdist, write_zip
from spoold.errors import Transient
from spoold.safeopen import NotRegularFile
from spoold.inspection.archive import (
    ArchiveLimits,
    InvalidArchive,
    Limits,
    UnsafeArchive,
    check_member_path,
    open_source,
)
from spoold.inspection.sdist import scan_sdist
from spoold.inspection.tarreader import _GuardedTarInfo
from spoold.inspection.zipreader import ZipReader


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("a", ("a",)),
        ("a/b/c.py", ("a", "b", "c.py")),
        ("a/b/", ("a", "b")),
        ("a/..b/c..", ("a", "..b", "c..")),
    ],
)
def test_safe_names(name: str, parts: tuple[str, ...]) -> None:
    assert check_member_path(name) == parts


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty name"),
        ("/etc/passwd", "absolute"),
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("a/..", "'..'"),
        ("a\\b", "backslash"),
        ("C:/x", "drive letter"),
        ("c:x", "drive letter"),
        ("a\x00b", "NUL"),
        ("a//b", "empty or '.'"),
        ("./a", "empty or '.'"),
        ("/", "absolute"),
    ],
)
def test_unsafe_names(name: str, message: str) -> None:
    with pytest.raises(UnsafeArchive, match=message.replace(".", r"\.")):
        check_member_path(name)


def test_dot_components_allowed_for_tar() -> None:
    assert check_member_path("./a//b/./c", allow_dot=True) == ("a", "b", "c")
    with pytest.raises(UnsafeArchive):
        check_member_path("./../a", allow_dot=True)


def _zip_reader(path: Path, **limits: int) -> ZipReader:
    stream = open_source(path)
    return ZipReader(stream, archive_size=path.stat().st_size, limits=Limits(**limits), links="reject")


def test_zip_members_in_file_order_and_streamed(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "a.zip", {"b/2": b"two" * 1000, "a/1": b"one", "c/": b""})
    with _zip_reader(path) as zf:
        assert [m.name for m in zf.members] == ["b/2", "a/1", "c/"]
        assert zf.members[2].is_dir
        assert b"".join(zf.chunks(zf.members[0], chunk_size=7)) == b"two" * 1000
        assert zf.read(zf.members[1], 3) == b"one"
        with pytest.raises(ArchiveLimits, match="at most 2"):
            zf.read(zf.members[1], 2)


def test_zip_total_size_limit(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "a.zip", {"a": b"x" * 600, "b": b"y" * 600})
    with pytest.raises(ArchiveLimits, match=r"add up to 1200 bytes uncompressed \(the largest member, 'a', is 600 bytes\); at most 1000 "):
        _zip_reader(path, max_uncompressed=1000)


def test_zip_overall_ratio_counts_many_small_members(tmp_path: Path) -> None:
    """The ratio is the whole archive's: many small members add up to a bomb."""
    members = {f"m{i}": bytes(64 << 10) for i in range(64)}
    path = write_zip(tmp_path / "a.zip", members)
    with pytest.raises(ArchiveLimits, match="more than 100 times its size; this looks like a zip bomb"):
        _zip_reader(path, ratio_min_size=1 << 20)
    with _zip_reader(path, ratio_min_size=1 << 20, max_ratio=0) as zf:  # 0: no ratio limit
        assert len(zf.members) == 64


def test_small_repetitive_archives_are_not_bombs(tmp_path: Path) -> None:
    """Below ratio_min_size (64 MiB) an archive costs nothing to read, whatever its ratio."""
    path = write_zip(tmp_path / "a.zip", {"zeros": bytes(8 << 20)})
    with _zip_reader(path) as zf:
        assert zf.members[0].size == 8 << 20


def test_one_member_inflating_far_more_than_the_archive_is_not_a_bomb(tmp_path: Path) -> None:
    """Pillow 13.0.0's manylinux wheel: an auditwheel-padded library inflates 224:1 (over
    the old 200:1 per-member limit) while the wheel inflates less than 3:1."""
    library = bytes(2 << 20) + random.Random(1).randbytes(4096)
    rest = random.Random(2).randbytes(3 << 20)
    path = write_zip(tmp_path / "a.zip", {"pkg.libs/libpadded.so": library, "pkg/data.bin": rest})
    with zipfile.ZipFile(path) as raw:
        info = raw.getinfo("pkg.libs/libpadded.so")
        assert info.file_size > 1 << 20 and info.file_size > 200 * info.compress_size
    with _zip_reader(path) as zf:
        assert b"".join(zf.chunks(zf.members[0])) == library


def _many_members(path: Path, count: int, monkeypatch: pytest.MonkeyPatch, *, zip64: bool) -> bytearray:
    if zip64:  # zipfile writes ZIP64 end records past this many entries
        monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 10)
    write_zip(path, {f"m{i}": b"" for i in range(count)})
    monkeypatch.undo()
    return bytearray(path.read_bytes())


@pytest.mark.parametrize("zip64", [False, True])
def test_precount_walks_the_central_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zip64: bool
) -> None:
    """The end record's count may lie: the records are counted, stopping at the limit.

    "101 or more" shows the precount refused it, before zipfile built an object per
    entry (zipfile's own list would have said 150).
    """
    path = tmp_path / "a.zip"
    data = _many_members(path, 150, monkeypatch, zip64=zip64)
    if zip64:
        struct.pack_into("<QQ", data, len(data) - 22 - 20 - 56 + 24, 5, 5)
    else:
        struct.pack_into("<HH", data, len(data) - 22 + 8, 5, 5)
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveLimits, match="has 101 or more members; at most 100 "):
        _zip_reader(path, max_members=100)


@pytest.mark.parametrize("zip64", [False, True])
def test_precount_believes_a_count_over_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zip64: bool
) -> None:
    path = tmp_path / "a.zip"
    _many_members(path, 150, monkeypatch, zip64=zip64)
    with pytest.raises(ArchiveLimits, match="has 150 or more members; at most 100 "):
        _zip_reader(path, max_members=100)
    with _zip_reader(path, max_members=150) as zf:
        assert len(zf.members) == 150


def test_zip_comment_running_past_the_end(tmp_path: Path) -> None:
    """zipfile would read this cut-short file; the precount cannot trust its end record."""
    path = write_zip(tmp_path / "a.zip", {"a": b"data"})
    data = bytearray(path.read_bytes())
    struct.pack_into("<H", data, len(data) - 2, 10)
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidArchive, match=r"not a valid zip archive \(its end record declares a 10-byte"):
        _zip_reader(path)


def test_read_error_is_transient_not_rejection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk or NFS failure must defer the item, never reject it as a bad archive."""
    path = write_zip(tmp_path / "a.zip", {"a": b"data"})
    stream = open_source(path)
    raw = stream.raw._raw  # type: ignore[attr-defined]

    def failing_readinto(buffer: object) -> int:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(stream.raw, "_raw", type("Failing", (), {
        "readinto": staticmethod(failing_readinto),
        "seek": raw.seek, "tell": raw.tell, "close": raw.close,
    })())
    with pytest.raises(Transient, match="Input/output error"):
        ZipReader(stream, archive_size=100, limits=Limits(), links="reject")
    raw.close()


def _scan(path: Path, extension: str = ".tar.gz", **limits: int):  # type: ignore[no-untyped-def]
    with open_source(path) as stream:
        return scan_sdist(
            stream, extension, archive_size=path.stat().st_size, limits=Limits(**limits),
            capture=lambda parts: parts[-1] == "PKG-INFO",
        )


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def test_tar_scan_captures_and_lists(tmp_path: Path) -> None:
    path = write_sdist(tmp_path, pkg_info="Metadata-Version: 1.0\nName: demo\nVersion: 1.0\n")
    scan = _scan(path)
    assert scan.captured == {"demo-1.0/PKG-INFO": b"Metadata-Version: 1.0\nName: demo\nVersion: 1.0\n"}
    assert {"/".join(m.parts) for m in scan.members} == {"demo-1.0", "demo-1.0/PKG-INFO", "demo-1.0/setup.py"}


@pytest.mark.parametrize(
    ("links", "escapes"),
    [
        ([("demo-1.0/a", "b")], False),
        ([("demo-1.0/a", "../demo-1.0/b")], False),
        ([("demo-1.0/a", "..")], False),
        ([("demo-1.0/a", "../..")], True),
        ([("demo-1.0/a", "/tmp")], True),
        ([("demo-1.0/d/a", "../../x")], False),
        ([("demo-1.0/d/a", "../../../x")], True),
        ([("demo-1.0/up", ".."), ("demo-1.0/b", "up/../x")], True),
        ([("demo-1.0/loop1", "loop2"), ("demo-1.0/loop2", "loop1")], True),
        ([("demo-1.0/self", "self/x")], True),
    ],
)
def test_symlink_containment(tmp_path: Path, links: list[tuple[str, str]], escapes: bool) -> None:
    path = write_sdist(tmp_path, extra=[_link(n, t) for n, t in links])
    if escapes:
        with pytest.raises(UnsafeArchive, match="points outside"):
            _scan(path)
    else:
        _scan(path)


def test_tar_budget_counts_decompressed_bytes(tmp_path: Path) -> None:
    files = {f"demo-1.0/part{i}": b"x" * 40_000 for i in range(4)}
    path = write_sdist(tmp_path, files=files)
    with pytest.raises(ArchiveLimits, match="inflates to more than 100000"):
        _scan(path, max_uncompressed=100_000)


def test_tar_declared_member_size_limit(tmp_path: Path) -> None:
    path = write_sdist(tmp_path, files={"demo-1.0/big": b"x" * 200_000})
    with pytest.raises(ArchiveLimits, match="'demo-1.0/big' is 200000 bytes"):
        _scan(path, max_uncompressed=150_000)


# -- the tarfile internal the tar reader relies on ----------------------------------------
#
# tarfile reads a pax or GNU long-name header member whole into memory, and offers no
# public way to refuse one first; _GuardedTarInfo overrides TarInfo._proc_member, which
# tarfile calls right after reading a member's 512-byte header block and before reading
# what follows. If a Python release renames or bypasses it, these tests fail.


class _CountingFile(io.BytesIO):
    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = super().readinto(buffer)
        self.bytes_read += n
        return n


def _tar_gz_with_header(kind: str, header_size: int) -> bytes:
    """A tar.gz whose first member comes with a *header_size*-byte pax or GNU header.

    The header is random text, so the compressed file is nearly as large as the header
    and the bytes read from it show how much of the header was read.
    """
    text = base64.b64encode(random.Random(header_size).randbytes(header_size * 3 // 4)).decode()
    buffer = io.BytesIO()
    fmt = tarfile.PAX_FORMAT if kind == "pax" else tarfile.GNU_FORMAT
    with tarfile.open(fileobj=buffer, mode="w:gz", format=fmt, compresslevel=1) as tar:
        if kind == "pax":
            info = tarfile.TarInfo("demo-1.0/README")
            info.pax_headers = {"comment": text}
        else:
            info = tarfile.TarInfo("demo-1.0/" + text)
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    return buffer.getvalue()


def _scan_bytes(stream: io.BytesIO, **limits: int):  # type: ignore[no-untyped-def]
    size = len(stream.getbuffer())
    return scan_sdist(stream, ".tar.gz", archive_size=size, limits=Limits(**limits),  # type: ignore[arg-type]
                      capture=lambda parts: False)


@pytest.mark.parametrize(("kind", "header_type"), [("pax", tarfile.XHDTYPE), ("gnu", tarfile.GNUTYPE_LONGNAME)])
def test_tarfile_hands_header_members_to_proc_member(
    monkeypatch: pytest.MonkeyPatch, kind: str, header_type: bytes
) -> None:
    assert callable(getattr(tarfile.TarInfo, "_proc_member", None))
    seen: list[tuple[bytes, int]] = []
    real = _GuardedTarInfo._proc_member

    def spy(self: tarfile.TarInfo, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        seen.append((self.type, self.size))
        return real(self, tarfile_)  # type: ignore[arg-type]

    monkeypatch.setattr(_GuardedTarInfo, "_proc_member", spy)
    scan = _scan_bytes(io.BytesIO(_tar_gz_with_header(kind, 4096)))
    assert len(scan.members) == 1
    assert seen[0][0] == header_type and seen[0][1] >= 4096
    assert seen[1][0] == tarfile.REGTYPE and seen[1][1] == 5


@pytest.mark.parametrize("kind", ["pax", "gnu"])
def test_huge_header_refused_before_tarfile_reads_it(kind: str) -> None:
    data = _tar_gz_with_header(kind, 2 << 20)
    assert len(data) > 3 << 19  # incompressible: reading the header means reading the file
    stream = _CountingFile(data)
    with pytest.raises(ArchiveLimits, match="extended header; at most 1048576"):
        _scan_bytes(stream)
    assert stream.bytes_read < 1 << 19


def test_zip_sdist_reads_every_member(tmp_path: Path) -> None:
    """A corrupt member is found even though only PKG-INFO is needed."""
    data = b"payload!" * 64
    path = write_zip(tmp_path / "demo-1.0.zip", {"demo-1.0/PKG-INFO": b"x", "demo-1.0/data": data},
                     compression=zipfile.ZIP_STORED)
    raw = bytearray(path.read_bytes())
    raw[raw.find(data)] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(InvalidArchive, match="Bad CRC-32"):
        _scan(path, ".zip")


def test_not_an_sdist_extension() -> None:
    with pytest.raises(ValueError):
        scan_sdist(io.BytesIO(), ".whl", archive_size=0, limits=Limits(), capture=lambda p: False)  # type: ignore[arg-type]


# -- the file underneath: opened like anything else others may replace ----------------------


def test_open_source_never_blocks_on_a_fifo(tmp_path: Path) -> None:
    """A spool-group user may swap a claimed payload for a FIFO: refused, not read.

    A writer holds the FIFO open, so a plain ``open`` would succeed (and then hang in
    read); ``open_source`` must refuse it before reading anything.
    """
    fifo = tmp_path / "demo-1.0-py3-none-any.whl"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        with pytest.raises(NotRegularFile, match="not a regular file"):
            open_source(fifo)
    finally:
        os.close(writer)


def test_open_source_does_not_follow_symlinks(tmp_path: Path) -> None:
    target = write_zip(tmp_path / "real.zip", {"a": b"data"})
    link = tmp_path / "demo-1.0-py3-none-any.whl"
    link.symlink_to(target)
    with pytest.raises(NotRegularFile, match="symbolic link"):
        open_source(link)
    with open_source(target) as stream:
        assert stream.read(2) == b"PK"
