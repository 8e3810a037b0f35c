"""A ``.tar.gz`` that tools unpack differently, or that escapes where it lands, is refused.

Each hostile sdist is first shown to be one that the standard library reads without
complaint (``tarfile.open(path)``, as most tools would), then refused by
:func:`~spoold.inspection.inspect.inspect_file` with the reason.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from spoold.errors import Rejected
from spoold.inspection.archive import InvalidArchive, UnsafeArchive
from spoold.inspection.inspect import inspect_file
from spoold.testing.dists import metadata_text, write_sdist

SDIST = "demo-1.0.tar.gz"


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]], *, pad_to: int | None = None) -> bytes:
    """An uncompressed tar of *members* (end-of-archive blocks and record padding included)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def entry(name: str, kind: bytes = tarfile.REGTYPE, *, linkname: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = mode
    return info


def sdist_members(*extra: tuple[tarfile.TarInfo, bytes | None]) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    return [
        (entry("demo-1.0", tarfile.DIRTYPE, mode=0o755), None),
        (entry("demo-1.0/PKG-INFO"), metadata_text().encode()),
        (entry("demo-1.0/setup.py"), b"from setuptools import setup\nsetup()\n"),
        *extra,
    ]


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / SDIST
    path.write_bytes(data)
    return path


def refused(path: Path, error: type[Rejected], message: str) -> None:
    with pytest.raises(error) as info:
        inspect_file(path, path.name)
    assert type(info.value) is error, info.value
    assert message in info.value.message, info.value.message


# -- a second archive behind the first ---------------------------------------------------------


def test_second_gzip_member_hiding_another_tar(tmp_path: Path) -> None:
    """gzip (and GzipFile) inflate both members as one stream: tools that read on past the
    first tar's end, or that unpack each member, install the hidden files."""
    first = gzip.compress(tar_bytes(sdist_members()))
    hidden = gzip.compress(tar_bytes([(entry("demo-1.0/evil.py"), b"evil()\n")]))
    path = write(tmp_path, first + hidden)
    assert gzip.decompress(path.read_bytes()).count(b"evil()") == 1  # gzip -d sees it
    with tarfile.open(path) as tf:
        assert "demo-1.0/evil.py" not in tf.getnames()  # tarfile does not
    refused(path, InvalidArchive, "holds a second gzip stream after the first")


def test_tar_after_the_end_of_archive_blocks(tmp_path: Path) -> None:
    """One gzip member holding two tars: ``tar -i`` (ignore zeros) unpacks the second."""
    data = tar_bytes(sdist_members()) + tar_bytes([(entry("demo-1.0/evil.py"), b"evil()\n")])
    path = write(tmp_path, gzip.compress(data))
    with tarfile.open(path) as tf:
        assert "demo-1.0/evil.py" not in tf.getnames()
    with tarfile.open(path, ignore_zeros=True) as tf:
        assert "demo-1.0/evil.py" in tf.getnames()
    refused(path, InvalidArchive, "holds data after the end of its tar archive")


def test_garbage_where_the_next_header_should_be(tmp_path: Path) -> None:
    """tarfile stops quietly at a bad header after the first member; the rest is hidden."""
    tar = tar_bytes(sdist_members())
    end = tar.index(bytes(1024), 1536)  # the end-of-archive blocks, after the members
    data = tar[:end] + b"\xff" * 512 + tar[end + 512 :]
    path = write(tmp_path, gzip.compress(data))
    with tarfile.open(path) as tf:
        assert len(tf.getmembers()) == 3
    refused(path, InvalidArchive, "holds data after the end of its tar archive")


def test_zero_padding_after_the_end_is_fine(tmp_path: Path) -> None:
    """Tape-style blocking pads the tar with zeros (GNU tar to 10 KiB records); nothing hides there."""
    path = write(tmp_path, gzip.compress(tar_bytes(sdist_members()) + bytes(64 << 10)))
    assert inspect_file(path, path.name).kind == "sdist"


def test_zero_bytes_after_the_gzip_member(tmp_path: Path) -> None:
    """GzipFile skips them; the file is not what the build tool wrote."""
    path = write(tmp_path, gzip.compress(tar_bytes(sdist_members())) + bytes(100))
    with tarfile.open(path) as tf:
        assert len(tf.getmembers()) == 3
    refused(path, InvalidArchive, "bytes after the end of its gzip stream")


# -- links ----------------------------------------------------------------------------------


def test_hard_link_to_a_symlink_that_escapes_where_it_lands(tmp_path: Path) -> None:
    """``a/b/link -> ../../setup.py`` stays inside from ``a/b/``; the hard link puts the same
    symlink at the top, where ``../../setup.py`` leaves the extraction directory."""
    path = write(tmp_path, gzip.compress(tar_bytes(sdist_members(
        (entry("demo-1.0/a/b/link", tarfile.SYMTYPE, linkname="../../setup.py"), None),
        (entry("demo-1.0/here", tarfile.LNKTYPE, linkname="demo-1.0/a/b/link"), None),
    ))))
    refused(path, UnsafeArchive, "points to a symbolic link")


def test_hard_link_to_nothing_in_the_archive(tmp_path: Path) -> None:
    """tar would link to whatever the extraction directory holds under that name."""
    path = write(tmp_path, gzip.compress(tar_bytes(sdist_members(
        (entry("demo-1.0/here", tarfile.LNKTYPE, linkname="demo-1.0/not-here"), None),
    ))))
    refused(path, UnsafeArchive, "names no file that comes before it in the archive")


def test_hard_link_to_a_later_member(tmp_path: Path) -> None:
    path = write(tmp_path, gzip.compress(tar_bytes(sdist_members(
        (entry("demo-1.0/early", tarfile.LNKTYPE, linkname="demo-1.0/late"), None),
        (entry("demo-1.0/late"), b"late\n"),
    ))))
    refused(path, UnsafeArchive, "names no file that comes before it in the archive")


def test_hard_links_to_earlier_files_are_fine(tmp_path: Path) -> None:
    """What tarfile and GNU tar write for two names of one file (distutils sdists have them)."""
    path = write(tmp_path, gzip.compress(tar_bytes(sdist_members(
        (entry("demo-1.0/copy.py", tarfile.LNKTYPE, linkname="demo-1.0/setup.py"), None),
        (entry("demo-1.0/again.py", tarfile.LNKTYPE, linkname="./demo-1.0/copy.py"), None),
    ))))
    assert inspect_file(path, path.name).kind == "sdist"


# -- modes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o4755, 0o2755, 0o1644, 0o6755], ids=["setuid", "setgid", "sticky", "both"])
def test_special_bits_on_files_are_refused(tmp_path: Path, mode: int) -> None:
    path = write_sdist(tmp_path, extra=[(entry("demo-1.0/tool", mode=mode), b"#!/bin/sh\n")])
    refused(path, UnsafeArchive, f"setuid, setgid or sticky bit set (mode {mode:04o})")


def test_special_bits_on_a_hard_link_are_refused(tmp_path: Path) -> None:
    link = entry("demo-1.0/tool", tarfile.LNKTYPE, linkname="demo-1.0/setup.py", mode=0o4755)
    path = write_sdist(tmp_path, extra=[(link, None)])
    refused(path, UnsafeArchive, "setuid, setgid or sticky bit set (mode 4755)")


def test_setgid_directories_are_fine(tmp_path: Path) -> None:
    path = write_sdist(tmp_path, extra=[(entry("demo-1.0/docs", tarfile.DIRTYPE, mode=0o2775), None)])
    assert inspect_file(path, path.name).kind == "sdist"
