"""Writing one item into the spool: ``tmp/`` first, then one rename into ``new/``.

An item appears in ``new/`` whole or not at all, and only once it would survive a crash:
its bytes (and ``meta.json``) are fsynced, the rename is done, and ``new/`` is fsynced.
A delivery that fails or is abandoned leaves nothing in ``new/``; what it left in
``tmp/`` is removed at once, or swept by housekeeping if the process died.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import IO

from spoold.durable import fsync_dir
from spoold.spool.folders import META, PAYLOAD
from spoold.spool.names import ItemName, new_uid
from spoold.spool.records import ItemMeta

__all__ = ["Delivery"]

_CHUNK = 1 << 20


class Delivery:
    """An item being written in ``tmp/``; see :meth:`spoold.spool.Spool.delivery`.

    With ``meta`` the item is a directory (``data`` + ``meta.json``); without, a plain
    file -- the shape rsync and mv produce too.
    """

    def __init__(self, tmp: Path, new: Path, filename: str, meta: ItemMeta | None) -> None:
        self.name = ItemName(filename).with_uid(new_uid())
        self.item = str(self.name)
        self._new = new
        self._tmp = tmp / self.item
        self._meta = meta
        if meta is None:
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        else:
            os.mkdir(self._tmp, 0o755)
            fd = os.open(self._tmp / PAYLOAD, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self._file: IO[bytes] = os.fdopen(fd, "wb", buffering=_CHUNK)
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.size += len(data)
        return self._file.write(data)

    def commit(self) -> None:
        """fsync the bytes, rename into ``new/``, fsync ``new/``: after this, it survives a crash."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if self._meta is not None:
            meta = json.dumps(self._meta.to_json(), ensure_ascii=True).encode("ascii")
            fd = os.open(self._tmp / META, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, meta)
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_dir(self._tmp)
        os.rename(self._tmp, self._new / self.item)
        fsync_dir(self._new)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            if self._tmp.is_dir():
                shutil.rmtree(self._tmp)
            else:
                os.unlink(self._tmp)
