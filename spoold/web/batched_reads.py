"""Page reads gathered into trips to the thread pool (see :class:`BatchedReads`)."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from spoold.storage.base import Page
from spoold.threads import Run

__all__ = ["BatchedReads"]


class BatchedReads:
    """Page reads gathered into trips to the thread pool: one trip per moment, not one
    per request.

    A trip to a pool thread and back (a queue, a lock, a wake-up of the reactor) costs
    more than reading a small page from a warm local disk, and on a busy server requests
    arrive many per reactor turn. So at most ``in_flight`` trips are under way; a read
    asked for meanwhile waits for the next trip, which takes every read waiting. Under
    load the trips grow and their cost is shared; an idle server still reads at once.
    Local storage wants few trips (the reads are fast, the hops are not); S3 wants many
    (each read is a round trip of its own). With ``later`` (the reactor's ``callLater``),
    while busy (the last trip carried more than one read) the next trip waits for the end
    of the reactor turn, so that it also takes the requests the turn reads from every
    connection that is ready; a lone read never waits.
    """

    def __init__(self, read_page: Callable[[str], Page | None], run: Run, in_flight: int = 2,
                 later: Callable[..., object] | None = None) -> None:
        self.read_page = read_page
        self.run = run
        self.in_flight = max(1, in_flight)
        self.later = later
        self._waiting: list[tuple[str, Deferred[Page | None]]] = []
        self._trips = 0
        self._scheduled = False

    def read(self, key: str) -> Deferred[Page | None]:
        d: Deferred[Page | None] = Deferred()
        self._waiting.append((key, d))
        if self._trips < self.in_flight and not self._scheduled:
            self._trip()
        return d

    def _scheduled_trip(self) -> None:
        self._scheduled = False
        if self._waiting and self._trips < self.in_flight:
            self._trip()

    def _trip(self) -> None:
        batch, self._waiting = self._waiting, []
        self._trips += 1
        self.run(_read_all, self.read_page, [key for key, _ in batch]).addBoth(self._answer, batch)

    def _answer(self, results: list[Page | None | BaseException] | Failure,
                batch: list[tuple[str, Deferred[Page | None]]]) -> None:
        self._trips -= 1
        if self.later is not None and len(batch) > 1:  # busy: gather this turn's reads
            if not self._scheduled:
                self._scheduled = True
                self.later(0, self._scheduled_trip)
        elif self._waiting and self._trips < self.in_flight:
            self._trip()
        for i, (_key, d) in enumerate(batch):
            result = results if isinstance(results, Failure) else results[i]
            if isinstance(result, BaseException):
                d.errback(Failure(result))
            elif isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(result)


def _read_all(read_page: Callable[[str], Page | None], keys: list[str]) -> list[Page | None | BaseException]:
    """On a pool thread: every key's page, or the exception reading it raised."""
    out: list[Page | None | BaseException] = []
    for key in keys:
        try:
            out.append(read_page(key))
        except Exception as exc:  # answered to that request alone
            out.append(exc)
    return out
