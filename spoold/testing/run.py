"""Stand-ins for the thread pool: a :data:`~spoold.threads.Run` that calls at once, and one
that waits for the test to say go.

Every adapter in spoold takes a ``run`` callable for its blocking work (see
:mod:`spoold.threads`). In tests:

* :func:`run_now` calls ``f`` synchronously and hands back a fired Deferred, so a whole
  request runs inside one ``dataReceived``;
* :class:`ManualRun` queues every call until :meth:`~ManualRun.step` runs the oldest, so a
  test can prove that nothing blocking happens on the request's path (the queue holds
  it) and act in between (disconnect the client while a call is "in a thread").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred

__all__ = ["ManualRun", "QueuedCall", "run_now"]


def run_now(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
    """Call ``f`` now; its result (or exception) is in the returned Deferred."""
    return maybeDeferred(f, *args, **kwargs)


@dataclass(frozen=True, slots=True)
class QueuedCall:
    """One call waiting in a :class:`ManualRun`; ``result`` fires when it is run."""

    f: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    result: Deferred[Any] = field(default_factory=Deferred)

    @property
    def name(self) -> str:
        """The callable's ``__name__`` (its ``repr`` if it has none)."""
        return getattr(self.f, "__name__", repr(self.f))


class ManualRun:
    """A :data:`~spoold.threads.Run` that queues calls until the test runs them, in order."""

    def __init__(self) -> None:
        #: The calls not yet run, oldest first.
        self.queue: list[QueuedCall] = []

    def __call__(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        call = QueuedCall(f, args, kwargs)
        self.queue.append(call)
        return call.result

    def __len__(self) -> int:
        return len(self.queue)

    def names(self) -> list[str]:
        """The names of the queued callables, oldest first (``["verify", "_receive"]``)."""
        return [call.name for call in self.queue]

    def step(self) -> QueuedCall:
        """Run the oldest queued call (whatever it queues in turn waits for the next step)
        and return it; its ``result`` has fired with the outcome."""
        if not self.queue:
            raise LookupError("ManualRun.step: no call is queued (nothing was run through it, or all ran)")
        call = self.queue.pop(0)
        maybeDeferred(call.f, *call.args, **call.kwargs).chainDeferred(call.result)
        return call

    def flush(self) -> int:
        """Run queued calls, including the ones they queue, until none is left; how many ran."""
        ran = 0
        while self.queue:
            self.step()
            ran += 1
        return ran
