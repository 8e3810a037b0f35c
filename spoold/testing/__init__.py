"""Fakes and builders for testing code that uses spoold (as ``treq.testing`` ships).

* :mod:`spoold.testing.http` -- an in-memory HTTP client driving a real site over a
  ``MemoryReactorClock``: :func:`request`, :class:`Connection`, :class:`Response`;
* :mod:`spoold.testing.run` -- stand-ins for the thread pool: :func:`run_now`,
  :class:`ManualRun`;
* :mod:`spoold.testing.waiter` -- :class:`FakeWaiter`, a worker whose outcomes the test sets;
* :class:`MemoryStorage` -- the in-memory storage (:mod:`spoold.storage.memory`), with
  ``down`` and ``presign`` knobs and a record of ``reads``;
* :mod:`spoold.testing.dists` -- wheels built by hand, and :class:`Pause`.

The names are importable from here; each is loaded on first use, so importing
``spoold.testing.dists`` (or this package) does not pull in Twisted's web stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spoold.storage.memory import MemoryStorage
    from spoold.testing.dists import Pause, build_wheel, make_distribution
    from spoold.testing.http import (
        Connection,
        IncompleteResponse,
        Response,
        basic_auth,
        parse_responses,
        raw_request,
        request,
    )
    from spoold.testing.run import ManualRun, QueuedCall, run_now
    from spoold.testing.waiter import FakeWaiter

_HOMES = {
    "MemoryStorage": "spoold.storage.memory",
    "Pause": "spoold.testing.dists",
    "build_wheel": "spoold.testing.dists",
    "make_distribution": "spoold.testing.dists",
    "Connection": "spoold.testing.http",
    "IncompleteResponse": "spoold.testing.http",
    "Response": "spoold.testing.http",
    "basic_auth": "spoold.testing.http",
    "parse_responses": "spoold.testing.http",
    "raw_request": "spoold.testing.http",
    "request": "spoold.testing.http",
    "ManualRun": "spoold.testing.run",
    "QueuedCall": "spoold.testing.run",
    "run_now": "spoold.testing.run",
    "FakeWaiter": "spoold.testing.waiter",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)

