"""Index pages kept in memory for as long as they are unchanged on disk: inotify on the
folders of local storage (Linux).

Without it the page cache keeps a page ``page_cache`` seconds, and under reads spread over
a large index most requests find their page expired and pay a trip to the thread pool.
With it, a page read from a watched folder stays until the kernel reports that its file
changed, whichever process on this host changed it (a worker of this or another spool,
``spoold yank``/``remove``/``reindex``, a hand edit): the staleness bound is the time the
reactor takes to read the event, milliseconds.

The order is what makes it safe: a folder is watched (on the pool thread, before the
read) before any page read from it counts as lasting, so a change after that read is
reported; a change during the read is reported after the read started, and the cache
drops a read that started before an invalidation of its key
(:meth:`~spoold.http.pagecache.PageCache.put`). The events are read on the reactor thread
from the inotify descriptor, which never blocks; adding a watch is a path lookup, so it
happens on the pool thread, with the read.

Watches are only used where inotify sees every writer: a local filesystem. On NFS, SMB,
FUSE and the like other hosts' writes raise no event, so there (and where inotify is
missing, or the watch limit ``fs.inotify.max_user_watches`` is reached) pages expire after
``page_cache`` seconds as before. A queue overflow drops every page.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from twisted.internet.defer import Deferred

from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger
from zope.interface import implementer

from spoold.http.pagecache import PageCache
from spoold.storage.base import Page
from spoold.storage.keys import project_page_keys, root_page_keys

__all__ = ["PageWatch", "Warmer", "remote_filesystem"]

log = Logger()

IN_MODIFY = 0x2
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
#: Everything that can change what a folder's pages are.
MASK = (IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED
_EVENT = struct.Struct("iIII")
_PAGES = frozenset({b"index.html", b"index.v1.json"})

#: Filesystems where other hosts write without this host's kernel knowing.
_REMOTE = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "9p", "lustre",
                     "gpfs", "afs", "ocfs2", "gfs2", "beegfs", "davfs", "sshfs"})


def remote_filesystem(path: Path, mountinfo: str | None = None) -> bool:
    """Whether ``path`` is on a filesystem other hosts may write (or one we cannot tell)."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return True
    target = os.path.realpath(path)
    best, kind = "", ""
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, line.split(" - ", 1)[1].split()[0]
    return not kind or kind in _REMOTE or kind.startswith("fuse")


