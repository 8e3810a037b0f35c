"""Telling systemd how the daemon is doing: ``sd_notify(3)`` without libsystemd.

The protocol is one datagram of ``KEY=value`` lines sent to the ``AF_UNIX`` socket named
by ``$NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract namespace). Speaking it
directly keeps spoold free of a C dependency and lets tests bind a plain socket and read
what the daemon said.

Two layers, as elsewhere in spoold:

* :class:`Notifier` is plain synchronous code: it formats and sends messages, and is a
  no-op when systemd did not ask for notifications (``$NOTIFY_SOCKET`` unset), so the
  daemon calls it unconditionally.
* :class:`SystemdService` is the Twisted adapter: it pings the watchdog only while the
  daemon says it is healthy (so systemd restarts a wedged daemon instead of a healthy one
  being kept alive by a timer that still ticks), keeps ``STATUS=`` current with the queue
  depths, and brackets reloads with ``RELOADING=1`` / ``READY=1``.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from spoold.spool.folders import STATUS_FOLDERS
from spoold.threads import Run

log = Logger(namespace="spoold.systemd.notify")

__all__ = ["Notifier", "SystemdService", "status_line"]

_KEY = re.compile(r"[A-Z][A-Z0-9_]*\Z")

#: Queue folders worth a glance in ``systemctl status``, in pipeline order.


def _monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds: systemd >= 253 wants it with ``RELOADING=1``."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """Sends ``sd_notify`` messages to one socket; every method is a no-op without one.

    Sending never raises: a daemon must not die because its supervisor went away (systemd
    re-executing itself, a test harness that closed its socket). A failed send returns
    False and is remembered in :attr:`last_error` for whoever wants to log it.
    """

    def __init__(
        self,
        address: str | None,
        *,
        watchdog_usec: int | None = None,
        monotonic_usec: Callable[[], int] = _monotonic_usec,
    ) -> None:
        #: The socket address as given (``/run/...`` or ``@abstract``), or None: disabled.
        self.address = address or None
        #: An address of a transport this module does not speak (``vsock:`` of newer
        #: systemd); notifications are then off rather than the daemon refusing to start.
        self.unsupported: str | None = None
        if self.address is not None and not self.address.startswith(("/", "@")):
            self.unsupported, self.address = self.address, None
        #: The watchdog timeout systemd expects pings within, if it wants pings from us.
        self.watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self._monotonic_usec = monotonic_usec
        self.last_error: OSError | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, *, pid: int | None = None) -> Notifier:
        """The notifier systemd set up for this process (``$NOTIFY_SOCKET``,
        ``$WATCHDOG_USEC``); the watchdog is ignored when ``$WATCHDOG_PID`` names another
        process (the variables leaked into a child)."""
        env = os.environ if environ is None else environ
        pid = os.getpid() if pid is None else pid
        watchdog_usec: int | None = None
        raw_pid = env.get("WATCHDOG_PID", "").strip()
        if not raw_pid or raw_pid == str(pid):
            try:
                watchdog_usec = int(env.get("WATCHDOG_USEC", "").strip())
            except ValueError:
                watchdog_usec = None
        return cls(env.get("NOTIFY_SOCKET") or None, watchdog_usec=watchdog_usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings (half the timeout, as systemd recommends)."""
        if self.watchdog_usec is None or not self.enabled:
            return None
        return self.watchdog_usec / 2 / 1_000_000

    def _sockaddr(self) -> str:
        assert self.address is not None
        return "\0" + self.address[1:] if self.address.startswith("@") else self.address

    def send(self, **fields: Any) -> bool:
        """Send ``KEY=value`` lines in one datagram; True if it was sent.

        Newlines in values become spaces: a value must never smuggle in another
        assignment (a STATUS built from an error message could say ``READY=1``).
        """
        if not self.enabled:
            return False
        lines = []
        for key, value in fields.items():
            if not _KEY.match(key):
                raise ValueError(f"not an sd_notify field name: {key!r}")
            text = str(value).replace("\r", " ").replace("\n", " ")
            lines.append(f"{key}={text}\n")
        message = "".join(lines).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # Never block the reactor on a full queue: a lost ping is better than a hang.
                sock.sendto(message, socket.MSG_DONTWAIT, self._sockaddr())
        except OSError as e:
            self.last_error = e
            return False
        self.last_error = None
        return True

    def ready(self, status: str | None = None) -> bool:
        """Start-up (or a reload) is complete: systemd starts units ordered after us."""
        return self.send(READY=1, **({"STATUS": status} if status is not None else {}))

    def reloading(self, status: str | None = None) -> bool:
        """A reload began; ``READY=1`` must follow when it is over."""
        return self.send(
            RELOADING=1,
            MONOTONIC_USEC=self._monotonic_usec(),
            **({"STATUS": status} if status is not None else {}),
        )

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown began (shown as "deactivating" while in-flight items drain)."""
        return self.send(STOPPING=1, **({"STATUS": status} if status is not None else {}))

    def status(self, text: str) -> bool:
        """One line for ``systemctl status``."""
        return self.send(STATUS=text)

    def watchdog(self) -> bool:
        """I am alive and well; systemd restarts the service when these stop coming."""
        return self.send(WATCHDOG=1)

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more time in the current start/stop/reload phase (slow storage)."""
        return self.send(EXTEND_TIMEOUT_USEC=int(seconds * 1_000_000))


def status_line(counts: Mapping[str, int]) -> str:
    """Queue depths as one ``STATUS=`` line, e.g. ``new 3, cur 1, deferred 0, failed 2``."""
    return ", ".join(f"{name} {counts[name]}" for name in STATUS_FOLDERS if name in counts)




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
