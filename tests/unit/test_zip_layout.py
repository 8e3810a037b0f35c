"""Zips that tools read differently are refused; zips as real tools write them are not.

Each hostile archive is checked to be one that :mod:`zipfile` (pip's reader) opens
without complaint -- so the test shows what the layout check adds -- and then refused by
:func:`~spoold.inspection.inspect.inspect_file` with the reason.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from spoold.errors import Rejected
from spoold.inspection.archive import InvalidArchive, UnsafeArchive
from spoold.inspection.inspect import inspect_file
from spoold.testing.dists import metadata_text, wheel_members, zip_bytes

WHEEL = "demo-1.0-py3-none-any.whl"
ZIP_SDIST = "demo-1.0.zip"
MEMBER = "demo/__init__.py"


def wheel(**kwargs: object) -> bytes:
    return zip_bytes(wheel_members("demo", "1.0", **kwargs))  # type: ignore[arg-type]


def zip_sdist(members: dict[str, bytes] | None = None) -> bytes:
    members = members if members is not None else {"demo-1.0/setup.py": b"from setuptools import setup\n" * 50}
    return zip_bytes({"demo-1.0/PKG-INFO": metadata_text().encode(), **members})


def local_offset(data: bytes, name: str) -> int:
    return zipfile.ZipFile(io.BytesIO(data)).getinfo(name).header_offset


def central_offset(data: bytes, name: str) -> int:
    at = data.index(b"PK\x01\x02")
    while data[at + 46 : at + 46 + len(name)] != name.encode():
        at = data.index(b"PK\x01\x02", at + 1)
    return at


def shift_offsets(data: bytearray, delta: int) -> None:
    """Add *delta* to every central entry's local header offset and to the CD offset."""
    at = data.find(b"PK\x01\x02")
    while at != -1:
        (offset,) = struct.unpack_from("<L", data, at + 42)
        struct.pack_into("<L", data, at + 42, offset + delta)
        n, m, k = struct.unpack_from("<HHH", data, at + 28)
        at = data.find(b"PK\x01\x02", at + 46 + n + m + k)
    (cd_offset,) = struct.unpack_from("<L", data, len(data) - 22 + 16)
    struct.pack_into("<L", data, len(data) - 22 + 16, cd_offset + delta)


def inspect_bytes(tmp_path: Path, data: bytes, filename: str = WHEEL) -> object:
    path = tmp_path / filename
    path.write_bytes(data)
    return inspect_file(path, filename)


def refused(tmp_path: Path, data: bytes, message: str, filename: str = WHEEL,
            error: type[Rejected] = InvalidArchive) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:  # pip's reader opens it happily
        assert zf.testzip() is None
    with pytest.raises(error) as info:
        inspect_bytes(tmp_path, data, filename)
    assert type(info.value) is error, info.value
    assert message in info.value.message, info.value.message


# -- what real tools write ------------------------------------------------------------------


def test_zipfile_output_is_accepted(tmp_path: Path) -> None:
    assert inspect_bytes(tmp_path, wheel()).kind == "wheel"  # type: ignore[attr-defined]


def test_data_descriptors_as_a_streaming_writer_writes_them(tmp_path: Path) -> None:
    """zipfile writing to an unseekable stream puts sizes in data descriptors."""

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            self.data += b
            return len(b)

    out = Unseekable()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in wheel_members("demo", "1.0").items():
            zf.writestr(name, data)
    data = bytes(out.data)
    assert all(i.flag_bits & 0x08 for i in zipfile.ZipFile(io.BytesIO(data)).infolist())
    assert inspect_bytes(tmp_path, data).kind == "wheel"  # type: ignore[attr-defined]


def test_zip64_records_and_a_plain_comment_are_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 2)  # ZIP64 end records
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in wheel_members("demo", "1.0").items():
            zf.writestr(name, data)
        zf.comment = b"built for spoold's tests"
    monkeypatch.undo()
    assert b"PK\x06\x06" in buffer.getvalue()
    assert inspect_bytes(tmp_path, buffer.getvalue()).kind == "wheel"  # type: ignore[attr-defined]


