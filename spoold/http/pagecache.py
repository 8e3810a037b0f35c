"""An in-memory cache of index pages, so hot reads skip the thread pool.

Serving a page from storage costs a trip to a pool thread (the read is blocking I/O); for
the few hundred bytes of a project page that trip is most of the cost of a request. A
page is kept in one of two ways:

* **lasting**, when something watches the folder it was read from (local storage on a
  local filesystem: :mod:`spoold.web.pagewatch`, inotify): it stays until that watch
  reports a change of the file (or loses track: a queue overflow drops everything), so a
  change by any process on this host shows within milliseconds, however long ago the page
  was read;
* **for** ``ttl`` **seconds** after its read started, otherwise (S3, NFS, no inotify).

Either way a page is dropped at once when a file is published into its project by any
process sharing this spool (the worker reports its own publishes, the publishes it waited
for, and every new entry of ``done/`` its watcher sees). What no spool event and no watch
announces (a publish by another host into the same bucket, ``spoold yank``/``remove``/
``reindex`` on S3) shows within ``ttl``.

Pages are held compressed (raw deflate, primed with the first page of the same kind kept,
since index pages of one kind share most of their text): a 1 KB project page costs some
100 bytes plus the entry, so the pages of 50,000 projects fit in a few tens of MB. A hit
inflates it again (about a microsecond for a project page); pages larger than
:data:`COMPRESS_BELOW` (the root index of a big store) are kept as they are.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable

from spoold.errors import InvalidFilename
from spoold.inspection.filenames import parse_filename
from spoold.storage import Page
from spoold.storage.keys import project_page_keys, root_page_keys

__all__ = ["COMPRESS_BELOW", "DEFAULT_MAX_BYTES", "ENTRY_OVERHEAD", "PageCache"]

#: Pages at least this large are kept uncompressed (inflating them on every hit would
#: cost more than it saves).
COMPRESS_BELOW = 32 * 1024
#: Bytes an entry costs besides its data (key, tuple, dict slot), counted in the bound.
ENTRY_OVERHEAD = 200
#: The default bound: the pages of some 100,000 index pages of a few files each, or fewer
#: larger ones, with ``spoold serve`` still under 100 MB in all.
DEFAULT_MAX_BYTES = 32 << 20
_HEX_ETAG = re.compile(rb'^"[0-9a-f]{32}"$')


class PageCache:
    """Bounded by bytes held (least recently used first out); reactor-thread only."""

    def __init__(self, ttl: float, clock: Callable[[], float], max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_bytes = max_bytes
        #: key -> its entry: flag byte + ETag length + ETag + body (deflated or not),
        #: alone when lasting, else with its expiry time. A plain dict in least recently
        #: used order (a hit moves its key to the end): the smallest container there is.
        self._pages: dict[str, bytes | tuple[bytes, float]] = {}
        self._bytes = 0
        #: Bumped by every invalidation; a read that started before the latest
        #: invalidation of its key may hold an old page and is not remembered.
        self._epoch = 0
        self._invalidated: dict[str, int] = {}
        #: Reads that started before this epoch are not remembered at all (a watch lost
        #: track of what changed).
        self._floor = 0
        #: The priming dictionary of each kind of page (by the key's last part).
        self._dictionaries: dict[str, bytes] = {}
        #: Pages are being read in at start (:class:`spoold.web.pagewatch.Warmer`).
        self.warming = False
        #: Answered from memory, and not (counted by :meth:`get`).
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._pages)

    @property
    def held_bytes(self) -> int:
        """What the entries cost, as counted against ``max_bytes``."""
        return self._bytes

    def ticket(self) -> tuple[float, int]:
        """Take before reading a page; hand back to :meth:`put` with the page."""
        return self.clock(), self._epoch

    def get(self, key: str, *, count_miss: bool = True) -> Page | None:
        """The page, or None (``count_miss``: count that as a miss; a caller that asks
        again on a slower path counts it once)."""
        pages = self._pages
        entry = pages.pop(key, None)
        if entry is None:
            self.misses += count_miss
            return None
        pages[key] = entry  # now the most recently used
        if type(entry) is tuple:
            blob, expires = entry
            if self.clock() >= expires:
                self._drop(key)
                self.misses += count_miss
                return None
        else:
            blob = entry
        self.hits += 1
        return self._unpack(key, blob)

    def put(self, key: str, page: Page, ticket: tuple[float, int], *, lasting: bool = False) -> None:
        """Remember a page read under ``ticket`` (see :meth:`ticket`): it expires ``ttl``
        after the read *started* (never, if ``lasting``: a watch on its folder was in
        place before the read), and is dropped if its key was invalidated meanwhile."""
        read_at, epoch = ticket
        if self.ttl <= 0 and not lasting:
            return
        if epoch < self._floor or self._invalidated.get(key, -1) >= epoch or len(page.etag) > 255:
            return
        blob = self._pack(key, page)
        cost = len(blob) + ENTRY_OVERHEAD
        if cost > self.max_bytes // 4:
            return
        self._drop(key)
        self._pages[key] = blob if lasting else (blob, read_at + self.ttl)
        self._bytes += cost
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._pages)))

    def invalidate(self, project: str | None) -> None:
        """Forget the pages a publish into ``project`` changes (and the root index)."""
        keys = [*root_page_keys()]
        if project is not None:
            keys += project_page_keys(project)
        self.changed(keys)

    def changed(self, keys: Iterable[str]) -> None:
        """Forget these pages: their files changed (a watch saw it)."""
        for key in keys:
            self._drop(key)
            self._invalidated[key] = self._epoch
        self._epoch += 1
        if len(self._invalidated) > 10_000:  # only reads under way need it: keep it small
            self.forget_reads()

    def forget_reads(self) -> None:
        """Remember none of the reads under way (a watch cannot tell what they read)."""
        self._epoch += 1
        self._floor = self._epoch
        self._invalidated.clear()

    def forget_all(self) -> None:
        """Forget every page, and every read under way (a watch lost track of changes)."""
        self._pages.clear()
        self._bytes = 0
        self.forget_reads()

    def invalidate_file(self, filename: str) -> None:
        """:meth:`invalidate` the project a published distribution filename belongs to."""
        try:
            project = parse_filename(filename).project
        except InvalidFilename:
            project = None
        self.invalidate(project)

    # -- the compact form ------------------------------------------------------------------

    def _pack(self, key: str, page: Page) -> bytes:
        etag = page.etag.encode("ascii")
        if _HEX_ETAG.match(etag):  # what local storage makes: 16 bytes instead of 34
            head = b"\x00" + bytes.fromhex(etag[1:-1].decode("ascii"))
        else:
            head = bytes((len(etag),)) + etag
        data = page.data
        if len(data) >= COMPRESS_BELOW:
            return b"r" + head + data
        kind = key.rpartition("/")[2]
        zdict = self._dictionaries.setdefault(kind, data)
        # memLevel 1: a small hash table, plenty for a page, and ten times cheaper to set up
        packer = zlib.compressobj(6, zlib.DEFLATED, -15, 1, zdict=zdict)
        return b"z" + head + packer.compress(data) + packer.flush()

    def _unpack(self, key: str, blob: bytes) -> Page:
        if blob[1] == 0:
            end = 18
            etag = '"' + blob[2:18].hex() + '"'
        else:
            end = 2 + blob[1]
            etag = blob[2:end].decode("ascii")
        if blob[0] == 0x72:  # b"r"
            return Page(blob[end:], etag)
        zdict = self._dictionaries[key.rpartition("/")[2]]
        return Page(zlib.decompressobj(-15, zdict=zdict).decompress(blob[end:]), etag)

    def _drop(self, key: str) -> None:
        entry = self._pages.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[0] if type(entry) is tuple else entry) + ENTRY_OVERHEAD
