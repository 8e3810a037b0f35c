"""The Twisted side of the systemd integration: watchdog pings, status, readiness.

:class:`SystemdService` pings the watchdog only while the daemon says it is healthy (so
systemd restarts a wedged daemon instead of a healthy one being kept alive by a timer that
still ticks), keeps ``STATUS=`` current with the queue depths, and brackets reloads with
``RELOADING=1`` / ``READY=1``. What it sends goes through the pure
:class:`spoold.systemd.notify.Notifier`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from spoold.threads import Run

from .notify import Notifier

log = Logger(namespace="spoold.systemd.notify")

__all__ = ["SystemdService"]


class SystemdService(Service):
    """Watchdog pings, status updates and the readiness protocol for one daemon process.

    ``healthy()`` is called on the reactor thread and must be cheap (the worker's
    :meth:`~spoold.worker.service.Worker.healthy`). Pings are sent from a reactor timer, so they
    also stop when the reactor itself is stuck. ``status()`` may block (it lists the spool)
    and runs through ``run`` (a thread pool in production, a synchronous stand-in in tests);
    a status call that hangs never affects the watchdog: a busy thread pool (a long
    publish) is not a wedged daemon.
    """

    name = "systemd"

    def __init__(
        self,
        reactor: Any,
        notifier: Notifier,
        *,
        healthy: Callable[[], bool],
        status: Callable[[], str],
        run: Run,
        status_interval: float = 10.0,
    ) -> None:
        self.reactor = reactor
        self.notifier = notifier
        self.healthy = healthy
        self.status = status
        self.run = run
        self.status_interval = status_interval
        self.is_ready = False
        self._status_pending = False
        self._last_status: str | None = None
        self._unhealthy_logged = False
        self._send_error_logged = False
        self._watchdog_loop: task.LoopingCall | None = None
        self._status_loop: task.LoopingCall | None = None

    # -- life cycle ------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        if self.notifier.unsupported is not None:
            log.warn("NOTIFY_SOCKET={address} is not a unix socket; not notifying systemd",
                     address=self.notifier.unsupported)
        if not self.notifier.enabled:
            return
        interval = self.notifier.watchdog_interval
        if interval is not None and (self._watchdog_loop is None or not self._watchdog_loop.running):
            self._watchdog_loop = self._loop(self._ping, interval)
        if self._status_loop is None or not self._status_loop.running:
            self._status_loop = self._loop(self.update_status, self.status_interval)

    def _loop(self, func: Callable[[], Any], interval: float) -> task.LoopingCall:
        loop = task.LoopingCall(func)
        loop.clock = self.reactor
        loop.start(interval, now=True).addErrback(
            lambda f: log.failure("systemd notification timer died", f))
        return loop

    def stopService(self) -> None:
        """Say STOPPING=1 and stop status updates.

        The watchdog keeps pinging (while healthy) until the process exits: draining
        in-flight items can take up to the drain timeout, and a daemon that merely stops
        pinging while it drains must not be shot for a hang.
        """
        super().stopService()
        self.is_ready = False
        if self._status_loop is not None and self._status_loop.running:
            self._status_loop.stop()
        self._status_loop = None
        self._sent(self.notifier.stopping("stopping: draining in-flight items"))

    # -- what the daemon calls -------------------------------------------------------------

    def ready(self) -> None:
        """Call once the HTTP ports listen and the worker's first scan is done."""
        self.is_ready = True
        self._sent(self.notifier.ready(self._last_status or "ready"))

    def reload(self, action: Callable[[], Any]) -> Deferred:
        """Run ``action`` (SIGHUP: reread the htpasswd file) between RELOADING=1 and READY=1.

        ``action`` may return a Deferred. READY=1 follows even when it fails (the daemon
        still serves, with the old settings), with the error in STATUS=; the returned
        Deferred fires with True on success, False on failure, never with an error.
        """
        self._sent(self.notifier.reloading("reloading"))
        d = defer.maybeDeferred(action)

        def done(_: Any) -> bool:
            self._sent(self.notifier.ready(self._last_status or "ready"))
            return True

        def failed(failure: Any) -> bool:
            log.failure("reload failed; still running with the previous settings", failure)
            message = failure.getErrorMessage()
            self._sent(self.notifier.ready(f"reload failed: {message}"))
            return False

        return d.addCallbacks(done, failed)

    # -- timers ----------------------------------------------------------------------------

    def _ping(self) -> None:
        try:
            healthy = bool(self.healthy())
        except Exception:
            log.failure("health check raised; withholding the watchdog ping")
            healthy = False
        if not healthy:
            if not self._unhealthy_logged:
                log.warn("unhealthy: withholding watchdog pings, systemd will restart us "
                         "unless this recovers")
                self._unhealthy_logged = True
            return
        if self._unhealthy_logged:
            log.info("healthy again: watchdog pings resume")
            self._unhealthy_logged = False
        self._sent(self.notifier.watchdog())

    def update_status(self) -> Deferred | None:
        """Refresh STATUS= from ``status()`` off the reactor thread (one call at a time)."""
        if self._status_pending:
            return None
        self._status_pending = True

        def got(text: str) -> None:
            self._status_pending = False
            self._last_status = text
            self._sent(self.notifier.status(text))

        def failed(failure: Any) -> None:
            self._status_pending = False
            log.failure("cannot compute the status line", failure)

        return self.run(self.status).addCallbacks(got, failed)

    def _sent(self, ok: bool) -> None:
        """Log a failed send once, not every few seconds."""
        if ok or not self.notifier.enabled:
            self._send_error_logged = False
            return
        if not self._send_error_logged:
            log.warn("cannot notify systemd at {address}: {error}",
                     address=self.notifier.address, error=self.notifier.last_error)
            self._send_error_logged = True