class _Inotify:
    """The three calls of inotify(7) spoold needs, through the C library."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        self._add = libc.inotify_add_watch
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.fd = fd

    def add(self, path: bytes) -> int:
        wd = int(self._add(self.fd, path, MASK))
        if wd < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))
        return wd

    def events(self) -> Iterator[tuple[int, int, bytes]]:
        """(watch, mask, name) of every event queued now; never blocks."""
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _cookie, size = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size
                yield wd, mask, data[offset:offset + size].rstrip(b"\0")
                offset += size


@implementer(IReadDescriptor)
class PageWatch:
    """Watches the folders pages are read from, and tells the cache what changed.

    :meth:`watch` runs on a pool thread; the events are read on the reactor thread
    (:meth:`doRead`, an ``IReadDescriptor``)."""

    def __init__(self, root: Path, cache: PageCache) -> None:
        self.root = os.fsencode(root)
        self.cache = cache
        self._inotify = _Inotify()
        #: watch descriptor (a small number the kernel hands out in turn) -> the key of
        #: a page in the folder it watches: the very string the cache holds the page
        #: under. A list, not a dict: 8 bytes a folder, no string of its own.
        self._folders: list[str | None] = []
        self._refused = False

    @classmethod
    def for_storage(cls, root: Path, cache: PageCache) -> PageWatch | None:
        """A watch of local storage at ``root``, or None where it would not see every
        writer (a remote filesystem) or inotify is missing."""
        if remote_filesystem(root):
            log.info("index pages of {root} expire after page_cache seconds: other hosts may "
                     "write there", root=str(root))
            return None
        try:
            return cls(root, cache)
        except (OSError, AttributeError) as exc:
            log.info("index pages expire after page_cache seconds: no inotify ({error})", error=exc)
            return None

    # -- on the pool thread ----------------------------------------------------------------

    def watch(self, key: str) -> bool:
        """Watch the folder of page ``key`` (before reading it); False if it cannot be."""
        parts = key.split("/")
        project = parts[1] if len(parts) == 3 else None
        folder = self.root + b"/simple" + (b"/" + project.encode() if project is not None else b"")
        try:
            wd = self._inotify.add(folder)
        except OSError as exc:
            if exc.errno not in (2, 20) and not self._refused:  # ENOENT, ENOTDIR: no such page
                self._refused = True
                log.warn("cannot watch {folder} ({error}); its pages expire after page_cache "
                         "seconds (raise fs.inotify.max_user_watches?)", folder=os.fsdecode(folder),
                         error=exc.strerror)
            return False
        folders = self._folders
        if wd >= len(folders):
            folders.extend([None] * (wd + 1 - len(folders)))
        folders[wd] = key
        return True

    # -- on the reactor thread ---------------------------------------------------------------

    def fileno(self) -> int:
        return self._inotify.fd

    def logPrefix(self) -> str:
        return "PageWatch"

    def doRead(self) -> None:
        for wd, mask, name in self._inotify.events():
            self._event(wd, mask, name)

    def _event(self, wd: int, mask: int, name: bytes) -> None:
        if mask & IN_Q_OVERFLOW:
            log.info("inotify queue overflow: every index page is read again")
            self.cache.forget_all()
            return
        key = self._folders[wd] if 0 <= wd < len(self._folders) else None
        if key is None:
            # A folder watched this instant, its mapping not yet stored: reads under way
            # may be of it, so none of them is remembered.
            self.cache.forget_reads()
            return
        parts = key.split("/")
        project = parts[1] if len(parts) == 3 else None
        if mask & _GONE:
            if mask & IN_IGNORED:
                self._folders[wd] = None
            self.cache.changed(root_page_keys() if project is None else project_page_keys(project))
        elif project is None and name in _PAGES:
            self.cache.changed(root_page_keys())
        elif project is None and mask & IN_ISDIR:  # a project's folder came, went or moved
            self.cache.changed(project_page_keys(os.fsdecode(name)))
        elif name in _PAGES:
            self.cache.changed([f"simple/{project}/{name.decode()}"])

    def connectionLost(self, reason: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._inotify.fd >= 0:
            os.close(self._inotify.fd)
            self._inotify.fd = -1


class _Pages(Protocol):
    root: Path

    def read_page(self, key: str) -> Page | None: ...


class Warmer:
    """Reads the pages of every project into the cache once, at start, so that a server
    answers from memory from its first minute on, not after a cold start of misses.

    Only with a :class:`PageWatch` (pages read then stay); in chunks, each one trip to
    the pool (watch the folder, read the pages) and its pages remembered on the reactor;
    it stops where the cache's bound would start pushing pages out. The root index is
    left to the first request (it is large and few ask for it)."""

    def __init__(self, watch: PageWatch, storage: _Pages, cache: PageCache, run: Any,
                 chunk: int = 256) -> None:
        self.watch = watch
        self.storage = storage
        self.cache = cache
        self.run = run
        self.chunk = chunk
        #: Fires with the number of pages read once warming is over.
        self.done: Deferred[int] = Deferred()
        self._read = 0
        self._projects: Iterator[str] = iter(())

    def start(self) -> None:
        self.cache.warming = True
        self.run(self._list).addCallbacks(self._listed, self._failed)

    def _list(self) -> list[str]:
        with os.scandir(Path(self.storage.root) / "simple") as entries:
            return sorted(e.name for e in entries if not e.name.startswith(".") and e.is_dir())

    def _listed(self, projects: list[str]) -> None:
        self._projects = iter(projects)
        self._next()

    def _next(self) -> None:
        chunk = list(itertools.islice(self._projects, self.chunk))
        if not chunk or self.cache.held_bytes > self.cache.max_bytes * 0.9:
            self._projects = iter(())
            self.cache.warming = False
            log.info("{pages} index pages read into memory", pages=self._read)
            self.done.callback(self._read)
            return
        ticket = self.cache.ticket()
        self.run(self._read_chunk, chunk).addCallback(self._keep, ticket).addErrback(self._failed)

    def _read_chunk(self, projects: list[str]) -> list[tuple[str, Page | None, bool]]:
        out = []
        for project in projects:
            for key in project_page_keys(project):
                lasting = self.watch.watch(key)
                out.append((key, self.storage.read_page(key), lasting))
        return out

    def _keep(self, pages: list[tuple[str, Page | None, bool]], ticket: tuple[float, int]) -> None:
        for key, page, lasting in pages:
            if page is not None and lasting:
                self.cache.put(key, page, ticket, lasting=True)
                self._read += 1
        self._next()

    def _failed(self, failure: Any) -> None:
        log.failure("reading the index pages into memory stopped", failure)
        self.cache.warming = False
        self.done.callback(self._read)
