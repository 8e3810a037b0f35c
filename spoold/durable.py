"""Durable writes: the one place that knows how a file survives a crash.

A file is durable once its bytes are fsynced *and* the directory entry that names it is
fsynced; a rename is only atomic, not durable, until its directory is fsynced too. Every
write-then-rename in spoold (spool deliveries and reasons, local storage, the htpasswd
file, token and role records) goes through these helpers, so none of them forgets a step.

Temporary files are named ``.NAME.<random>.tmp``: a leading dot, so that no listing,
watcher or static web server takes them for the real thing, and the suffix
:data:`TEMP_SUFFIX`, so that a sweep can find the ones a killed writer left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "TEMP_SUFFIX",
    "fsync_dir",
    "is_temporary",
    "read_only",
    "temp_beside",
    "write_atomic",
    "write_temp",
]

TEMP_SUFFIX = ".tmp"
_CHUNK = 1 << 20


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """fsync a directory, making the entries created or renamed in it durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_only(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is on a filesystem mounted read-only (say so, not "permission")."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def temp_beside(path: Path) -> Path:
    """A fresh temporary name in ``path``'s directory (same filesystem: renames work)."""
    return path.parent / f".{path.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}"


def is_temporary(name: str) -> bool:
    """Whether a directory entry is one of :func:`temp_beside`'s names."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def write_temp(
    path: Path,
    source: bytes | Path | BinaryIO,
    *,
    mode: int | None = None,
    fsync: bool = True,
    tmp: Path | None = None,
) -> Path:
    """Write ``source`` to a new temporary file (beside ``path``, or at ``tmp``), fsynced.

    ``mode`` None: 0644 less the umask; a number: exactly that (``fchmod``, which the
    umask does not touch). The caller puts the file in place (``os.replace`` to
    overwrite, ``os.link`` to create exclusively) and must unlink it if that fails; on
    an error here it is removed.
    """
    tmp = tmp or temp_beside(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644 if mode is None else 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            if mode is not None:
                os.fchmod(out.fileno(), mode)
            if isinstance(source, bytes):
                out.write(source)
            elif isinstance(source, Path):
                with open(source, "rb") as src:
                    shutil.copyfileobj(src, out, _CHUNK)
            else:
                shutil.copyfileobj(source, out, _CHUNK)
            out.flush()
            if fsync:
                os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def write_atomic(
    path: Path,
    source: bytes | Path | BinaryIO,
    *,
    mode: int | None = None,
    fsync: bool = True,
    tmp: Path | None = None,
) -> None:
    """Replace ``path`` with ``source``: readers see the old file or the new one, never
    a part, and after return the new one survives a crash (unless ``fsync`` is False).

    ``tmp`` names the temporary file (it must be on ``path``'s filesystem); by default a
    hidden name beside ``path``.
    """
    staged = write_temp(path, source, mode=mode, fsync=fsync, tmp=tmp)
    try:
        os.replace(staged, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staged)
        raise
    if fsync:
        fsync_dir(path.parent)
