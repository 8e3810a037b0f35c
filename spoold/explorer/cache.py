"""What the explorer keeps in memory: rendered page parts and stored documents, per project.

Like the index page cache (:mod:`spoold.http.pagecache`): entries live ``ttl`` seconds
from the moment their read *started*, a read that began before an invalidation of its
project is not remembered, and the total size is bounded (least recently used out).
:class:`LinkedPageCache` is the index page cache that also invalidates this one, so the
publishes the worker announces (``invalidate_file``) reach the explorer's pages too.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from spoold.http.pagecache import DEFAULT_MAX_BYTES, PageCache

__all__ = ["ExplorerCache", "LinkedPageCache"]


class ExplorerCache:
    """Reactor-thread only. Keys are ``(project, anything)``; ``project`` None: not about
    one project (the home page's data), dropped by every invalidation."""

    def __init__(self, ttl: float, clock: Callable[[], float], max_bytes: int = 128 << 20) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str | None, Any], tuple[Any, float, int]] = OrderedDict()
        self._bytes = 0
        self._epoch = 0
        self._invalidated: dict[str | None, int] = {}
        #: Called with the project of every invalidation (the search index goes stale).
        self.listeners: list[Callable[[str | None], object]] = []

    def ticket(self) -> tuple[float, int]:
        return self.clock(), self._epoch

    def get(self, key: tuple[str | None, Any]) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires, _ = entry
        if self.clock() >= expires:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    def peek(self, key: tuple[str | None, Any]) -> Any:
        """The value even if it expired (None if there is none): to revalidate it."""
        entry = self._entries.get(key)
        return entry[0] if entry is not None else None

    def put(self, key: tuple[str | None, Any], value: Any, size: int, ticket: tuple[float, int]) -> None:
        read_at, epoch = ticket
        if self.ttl <= 0 or size > self.max_bytes // 4:
            return
        if max(self._invalidated.get(key[0], -1), self._invalidated.get("*", -1)) >= epoch:
            return
        self._drop(key)
        self._entries[key] = (value, read_at + self.ttl, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def invalidate(self, project: str | None) -> None:
        """Forget what is about ``project`` (None: everything) and what is about none."""
        for key in [k for k in self._entries if project is None or k[0] in (project, None)]:
            self._drop(key)
        self._invalidated[project if project is not None else "*"] = self._epoch
        self._invalidated[None] = self._epoch
        self._epoch += 1
        for listener in self.listeners:
            listener(project)

    def _drop(self, key: tuple[str | None, Any]) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[2]


class LinkedPageCache(PageCache):
    """The index page cache, passing every invalidation on to the explorer's cache."""

    def __init__(self, ttl: float, clock: Callable[[], float], linked: ExplorerCache,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        super().__init__(ttl, clock, max_bytes)
        self.linked = linked

    def invalidate(self, project: str | None) -> None:
        super().invalidate(project)
        self.linked.invalidate(project)
