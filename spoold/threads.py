"""How blocking work leaves the reactor thread: the ``Run`` type and its thread pools.

Every adapter (worker, web resources, systemd service) takes a ``run`` callable instead
of a thread pool: ``run(f, *args, **kwargs)`` calls ``f`` somewhere that may block and
returns a Deferred of its result. Production passes :func:`pool_runner` over a Twisted
thread pool; tests pass :class:`spoold.testing.ManualRun` or :func:`spoold.testing.run_now`,
so they can prove which calls leave the request path and step them one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

__all__ = ["Run", "pool_runner"]

#: Run a blocking callable off the reactor thread: ``run(f, *args) -> Deferred[f's result]``.
Run = Callable[..., Deferred[Any]]


def pool_runner(reactor: Any, pool: ThreadPool) -> Run:
    """A :data:`Run` over ``pool``, answering on ``reactor``."""

    def run(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        return deferToThreadPool(reactor, pool, f, *args, **kwargs)

    return run
