"""What the web resources need from the rest of spoold, as small protocols.

Written down here so a test can hand the resources fakes (:mod:`spoold.testing`) and the
daemon the real things:

* :class:`StorageReader` -- the serving half of :class:`spoold.storage.Storage`;
* :class:`Waiter` -- the worker's ``wait_for(item)``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO, Protocol

from twisted.internet.defer import Deferred

from spoold.spool.outcome import Outcome
from spoold.storage.base import Page, StoredObject

__all__ = ["StorageReader", "Waiter"]


class StorageReader(Protocol):
    """What serving needs from a storage backend (:class:`spoold.storage.Storage` has it)."""

    def read_page(self, key: str) -> Page | None: ...

    def local_path(self, key: str) -> Path | None: ...

    def presigned_url(self, key: str, expires: int = 300) -> str | None: ...

    def stat(self, key: str) -> StoredObject | None: ...

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]: ...

    def ping(self) -> None: ...


class Waiter(Protocol):
    """Something that learns what became of a spool item (the worker)."""

    def wait_for(self, item: str) -> Deferred[Outcome]: ...
