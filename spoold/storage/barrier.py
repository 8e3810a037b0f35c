"""Batched durability for local storage: derived writes now, one shared barrier later.

A publish writes a dozen files; fsyncing each (and its folder) costs a journal commit
apiece, which is what limits bulk ingest. Inside :meth:`Batching.scope` a
:class:`~spoold.storage.local.LocalStorage` writes what can be derived again -- pages,
the explorer's documents, file records -- without fsync and skips the folder fsyncs of
every write. Where a torn file could not be told from a real one, no name ever points
at unsynced bytes: distributions and their ``.metadata`` are staged (bytes aside, one
shared barrier, then their names: :mod:`spoold.storage.local_staging`), and
compare-and-swap documents and events fsync their bytes before they get their name, as
always. Leaving the outermost scope is the barrier: one ``syncfs(2)`` of the storage's
filesystem, shared like a group commit by every thread that reaches its barrier while
one is running (a caller waits for a ``syncfs`` that *started* after it arrived, so
everything it wrote before is covered).

What remains guaranteed (see :func:`spoold.worker.processing.process`): an item leaves
``cur/`` only after its barrier, so whatever a finished item wrote survives a crash.
Writes of an item still in ``cur/`` when the machine stopped may be torn or missing; the
item is reaped (its name then counts an attempt) and processed again, and that second
pass rewrites every derived document of its generation that differs from what it
renders (:meth:`~spoold.storage.local.LocalStorage.put_page` compares an existing slot)
and re-lists its project in the root index.

Where ``syncfs`` is missing (not Linux), scopes change nothing: every write is durable
on its own, as outside a scope.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["Batching", "syncfs_available"]


def _load_syncfs() -> object | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError, TypeError):
        return None


_SYNCFS = _load_syncfs()


def syncfs_available() -> bool:
    return _SYNCFS is not None


class Batching:
    """Per-thread batch scopes of one storage, and their shared ``syncfs`` barrier."""

    def __init__(self, folder: Path, *, enabled: bool = True) -> None:
        self._folder = folder
        self.enabled = enabled and _SYNCFS is not None
        self._local = threading.local()
        self._cond = threading.Condition()
        self._fd: int | None = None
        self._next = 1  # the sequence number of the next syncfs to start
        self._done = 0  # the last one that finished
        #: The first error a syncfs reported. Sticky: write-back may have dropped pages of
        #: any thread's writes, so no later barrier can vouch for them (until a restart).
        self._error: OSError | None = None
        self._running = False
        #: syncfs calls made (for benchmarks and tests).
        self.barriers = 0

    def deferring(self) -> bool:
        """True inside a scope of this thread: derived writes skip their fsyncs."""
        return getattr(self._local, "depth", 0) > 0

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Defer this thread's fsyncs until the outermost scope ends, then sync (also
        when the body raised: the writes it made are made durable before anyone moves
        on). Nested scopes only join the outer one."""
        if not self.enabled:
            yield
            return
        local = self._local
        local.depth = getattr(local, "depth", 0) + 1
        try:
            yield
        finally:
            local.depth -= 1
            if local.depth == 0:
                self.sync()

    def sync(self) -> None:
        """Return once a ``syncfs`` that started after this call has finished; raises
        the OSError a barrier of this storage reported, now or earlier."""
        assert _SYNCFS is not None
        with self._cond:
            if self._fd is None:  # kept open from the first barrier on
                self._fd = os.open(self._folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            want = self._next
            while self._done < want:
                if self._error is not None:
                    raise self._error
                if self._running:
                    self._cond.wait()
                    continue
                seq, self._next, self._running = self._next, self._next + 1, True
                self._cond.release()
                error: OSError | None = None
                try:
                    error = self._syncfs()
                finally:
                    self._cond.acquire()
                    self._running = False
                    if error is None:
                        self._done = seq
                    else:
                        self._error = error
                    self._cond.notify_all()
            if self._error is not None:
                raise self._error

    def _syncfs(self) -> OSError | None:
        """One syncfs through a descriptor kept open, so that a write-back error is
        reported to the next call after it (errors are counted per open file)."""
        assert self._fd is not None
        self.barriers += 1
        if _SYNCFS(self._fd) != 0:  # type: ignore[operator]
            err = ctypes.get_errno()
            return OSError(err, f"syncfs of {self._folder} failed ({os.strerror(err)}): writes "
                           "since may be lost; fix the disk, then restart to publish again")
        return None
