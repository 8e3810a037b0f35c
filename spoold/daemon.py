"""Running spoold as a process: reactor, thread pool, logging, signals.

``spoold worker`` and ``spoold serve`` both come through :func:`run`; ``serve`` adds the
web site to the same reactor. SIGTERM (and Ctrl-C) stop claiming, drain in-flight items
within the worker's ``drain_timeout`` and exit 0; what is left is reaped by the next
worker.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.threads import deferToThreadPool
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.python.threadpool import ThreadPool

from spoold.config import Settings
from spoold.spool import Spool, SpoolPolicy
from spoold.incoming import IncomingPolicy
from spoold.storage import open_storage
from spoold.watcher import FolderWatcher
from spoold.worker import Worker


def start_logging(stream: Any = None, level: LogLevel = LogLevel.info) -> None:
    """Plain text lines on stdout: journald-friendly, one line per event."""
    observer = FilteringLogObserver(
        textFileLogObserver(stream or sys.stdout), [LogLevelFilterPredicate(defaultLogLevel=level)]
    )
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def build_worker(settings: Settings, reactor: Any, pool: ThreadPool) -> Worker:
    policy = SpoolPolicy(
        backoff_base=settings.retry_base,
        backoff_max=settings.retry_max,
        incoming=IncomingPolicy(settle=settings.settle),
    )
    spool = Spool.create(settings.spool, policy=policy)
    storage = open_storage(settings.storage)
    return Worker(
        spool,
        storage,
        reactor=reactor,
        run=lambda f, *a, **kw: deferToThreadPool(reactor, pool, f, *a, **kw),
        jobs=settings.threads,
        scan_interval=settings.scan_interval,
        housekeeping_interval=settings.housekeeping_interval,
        drain_timeout=settings.drain_timeout,
        watcher_factory=FolderWatcher,
    )


def run(settings: Settings, extra: Callable[[Any, ThreadPool, Worker, MultiService], None] | None = None) -> int:
    """Run a worker (and whatever ``extra`` adds, e.g. the web site) until SIGTERM."""
    from twisted.internet import reactor

    pool = ThreadPool(minthreads=1, maxthreads=settings.threads + 4, name="spoold")
    worker = build_worker(settings, reactor, pool)
    top = MultiService()
    worker.setServiceParent(top)
    if extra is not None:
        extra(reactor, pool, worker, top)
    start_logging()
    pool.start()
    reactor.callWhenRunning(top.startService)
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    reactor.addSystemEventTrigger("after", "shutdown", pool.stop)
    reactor.run()
    return 0
