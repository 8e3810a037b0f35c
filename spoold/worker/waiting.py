"""Uploads waiting for their items: answered at once when this process handled the item,
or by a cheap stat-poll when another process did (a part of :class:`~spoold.worker.
service.Worker`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from spoold.spool.names import ItemName
from spoold.spool.outcome import Outcome
from spoold.spool.queue import Spool
from spoold.threads import Run

__all__ = ["Waiting"]

log = Logger(namespace="spoold.worker.service")


class Waiting:
    """The waiters of one worker; its state is set up by :meth:`_init_waiting`."""

    spool: Spool
    run: Run
    #: Observers of every file published through this spool, by this process or another
    #: one (its filename; called on the reactor): page caches drop the project's pages.
    on_published: list[Callable[[str], None]]

    def _init_waiting(self) -> None:
        self._waiters: dict[str, tuple[ItemName, list[Deferred]]] = {}
        self._polling = False
        self.on_published = []

    def hint(self, folder: str = "new", entry: str | None = None) -> None:
        raise NotImplementedError

    def wait_for(self, item: str) -> Deferred:
        """A Deferred that fires with the :class:`Outcome` of a delivered item, whichever
        process handles it. Cancel it to stop waiting (the item is still processed)."""
        name = ItemName.parse(item)
        if name.uid is None:
            raise ValueError(f"{item!r} is not a spool item name")

        def cancel(d: Deferred) -> None:
            entry = self._waiters.get(name.uid)
            if entry is not None and d in entry[1]:
                entry[1].remove(d)
                if not entry[1]:
                    del self._waiters[name.uid]

        d: Deferred = Deferred(cancel)
        self._waiters.setdefault(name.uid, (name, []))[1].append(d)
        self.hint("new")
        # It may be finished already (by another thread or process, before we asked).
        self._poll_waiters()
        return d

    def _published(self, filename: str) -> None:
        for observer in self.on_published:
            observer(filename)

    def _resolve(self, uid: str | None, outcome: Outcome) -> None:
        entry = self._waiters.pop(uid, None) if uid is not None else None
        if entry is not None:
            for d in entry[1]:
                d.callback(outcome)

    def _poll_waiters(self) -> Deferred | None:
        """Look for waited-for items that another process finished (two stats each)."""
        if not self._waiters or self._polling:
            return None
        names = [name for name, _ in self._waiters.values()]
        self._polling = True

        def look() -> list[tuple[ItemName, Outcome]]:
            return [(n, found) for n in names if (found := self.spool.outcome_of(n)) is not None]

        def found(results: list[tuple[ItemName, Outcome]]) -> None:
            self._polling = False
            for name, outcome in results:
                if outcome.ok:
                    self._published(name.filename)  # before the uploader hears of it
                self._resolve(name.uid, outcome)

        def failed(failure: Any) -> None:
            self._polling = False
            log.failure("cannot look for outcomes", failure)

        return self.run(look).addCallbacks(found, failed)