def test_setgid_directory_is_accepted(tmp_path: Path) -> None:
    """Built in a shared setgid directory; on a directory the bit grants nothing."""
    info = zipfile.ZipInfo("demo-1.0/docs/")
    info.create_system = 3
    info.external_attr = (stat.S_IFDIR | 0o2775) << 16
    data = zip_bytes([("demo-1.0/PKG-INFO", metadata_text().encode()), (info, b"")])
    assert inspect_bytes(tmp_path, data, ZIP_SDIST).kind == "sdist"  # type: ignore[attr-defined]


# -- two archives in one file ----------------------------------------------------------------


def test_two_concatenated_zips(tmp_path: Path) -> None:
    """zipfile (pip) finds the second archive from the end; a front-to-back reader the first."""
    first = wheel(files={"demo/__init__.py": b"shown = 'to reviewers'\n"})
    second = wheel(files={"demo/__init__.py": b"installed = 'by pip'\n"})
    data = first + second
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read(MEMBER) == b"installed = 'by pip'\n"
    refused(tmp_path, data, f"{len(first)} bytes before the archive's first record")


def test_two_concatenated_zips_with_absolute_offsets(tmp_path: Path) -> None:
    """The second archive's offsets rewritten to count from the file's start."""
    first = wheel(files={"demo/__init__.py": b"shown = 1\n"})
    second = bytearray(wheel(files={"demo/__init__.py": b"installed = 1\n"}))
    shift_offsets(second, len(first))
    refused(tmp_path, first + bytes(second), "a gap of unknown bytes before the member")


def test_bytes_before_the_first_entry(tmp_path: Path) -> None:
    refused(tmp_path, b"#!/bin/sh\nexec evil\n" + wheel(), "bytes before the archive's first record")


def test_trailing_bytes_after_the_end_record(tmp_path: Path) -> None:
    """zipfile ignores what follows the end record; appended data is a second payload."""
    refused(tmp_path, wheel() + b"PK\x03\x04 and more", "13 bytes after the end of the archive")


def test_gap_between_entries(tmp_path: Path) -> None:
    original = wheel()
    second = sorted(zipfile.ZipFile(io.BytesIO(original)).infolist(), key=lambda i: i.header_offset)[1]
    junk = zip_bytes({"hidden/evil.py": b"evil()\n"})  # a whole zip, hidden in between
    data = bytearray(original[: second.header_offset] + junk + original[second.header_offset :])
    at = data.find(b"PK\x01\x02", second.header_offset + len(junk))
    while at != -1:  # central entries from the second one on, and the CD offset, move
        (offset,) = struct.unpack_from("<L", data, at + 42)
        if offset >= second.header_offset:
            struct.pack_into("<L", data, at + 42, offset + len(junk))
        n, m, k = struct.unpack_from("<HHH", data, at + 28)
        at = data.find(b"PK\x01\x02", at + 46 + n + m + k)
    (cd_offset,) = struct.unpack_from("<L", data, len(data) - 22 + 16)
    struct.pack_into("<L", data, len(data) - 22 + 16, cd_offset + len(junk))
    refused(tmp_path, bytes(data), f"a gap of unknown bytes before the member {second.filename!r}")


def test_bytes_between_the_last_entry_and_the_central_directory(tmp_path: Path) -> None:
    original = wheel()
    start = original.index(b"PK\x01\x02")
    hidden = zip_bytes({"evil.py": b"evil()\n"})
    data = bytearray(original[:start] + hidden + original[start:])
    struct.pack_into("<L", data, len(data) - 22 + 16, start + len(hidden))
    refused(tmp_path, bytes(data), "bytes that belong to no member before the central directory")


