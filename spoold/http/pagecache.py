"""An in-memory cache of index pages, so hot reads skip the thread pool.

Serving a page from storage costs a trip to a pool thread (the read is blocking I/O); for
the few hundred bytes of a project page that trip is most of the cost of a request. Pages
are kept for ``ttl`` seconds after they were read, and dropped at once when a file is
published into their project by any process sharing this spool (the worker reports its
own publishes, the publishes it waited for, and every new entry of ``done/`` its watcher
sees). What no spool event announces (a publish by another host into the same bucket,
``spoold yank``/``remove``/``reindex``, an inotify queue overflow) shows within ``ttl``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from spoold.errors import InvalidFilename
from spoold.inspection.filenames import parse_filename
from spoold.storage import Page
from spoold.storage.keys import project_page_keys, root_page_keys


class PageCache:
    """Bounded by total bytes (least recently used first out); reactor-thread only."""

    def __init__(self, ttl: float, clock: Callable[[], float], max_bytes: int = 64 << 20) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_bytes = max_bytes
        self._pages: OrderedDict[str, tuple[Page, float]] = OrderedDict()
        self._bytes = 0
        #: Bumped by every invalidation; a read that started before the latest
        #: invalidation of its key may hold an old page and is not remembered.
        self._epoch = 0
        self._invalidated: dict[str, int] = {}

    def ticket(self) -> tuple[float, int]:
        """Take before reading a page; hand back to :meth:`put` with the page."""
        return self.clock(), self._epoch

    def get(self, key: str) -> Page | None:
        entry = self._pages.get(key)
        if entry is None:
            return None
        page, expires = entry
        if self.clock() >= expires:
            self._drop(key)
            return None
        self._pages.move_to_end(key)
        return page

    def put(self, key: str, page: Page, ticket: tuple[float, int]) -> None:
        """Remember a page read under ``ticket`` (see :meth:`ticket`): it expires ``ttl``
        after the read *started*, and is dropped if its key was invalidated meanwhile."""
        read_at, epoch = ticket
        if self.ttl <= 0 or len(page.data) > self.max_bytes // 4:
            return
        if self._invalidated.get(key, -1) >= epoch:
            return
        self._drop(key)
        self._pages[key] = (page, read_at + self.ttl)
        self._bytes += len(page.data)
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._pages)))

    def invalidate(self, project: str | None) -> None:
        """Forget the pages a publish into ``project`` changes (and the root index)."""
        keys = [*root_page_keys()]
        if project is not None:
            keys += project_page_keys(project)
        for key in keys:
            self._drop(key)
            self._invalidated[key] = self._epoch
        self._epoch += 1

    def invalidate_file(self, filename: str) -> None:
        """:meth:`invalidate` the project a published distribution filename belongs to."""
        try:
            project = parse_filename(filename).project
        except InvalidFilename:
            project = None
        self.invalidate(project)

    def _drop(self, key: str) -> None:
        entry = self._pages.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[0].data)
