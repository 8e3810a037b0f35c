"""Telling systemd how the daemon is doing: ``sd_notify(3)`` without libsystemd.

The protocol is one datagram of ``KEY=value`` lines sent to the ``AF_UNIX`` socket named
by ``$NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract namespace). Speaking it
directly keeps spoold free of a C dependency and lets tests bind a plain socket and read
what the daemon said.

This module is the pure half: :class:`Notifier` formats and sends messages, and is a
no-op when systemd did not ask for notifications (``$NOTIFY_SOCKET`` unset), so the daemon
calls it unconditionally. No Twisted here; the timers that decide *when* to send live in
the adapter, :class:`spoold.systemd.service.SystemdService` (re-exported here for now).
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from spoold.spool.folders import STATUS_FOLDERS

__all__ = ["Notifier", "status_line"]

_KEY = re.compile(r"[A-Z][A-Z0-9_]*\Z")


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


def status_line(counts: Mapping[str, int]) -> str:
    """Queue depths as one ``STATUS=`` line, e.g. ``new 3, cur 1, deferred 0, failed 2``."""
    return ", ".join(f"{name} {counts[name]}" for name in STATUS_FOLDERS if name in counts)


#: The variables of systemd's socket-activation protocol (sd_listen_fds(3)).
LISTEN_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def listen_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The socket-activation variables as the process received them.

    Take this snapshot first thing: Twisted removes ``LISTEN_FDS`` from ``os.environ`` as
    soon as its endpoints module is imported (a precaution against adopting a socket
    twice), after which nothing could tell which sockets systemd passed.
    """
    source = os.environ if environ is None else environ
    return {k: source[k] for k in LISTEN_VARIABLES if k in source}