def commented(comment: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in wheel_members("demo", "1.0").items():
            zf.writestr(name, data)
        zf.comment = comment
    return buffer.getvalue()


def test_whole_zip_in_the_comment(tmp_path: Path) -> None:
    """zipfile takes the last end record it finds: the one in the comment."""
    data = commented(b"x" + zip_bytes({"evil.py": b"evil()\n"}))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist() == ["evil.py"]
    with pytest.raises(InvalidArchive, match="bytes before the archive's first record"):
        inspect_bytes(tmp_path, data)


def test_records_hidden_in_the_comment(tmp_path: Path) -> None:
    data = commented(b"x" + zip_bytes({"evil.py": b"evil()\n"})[:60])
    refused(tmp_path, data, "zip records hidden in the archive comment")


# -- a local header that says something else ------------------------------------------------


def patch_local(data: bytes, name: str, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, local_offset(data, name) + offset, value)
    return bytes(out)


@pytest.mark.parametrize(
    ("field", "offset", "fmt", "value"),
    [("compressed size", 18, "<L", 3), ("size", 22, "<L", 5), ("crc", 14, "<L", 1)],
)
def test_local_header_sizes_differ(tmp_path: Path, field: str, offset: int, fmt: str, value: int) -> None:
    """A streaming reader believes the local header; pip believes the central directory."""
    data = patch_local(wheel(), MEMBER, offset, fmt, value)
    refused(tmp_path, data, "gives another size or CRC than the central directory")


def test_local_header_method_differs(tmp_path: Path) -> None:
    data = patch_local(zip_bytes(wheel_members("demo", "1.0"), compression=zipfile.ZIP_STORED),
                       MEMBER, 8, "<H", zipfile.ZIP_DEFLATED)
    refused(tmp_path, data, "gives another compression method or flags")


def test_data_descriptor_disagrees(tmp_path: Path) -> None:
    """The local flags say a descriptor follows the data; what follows says otherwise."""
    data = bytearray(wheel())
    struct.pack_into("<H", data, local_offset(bytes(data), MEMBER) + 6, 0x08)
    refused(tmp_path, bytes(data), f"the data descriptor of {MEMBER!r} disagrees with the central directory")


def unicode_path(name: str, raw: bytes) -> bytes:
    field = struct.pack("<BL", 1, zlib.crc32(raw)) + name.encode()
    return struct.pack("<HH", 0x7075, len(field)) + field


@pytest.mark.parametrize("where", ["central directory", "local header"])
def test_second_name_in_a_unicode_path_field(tmp_path: Path, where: str) -> None:
    """Python 3.12+ zipfile installs under the Unicode Path name, 3.11 under the plain one."""
    name = "demo/plain.py"
    info = zipfile.ZipInfo(name)
    info.extra = unicode_path("demo/other.py", name.encode())  # zipfile writes it in both
    members = wheel_members("demo", "1.0", files={name: b"x = 1\n"})
    data = bytearray(zip_bytes([(info if n == name else n, d) for n, d in members.items()]))
    # Keep it in one header only: overwrite the other copy with an unknown field.
    other = local_offset(bytes(data), name) + 30 if where == "central directory" else central_offset(bytes(data), name) + 46
    filler = struct.pack("<HH", 0xCAFE, len(info.extra) - 4) + bytes(len(info.extra) - 4)
    data[other + len(name) : other + len(name) + len(filler)] = filler
    refused(tmp_path, bytes(data), f"has a second name in its {where}'s Unicode Path field")


def test_agreeing_unicode_path_field_is_accepted(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("demo/plain.py")
    info.extra = unicode_path("demo/plain.py", b"demo/plain.py")
    members = wheel_members("demo", "1.0", files={"demo/plain.py": b"x = 1\n"})
    data = zip_bytes([(info if n == "demo/plain.py" else n, d) for n, d in members.items()])
    assert inspect_bytes(tmp_path, data).kind == "wheel"  # type: ignore[attr-defined]


# -- members that say more than they declare --------------------------------------------------


def shrink_declared_size(data: bytes, name: str, size: int, crc: int) -> bytes:
    """Declare *size* bytes (and *crc*) for *name* in both headers; the data stays."""
    out = bytearray(data)
    struct.pack_into("<LLL", out, local_offset(data, name) + 14, crc,
                     zipfile.ZipFile(io.BytesIO(data)).getinfo(name).compress_size, size)
    at = central_offset(data, name)
    (packed,) = struct.unpack_from("<L", out, at + 20)
    struct.pack_into("<LLL", out, at + 16, crc, packed, size)
    return bytes(out)


def test_member_inflating_past_its_declared_size(tmp_path: Path) -> None:
    """zipfile stops at the declared size and checks the CRC of that much; unzip and
    streaming readers inflate the whole stream: two readers, two files. spoold reads one
    byte more than declared, so the CRC no longer matches."""
    content = b"print('hello')\n" * 200
    name = "demo-1.0/setup.py"
    cut = len(content) // 2
    data = shrink_declared_size(zip_sdist({name: content}), name, cut, zlib.crc32(content[:cut]))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:  # pip's reader sees half the file, intact
        assert zf.read(name) == content[:cut]
    with pytest.raises(InvalidArchive, match="Bad CRC-32"):
        inspect_bytes(tmp_path, data, ZIP_SDIST)


def test_extra_byte_past_the_declared_size_is_refused(tmp_path: Path) -> None:
    """Should the CRC cover the extra byte too, the extra byte itself is refused."""
    content = b"print('hello')\n" * 200
    name = "demo-1.0/setup.py"
    cut = len(content) // 2
    data = shrink_declared_size(zip_sdist({name: content}), name, cut, zlib.crc32(content[: cut + 1]))
    with pytest.raises(InvalidArchive, match="inflates past its declared size of 1500 bytes"):
        inspect_bytes(tmp_path, data, ZIP_SDIST)


# -- modes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o4755, 0o2755, 0o1644], ids=["setuid", "setgid", "sticky"])
def test_setuid_setgid_sticky_files_are_refused(tmp_path: Path, mode: int) -> None:
    info = zipfile.ZipInfo("demo-1.0/tool")
    info.create_system = 3
    info.external_attr = (stat.S_IFREG | mode) << 16
    data = zip_bytes([("demo-1.0/PKG-INFO", metadata_text().encode()), (info, b"#!/bin/sh\n")])
    refused(tmp_path, data, f"setuid, setgid or sticky bit set (mode {mode:04o})", ZIP_SDIST, UnsafeArchive)


def _end_record_edit(edit: Callable[[bytearray], None]) -> bytes:
    data = bytearray(wheel())
    edit(data)
    return bytes(data)


def test_end_record_counts_other_entries(tmp_path: Path) -> None:
    data = _end_record_edit(lambda d: struct.pack_into("<HH", d, len(d) - 22 + 8, 2, 2))
    refused(tmp_path, data, "the end record declares 2 entries")


def test_end_record_counts_entries_on_other_disks(tmp_path: Path) -> None:
    data = _end_record_edit(lambda d: struct.pack_into("<H", d, len(d) - 22 + 8, 1))
    refused(tmp_path, data, "its end record counts entries on several disks")


def zip64_wheel(monkeypatch: pytest.MonkeyPatch) -> bytearray:
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 2)
    data = bytearray(wheel())
    monkeypatch.undo()
    assert data[len(data) - 22 - 20 - 56 : len(data) - 22 - 20 - 52] == b"PK\x06\x06"
    return data


def test_classic_end_record_points_elsewhere_than_zip64(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """zipfile believes the ZIP64 record; a reader that knows no ZIP64 the classic one."""
    data = zip64_wheel(monkeypatch)
    struct.pack_into("<L", data, len(data) - 22 + 16, 0)  # classic: the CD starts at 0
    refused(tmp_path, bytes(data), "classic and ZIP64 end records describe different central directories")


def test_zip64_locator_points_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = zip64_wheel(monkeypatch)
    struct.pack_into("<Q", data, len(data) - 22 - 20 + 8, 0)
    refused(tmp_path, bytes(data), "its ZIP64 locator points elsewhere than the ZIP64 end record")
