"""Opening files that other people can put in place: never block, never follow a link.

The spool is shared with everyone in its group (scp, rsync users), so whatever spoold opens
there -- an ``incoming/`` file, its ``.sha256`` sidecar, a ``meta.json``, a payload -- may
have been swapped for a FIFO (``open`` would block forever, and with it housekeeping and
SIGTERM), a device, or a symbolic link to a file spoold may read but the user may not.
:func:`open_regular` opens with ``O_NOFOLLOW | O_NONBLOCK`` and checks with ``fstat`` on
the open descriptor, so there is no window between the check and the use.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path
from typing import BinaryIO

__all__ = ["NotRegularFile", "open_regular"]


class NotRegularFile(OSError):
    """The path names a link, FIFO, device, socket or directory, not a regular file."""


def open_regular(path: str | os.PathLike[str], *, buffering: int = -1) -> BinaryIO:
    """Open a regular file for reading, or raise :class:`NotRegularFile` (an OSError).

    ``buffering`` as for :func:`open` (0: unbuffered raw file).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegularFile(errno.ELOOP, "a symbolic link, not a file", os.fspath(path)) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file", os.fspath(path))
        os.set_blocking(fd, True)  # reads of a regular file never block on O_NONBLOCK anyway
        raw = io.FileIO(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise
    if buffering == 0:
        return raw  # type: ignore[return-value]
    return io.BufferedReader(raw, buffer_size=buffering if buffering > 0 else io.DEFAULT_BUFFER_SIZE)  # type: ignore[return-value]


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """At most ``limit`` + 1 bytes of a regular file (callers refuse anything longer)."""
    with open_regular(Path(path), buffering=0) as f:
        return f.read(limit + 1)
