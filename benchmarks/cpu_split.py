#!/usr/bin/env python3
"""``spoold serve`` with the CPU of its thread-pool calls counted by function.

``spoold serve`` is one process: the web site and the worker share the reactor thread and
one thread pool, so its CPU time alone cannot say what an upload costs to *receive* and
what it costs to *publish*. Run this instead of ``python -m spoold`` and every call that
leaves the reactor (:func:`spoold.threads.pool_runner`) is timed with
``time.thread_time()`` (user + system CPU of the thread that ran it), by the called
function's qualified name: ``UploadGate.check`` (password and free space),
``UploadResource._receive`` (form parsing, spool delivery, fsyncs), ``Worker._job``
(claiming and publishing), ``Spool.pending`` and so on. What the reactor thread spends
is read from ``/proc`` by the caller; the rest (the filesystem watcher's threads, the
pool's hand-offs) is what is left of the process's CPU.

SIGUSR1 zeroes the counts; SIGUSR2 writes them, as JSON ``{name: [calls, seconds]}``, to
the file named by ``$SPOOLD_CPU_SPLIT``. Used by ``bench_http.py --uploads-only``.

Run:  python benchmarks/cpu_split.py serve [spoold serve's options]
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import spoold.threads
from spoold.cli.main import main

_counts: dict[str, list[float]] = {}
_lock = threading.Lock()
_defer = spoold.threads.deferToThreadPool


def _timed(reactor: Any, pool: Any, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    name = getattr(f, "__qualname__", repr(f))

    def call(*a: Any, **kw: Any) -> Any:
        start = time.thread_time()
        try:
            return f(*a, **kw)
        finally:
            spent = time.thread_time() - start
            with _lock:
                entry = _counts.setdefault(name, [0, 0.0])
                entry[0] += 1
                entry[1] += spent

    return _defer(reactor, pool, call, *args, **kwargs)


def _reset(*_: Any) -> None:
    with _lock:
        _counts.clear()


def _dump(*_: Any) -> None:
    with _lock:
        counts = {name: list(entry) for name, entry in _counts.items()}
    path = os.environ["SPOOLD_CPU_SPLIT"]
    with open(path + ".tmp", "w") as f:
        json.dump(counts, f)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    spoold.threads.deferToThreadPool = _timed  # type: ignore[assignment]
    signal.signal(signal.SIGUSR1, _reset)
    signal.signal(signal.SIGUSR2, _dump)
    sys.exit(main())
