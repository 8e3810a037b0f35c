"""A :class:`~spoold.web.protocols.Waiter` whose outcomes the test decides.

The upload endpoint waits for the worker to say what became of the item it delivered;
:class:`FakeWaiter` stands in for the worker: every ``wait_for`` returns a Deferred the
test fires with :meth:`FakeWaiter.resolve` (or at once, with ``auto``), and cancelled
waits are recorded (an uploader that left, a wait that timed out).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from twisted.internet.defer import Deferred

from spoold.spool.outcome import Outcome, Result

__all__ = ["FakeWaiter"]


class FakeWaiter:
    """``wait_for`` hands out Deferreds the test fires; ``auto`` answers every wait at once."""

    def __init__(self, auto: Outcome | None = None) -> None:
        #: Answer every wait with this outcome (its ``item`` replaced by the item waited for).
        self.auto = auto
        #: The waits not yet resolved, by item name.
        self.waiting: dict[str, Deferred[Outcome]] = {}
        #: Items whose wait was cancelled, in order.
        self.cancelled: list[str] = []

    def wait_for(self, item: str) -> Deferred[Outcome]:
        def cancel(d: Deferred[Outcome]) -> None:
            self.waiting.pop(item, None)
            self.cancelled.append(item)

        d: Deferred[Outcome] = Deferred(cancel)
        if self.auto is not None:
            d.callback(replace(self.auto, item=item))
        else:
            self.waiting[item] = d
        return d

    def resolve(self, item: str, result: Result = Result.PUBLISHED, **fields: Any) -> Outcome:
        """Answer the wait for ``item`` with an :class:`Outcome` of ``result`` (and
        ``fields``: ``code``, ``message``, ``http_status``...); returns that outcome.

        The outcome's filename is the item's (spool item names end in ``,<filename>``).
        """
        try:
            waiting = self.waiting.pop(item)
        except KeyError:
            raise LookupError(
                f"nobody waits for {item!r}; waiting: {sorted(self.waiting) or 'none'}"
            ) from None
        outcome = Outcome(item, item.split(",", 1)[-1], result, **fields)
        waiting.callback(outcome)
        return outcome
