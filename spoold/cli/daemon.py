"""Running spoold as a process: reactor, thread pool, logging, signals.

``spoold worker`` and ``spoold serve`` both come through :func:`run`; ``serve`` adds the
web site to the same reactor. Everything that can fail at start-up is done before the
reactor runs -- the ``--listen`` endpoints parsed, the spool opened, the storage probed
(reachable, writable, conditional writes honoured), the ports bound -- so a process that
cannot do its job exits with one line and the status of :mod:`spoold.cli.exits` instead
of running on half-started. SIGTERM (and Ctrl-C) stop claiming, drain in-flight items
within the worker's ``drain_timeout`` and exit 0; what is left is reaped by the next
worker.
"""

from __future__ import annotations

import faulthandler
import functools
import signal
from pathlib import Path
import sys
from collections.abc import Callable
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    Logger,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.python.threadpool import ThreadPool

from spoold.cli.endpoints import Endpoint, listen_all
from spoold.config import Settings
from spoold.http.health import Bugs
from spoold.spool.queue import Spool, SpoolPolicy
from spoold.spool.incoming import IncomingPolicy
from spoold.systemd.notify import Notifier, status_line
from spoold.systemd.service import SystemdService
from spoold.storage import open_storage
from spoold.threads import pool_runner
from spoold.worker.watcher import FolderWatcher
from spoold.worker.processing import archive_limits, process_group
from spoold.worker.service import Worker

log = Logger(namespace="spoold.cli.daemon")


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
        done_retention=settings.done_retention,
        failed_retention=settings.failed_retention,
        incoming=IncomingPolicy(settle=settings.settle),
    )
    spool = Spool.create(settings.spool, policy=policy)
    storage = open_storage(settings.storage)
    storage.probe(create=True)
    return Worker(
        spool,
        storage,
        reactor=reactor,
        run=pool_runner(reactor, pool),
        jobs=settings.threads,
        scan_interval=settings.scan_interval,
        housekeeping_interval=settings.housekeeping_interval,
        drain_timeout=settings.drain_timeout,
        watcher_factory=FolderWatcher,
        process_claims=functools.partial(process_group, limits=archive_limits(settings),
                                         admins=frozenset(settings.admins)),
    )


class Listener(Service):
    """Ports bound at start-up (:func:`spoold.cli.endpoints.listen_all`), announced when the
    service starts and closed first when it stops, so a stopping server takes no new
    uploads while in-flight ones finish."""

    def __init__(self, ports: list[Any]) -> None:
        self.ports = ports

    def startService(self) -> None:
        super().startService()
        for port in self.ports:
            host = port.getHost()
            address = getattr(host, "host", None)
            if address is not None:
                shown = f"[{address}]" if ":" in address else address
                log.info("serving the index at http://{host}:{port}/simple/ (uploads: "
                         "http://{host}:{port}/legacy/)", host=shown, port=host.port)

    def stopService(self) -> Deferred:
        super().stopService()
        ports, self.ports = self.ports, []
        return defer.gatherResults([defer.maybeDeferred(p.stopListening) for p in ports],
                                   consumeErrors=True)


#: Adds services to a worker's process; returns a Deferred that fires when they are ready.
Extra = Callable[[Any, ThreadPool, Worker, MultiService, SystemdService], Deferred]


def serve_extra(settings: Settings, endpoints: list[Endpoint]) -> Extra:
    """What ``spoold serve`` adds to a worker: the web site on the parsed endpoints."""

    def extra(reactor: Any, pool: ThreadPool, worker: Worker, top: MultiService,
              systemd: SystemdService) -> Deferred:
        from spoold.access.first_start import ensure_a_user
        from spoold.access.htpasswd import Htpasswd
        from spoold.web.site import build_site

        htpasswd = Path(settings.htpasswd_path)
        first = ensure_a_user(htpasswd, Path(settings.data_dir))
        if first is not None:
            log.warn("no user existed: created the user {user} with a random password; it is "
                     "in {file} (readable by this user only). Log in with it, then add your "
                     "own users with `spoold user add NAME`", user=first.user,
                     file=str(first.password_file))
        auth = Htpasswd(htpasswd)
        auth_pool = ThreadPool(minthreads=0, maxthreads=2, name="spoold-auth")
        site = build_site(
            storage_reader=worker.storage, spool=worker.spool, waiter=worker, auth=auth,
            settings=settings, reactor=reactor, threadpool=pool, auth_threadpool=auth_pool,
            bugs=lambda: Bugs(worker.bugs, worker.last_bug), access_log_to=sys.stdout,
        )
        site.noisy = False
        metrics = site.metrics

        worker.on_handled.append(
            lambda h: metrics.record_outcome(h.outcome, h.seconds) if h.outcome is not None else None)
        worker.on_housekept.append(lambda r: [metrics.record_rejection(c) for c in r.rejected])
        if site.page_cache is not None:
            worker.on_published.append(site.page_cache.invalidate_file)
        log.info("spool {spool}; storage {storage}; users in {htpasswd}; reads {reads}",
                 spool=settings.spool, storage=settings.storage, htpasswd=str(htpasswd),
                 reads=settings.read)
        Listener(listen_all(endpoints, site)).setServiceParent(top)
        if site.token_use_flush is not None:
            site.token_use_flush.start(15.0, now=False).addErrback(
                lambda f: log.failure("token use recording stopped", f))
        auth_pool.start()  # only once listening worked: a failed start leaves no thread behind
        reactor.addSystemEventTrigger("after", "shutdown", auth_pool.stop)
        def reload() -> Deferred:
            log.info("SIGHUP: reloading {path}", path=str(htpasswd))
            if site.authenticator is not None:
                site.authenticator.forget()
            return worker.run(auth.reload)

        signal.signal(signal.SIGHUP, lambda *_: reactor.callFromThread(systemd.reload, reload))
        return defer.succeed(None)

    return extra


def run(settings: Settings, extra: Extra | None = None) -> int:
    """Run a worker (and whatever ``extra`` adds, e.g. the web site) until SIGTERM.

    Under systemd (``$NOTIFY_SOCKET``) READY=1 is sent once the first scan of ``new/`` is
    done and ``extra`` is ready (the HTTP ports accept connections); WATCHDOG=1 only while
    the watcher is alive and the reactor turns; STOPPING=1 on SIGTERM.
    """
    from twisted.internet import reactor

    faulthandler.enable()  # a watchdog SIGABRT then dumps every thread's stack to the journal
    pool = ThreadPool(minthreads=1, maxthreads=settings.threads + 4, name="spoold")
    worker = build_worker(settings, reactor, pool)
    top = MultiService()
    systemd = SystemdService(
        reactor, Notifier.from_environment(), healthy=worker.healthy,
        status=lambda: status_line(worker.spool.counts()), run=worker.run,
    )
    systemd.setServiceParent(top)
    worker.setServiceParent(top)
    ready = [worker.first_scan]
    if extra is not None:
        ready.append(extra(reactor, pool, worker, top, systemd))
    defer.gatherResults(ready, consumeErrors=True).addCallbacks(
        lambda _: systemd.ready(), lambda f: log.failure("never became ready", f))
    start_logging()
    pool.start()
    reactor.callWhenRunning(top.startService)
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    reactor.addSystemEventTrigger("after", "shutdown", pool.stop)
    reactor.run()
    return 0
