"""The worker daemon: turn every item in ``new/`` into a published file or a clear rejection.

Twisted only wires things together here. The reactor thread keeps the bookkeeping (which
names are candidates, how many jobs run, who waits for which item); every filesystem and
storage call runs on a bounded thread pool through ``run``:

* hints (watchdog events, the scan timer, a finished job) make the reactor hand out
  candidate names to free job slots; a job claims its name by rename and processes it
  (:func:`spoold.worker.processing.process`);
* housekeeping (reaping, deferred promotion, incoming/, sweeping, expiry) runs on a timer;
* leases of in-flight claims are renewed on a timer, for workers on other hosts;
* uploads wait for their item with :meth:`Worker.wait_for`, answered at once when this
  process handled the item, or by a cheap stat-poll when another process did.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from spoold.spool.names import ItemName
from spoold.spool.outcome import Result
from spoold.spool.queue import Spool
from spoold.storage import Storage
from spoold.threads import Run
from spoold.worker.processing import Handled, process_group
from spoold.worker.report import log_handled
from spoold.worker.waiting import Waiting

log = Logger(namespace="spoold.worker.service")

#: How far down the candidates a job looks for more items of its first item's project.
GROUP_WINDOW = 32


class Watcher(Protocol):
    def start(self) -> None: ...
    def alive(self) -> bool: ...
    def stop(self) -> None: ...


class Worker(Waiting, Service):
    """One process's share of the work on a spool.

    ``run(f, *args)`` runs a blocking call off the reactor thread and returns a Deferred
    (production: ``deferToThreadPool``; tests: a synchronous stand-in). ``watcher_factory``
    receives ``(folders, call_from_thread, hint)``; None means timers only. A job takes
    up to ``group`` queued items of one project (:func:`~spoold.worker.processing.
    process_group` publishes them with one manifest change).
    """

    def __init__(
        self,
        spool: Spool,
        storage: Storage,
        *,
        reactor: Any,
        run: Run,
        jobs: int = 4,
        scan_interval: float = 2.0,
        housekeeping_interval: float = 5.0,
        poll_interval: float = 0.1,
        drain_timeout: float = 30.0,
        storage_sweep_interval: float = 3600.0,
        watcher_factory: Callable[..., Watcher] | None = None,
        process_claims: Callable[..., list[Handled]] = process_group,
        call_from_thread: Callable[..., Any] | None = None,
        group: int = 8,
    ) -> None:
        self.spool = spool
        self.storage = storage
        self.reactor = reactor
        self.run = run
        self.jobs = jobs
        self.scan_interval = scan_interval
        self.housekeeping_interval = housekeeping_interval
        self.poll_interval = poll_interval
        self.drain_timeout = drain_timeout
        self.storage_sweep_interval = storage_sweep_interval
        self.watcher_factory = watcher_factory
        self.process_claims = process_claims
        self.group = group
        self.call_from_thread = call_from_thread or reactor.callFromThread

        self.running_jobs = 0
        self.stopping = False
        self.watcher: Watcher | None = None
        #: Whether the last listing of new/ may be stale (a hint arrived since).
        self._dirty = True
        self._listing = False
        self._candidates: deque[str] = deque()
        self._in_flight: dict[str, Any] = {}
        self._idle: list[Deferred] = []
        self._loops: list[task.LoopingCall] = []
        self._housekeeping_running = False
        self._incoming_soon = False
        #: Observers of every handled item (metrics, sd_notify status); called on the reactor.
        self.on_handled: list[Callable[[Handled], None]] = []
        self._init_waiting()
        #: Observers of every housekeeping round (metrics count its rejections).
        self.on_housekept: list[Callable[[Any], None]] = []
        #: Fires once the first listing of new/ is done (the backlog is known): readiness.
        self.first_scan: Deferred = Deferred()
        #: Items that hit a bug in spoold since start (kept in cur/), and the last one:
        #: /health reports them as what they are, not as a storage problem.
        self.bugs = 0
        self.last_bug: str | None = None

    # -- life cycle ------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.stopping = False
        log.info("worker started: spool {spool}, storage {storage}, {jobs} job(s) at once",
                 spool=str(self.spool.root), storage=getattr(self.storage, "url", self.storage),
                 jobs=self.jobs)
        if self.watcher_factory is not None:
            self._start_watcher()
        if self.jobs == 0:
            self._scanned()  # this process never claims; nothing to scan for
        for interval, func in (
            (self.scan_interval, self._scan_tick),
            (self.housekeeping_interval, self.housekeep),
            (self.spool.policy.lease / 3, self._renew_leases),
            (self.poll_interval, self._poll_waiters),
            (self.storage_sweep_interval, self.sweep_storage),
        ):
            loop = task.LoopingCall(func)
            loop.clock = self.reactor
            loop.start(interval, now=True).addErrback(self._loop_failed, func)
            self._loops.append(loop)

    def stopService(self) -> Deferred:
        """Stop claiming, let in-flight items finish (bounded by ``drain_timeout``).

        Anything still running when the time is up stays in ``cur/`` for the reaper:
        nothing is lost, at worst it is processed again (publishing is idempotent).
        """
        super().stopService()
        self.stopping = True
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops.clear()
        watcher, self.watcher = self.watcher, None
        stopped = [self.run(watcher.stop)] if watcher is not None else []
        drained = self.when_idle()
        timeout = self.reactor.callLater(self.drain_timeout, self._drain_timed_out, drained)
        drained.addBoth(lambda r: timeout.cancel() if timeout.active() else None)
        return defer.gatherResults([drained, *stopped], consumeErrors=True).addBoth(lambda _: None)

    def _drain_timed_out(self, drained: Deferred) -> None:
        log.warn("stopping with {n} item(s) unfinished; the reaper returns them to new/",
                 n=self.running_jobs)
        if not drained.called:
            drained.callback(None)

    def when_idle(self) -> Deferred:
        """A Deferred that fires when no job is running."""
        if self.running_jobs == 0:
            return defer.succeed(None)
        d: Deferred = Deferred()
        self._idle.append(d)
        return d

    def _loop_failed(self, failure: Any, func: Callable[..., Any]) -> None:
        log.failure("periodic task {name} died", failure, name=getattr(func, "__name__", func))

    # -- the watcher -----------------------------------------------------------------------

    def _start_watcher(self) -> None:
        assert self.watcher_factory is not None
        folders = {"new": self.spool.new, "incoming": self.spool.incoming, "done": self.spool.done}
        try:
            self.watcher = self.watcher_factory(folders, self.call_from_thread, self.hint)
            self.watcher.start()
        except Exception:
            # inotify limits reached and the like: the scan timer still finds everything.
            log.failure("cannot watch the spool; falling back to periodic scans")
            self.watcher = None

    def healthy(self) -> bool:
        """True while the watcher (if any) is alive; used for the systemd watchdog."""
        return self.watcher_factory is None or (self.watcher is not None and self.watcher.alive())

    def hint(self, folder: str = "new", entry: str | None = None) -> None:
        """Something may have arrived in ``folder`` (called on the reactor thread)."""
        if folder == "done":
            # Some process sharing this spool published ``entry``: tell who caches pages.
            if entry is not None:
                self._published(ItemName.parse(entry).filename)
            return
        if folder == "incoming":
            # An scp in progress fires an event per write: look at most twice a second.
            if not self._incoming_soon:
                self._incoming_soon = True
                self.reactor.callLater(0.5, self._incoming_due)
            return
        self._dirty = True
        self._dispatch()

    def _incoming_due(self) -> None:
        self._incoming_soon = False
        self.housekeep()

    def _scan_tick(self) -> None:
        if self.watcher_factory is not None and not self.stopping and not (
            self.watcher is not None and self.watcher.alive()
        ):
            log.warn("the filesystem watcher died; restarting it")
            self._start_watcher()
        self.hint("new")

    # -- claiming and processing -----------------------------------------------------------

    def _dispatch(self) -> None:
        """Fill free job slots with candidates; list new/ when candidates run out."""
        if self.stopping:
            return
        while self.running_jobs < self.jobs and self._candidates:
            self._start_job(self._take_group())
        if self.running_jobs < self.jobs and not self._candidates and self._dirty and not self._listing:
            self._dirty = False
            self._listing = True
            self.run(self.spool.pending).addCallbacks(self._listed, self._listing_failed)

    def _scanned(self) -> None:
        if not self.first_scan.called:
            self.first_scan.callback(None)

    def _listed(self, names: list[str]) -> None:
        self._listing = False
        self._scanned()
        if names:
            # Start at a random place, so that workers sharing the spool rarely collide.
            start = random.randrange(len(names))
            self._candidates = deque(names[start:] + names[:start])
            self._dirty = True  # more may be waiting once these are handed out
        self._dispatch()

    def _listing_failed(self, failure: Any) -> None:
        self._listing = False
        self._scanned()
        log.failure("cannot list {folder}", failure, folder=str(self.spool.new))

    def _take_group(self) -> list[str]:
        """The next candidate and, from the few after it, those of the same project (by
        the name's first field: a wheel's whole name, enough to group by)."""
        first = self._candidates.popleft()
        key = _group_key(first)
        group, passed = [first], []
        for _ in range(min(GROUP_WINDOW, len(self._candidates))):
            entry = self._candidates.popleft()
            (group if len(group) < self.group and _group_key(entry) == key else passed).append(entry)
        self._candidates.extendleft(reversed(passed))
        return group

    def _start_job(self, entries: list[str]) -> None:
        self.running_jobs += 1
        d = self.run(self._job, entries)
        d.addCallbacks(self._jobs_done, self._job_failed)
        d.addBoth(self._job_slot_free)

    def _job(self, entries: list[str]) -> list[Handled]:
        """On a pool thread: claim the entries and take them to their end states."""
        claims = [claim for entry in entries if (claim := self.spool.claim(entry)) is not None]
        if not claims:
            return []
        # Plain dict operations are atomic; the lease timer only reads a snapshot.
        for claim in claims:
            self._in_flight[str(claim.name)] = claim
        try:
            return self.process_claims(self.spool, self.storage, claims)
        finally:
            for claim in claims:
                self._in_flight.pop(str(claim.name), None)

    def _jobs_done(self, handled: list[Handled]) -> None:
        for each in handled:
            self._job_done(each)

    def _job_done(self, handled: Handled) -> None:
        log_handled(handled)
        if handled.outcome is not None and handled.outcome.result is Result.ERROR:
            self.bugs += 1
            lines = handled.traceback.strip().splitlines()
            self.last_bug = f"{handled.claim.filename}: {lines[-1] if lines else 'internal error'}"
        if handled.outcome is not None:
            if handled.outcome.ok:
                self._published(handled.outcome.filename)
            self._resolve(handled.claim.name.uid, handled.outcome)
        for observer in self.on_handled:
            observer(handled)

    def _job_failed(self, failure: Any) -> None:
        log.failure("a job failed unexpectedly; its item stays for the reaper", failure)

    def _job_slot_free(self, _: Any) -> None:
        self.running_jobs -= 1
        if self.running_jobs == 0:
            idle, self._idle = self._idle, []
            for d in idle:
                d.callback(None)
        self._dispatch()

    # -- periodic work ---------------------------------------------------------------------

    def housekeep(self) -> Deferred | None:
        """Reap, promote, take incoming/, sweep and expire, on a pool thread."""
        if self._housekeeping_running or self.stopping:
            return None
        self._housekeeping_running = True

        def done(report: Any) -> None:
            self._housekeeping_running = False
            for observer in self.on_housekept:
                observer(report)
            if report.reaped or report.promoted or report.taken:
                log.info(
                    "housekeeping: {r.reaped} reaped, {r.poisoned} poisoned, {r.promoted} promoted, "
                    "{r.taken} taken from incoming, {r.incoming_failed} refused",
                    r=report,
                )
                self.hint("new")

        def failed(failure: Any) -> None:
            self._housekeeping_running = False
            log.failure("housekeeping failed", failure)

        return self.run(self.spool.housekeep).addCallbacks(done, failed)

    def sweep_storage(self) -> Deferred | None:
        """Remove temporary files that killed or failed storage writes left (hourly)."""
        if self.stopping:
            return None

        def swept(count: int) -> None:
            if count:
                log.info("storage: removed {n} stale temporary file(s)", n=count)

        return self.run(self.storage.sweep_temporary).addCallbacks(
            swept, lambda f: log.failure("cannot sweep the storage's temporary files", f))

    def _renew_leases(self) -> Deferred | None:
        claims = list(self._in_flight.values())
        if not claims:
            return None
        return self.run(lambda: [self.spool.heartbeat(c) for c in claims]).addErrback(
            lambda f: log.failure("cannot renew leases", f))


def _group_key(entry: str) -> str:
    return ItemName.parse(entry).filename.split("-", 1)[0].lower()
