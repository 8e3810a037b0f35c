"""sd_notify as systemd sees it: a real datagram socket stands in for systemd's notify
socket, and ``twisted.internet.task.Clock`` drives the timers (no real time passes)."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from spoold.systemd.notify import Notifier, status_line
from spoold.systemd.service import SystemdService
from spoold.testing import run_now


class Systemd:
    """The receiving end of ``$NOTIFY_SOCKET``: what systemd would have been told."""

    def __init__(self, address: str, sock: socket.socket) -> None:
        self.address = address
        self.sock = sock

    def received(self) -> list[dict[str, str]]:
        """Every datagram waiting, each parsed into its fields (oldest first)."""
        messages = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return messages
            text = data.decode()
            assert text.endswith("\n"), text
            messages.append(dict(line.split("=", 1) for line in text.splitlines()))

    def keys(self) -> list[str]:
        """The fields of every waiting message, flattened (for order-only checks)."""
        return [key for message in self.received() for key in message]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="sdn"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def systemd(short_dir: Path) -> Iterator[Systemd]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = short_dir / "notify"
    sock.bind(str(path))
    sock.setblocking(False)
    try:
        yield Systemd(str(path), sock)
    finally:
        sock.close()


@pytest.fixture
def abstract_systemd() -> Iterator[Systemd]:
    name = f"spoold-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    try:
        yield Systemd("@" + name, sock)
    finally:
        sock.close()


# -- Notifier ------------------------------------------------------------------------------


def test_ready_reaches_the_socket(systemd: Systemd) -> None:
    notifier = Notifier(systemd.address)
    assert notifier.ready("serving")
    assert systemd.received() == [{"READY": "1", "STATUS": "serving"}]


def test_abstract_socket_names(abstract_systemd: Systemd) -> None:
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": abstract_systemd.address})
    assert notifier.enabled
    assert notifier.ready() and notifier.stopping()
    assert abstract_systemd.received() == [{"READY": "1"}, {"STOPPING": "1"}]


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier.from_environment({})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    assert not notifier.ready()
    assert not notifier.watchdog()
    assert notifier.last_error is None


def test_reloading_carries_the_monotonic_timestamp(systemd: Systemd) -> None:
    notifier = Notifier(systemd.address, monotonic_usec=lambda: 123456789)
    notifier.reloading()
    assert systemd.received() == [{"RELOADING": "1", "MONOTONIC_USEC": "123456789"}]


def test_real_monotonic_clock_in_microseconds(systemd: Systemd) -> None:
    Notifier(systemd.address).reloading()
    (message,) = systemd.received()
    usec = int(message["MONOTONIC_USEC"])
    # Same clock as the kernel's CLOCK_MONOTONIC, in microseconds, not ns or s.
    assert abs(usec - time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000) < 60_000_000


def test_values_cannot_smuggle_in_assignments(systemd: Systemd) -> None:
    Notifier(systemd.address).status("broken\nREADY=1\r\nWATCHDOG=trigger")
    assert systemd.received() == [{"STATUS": "broken READY=1  WATCHDOG=trigger"}]


def test_field_names_are_checked(systemd: Systemd) -> None:
    with pytest.raises(ValueError, match="field name"):
        Notifier(systemd.address).send(**{"ready": 1})
    with pytest.raises(ValueError, match="field name"):
        Notifier(systemd.address).send(**{"A=B": 1})


def test_a_vanished_socket_is_reported_not_raised(short_dir: Path) -> None:
    notifier = Notifier(str(short_dir / "gone"))
    assert not notifier.watchdog()
    assert isinstance(notifier.last_error, FileNotFoundError)


def test_unsupported_transport_disables_notifications() -> None:
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notifier.enabled
    assert notifier.unsupported == "vsock:2:1234"
    assert not notifier.ready()


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_from_environment(env: dict[str, str], interval: float | None) -> None:
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": "/run/x", **env}, pid=4242)
    assert notifier.watchdog_interval == interval


def test_watchdog_pid_defaults_to_this_process() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier.from_environment(env).watchdog_interval == 1.0


def test_status_line() -> None:
    counts = {"incoming": 0, "tmp": 5, "new": 3, "cur": 1, "deferred": 2, "done": 900, "failed": 4}
    assert status_line(counts) == "incoming 0, new 3, cur 1, deferred 2, failed 4"


# -- SystemdService ------------------------------------------------------------------------


class Health:
    def __init__(self) -> None:
        self.ok = True

    def __call__(self) -> bool:
        return self.ok


def make_service(
    systemd: Systemd,
    clock: Clock,
    *,
    watchdog_usec: int | None = 30_000_000,
    healthy: Callable[[], bool] = lambda: True,
    status: Callable[[], str] = lambda: "new 0, cur 0",
    run: Callable[..., Deferred] = run_now,
    status_interval: float = 10.0,
) -> SystemdService:
    notifier = Notifier(systemd.address, watchdog_usec=watchdog_usec, monotonic_usec=lambda: 42)
    return SystemdService(
        clock, notifier, healthy=healthy, status=status, run=run, status_interval=status_interval
    )


def watchdog_pings(systemd: Systemd) -> int:
    return sum(1 for message in systemd.received() if message.get("WATCHDOG") == "1")


def test_watchdog_pings_at_half_the_timeout_while_healthy(systemd: Systemd) -> None:
    clock = Clock()
    health = Health()
    service = make_service(systemd, clock, healthy=health, status_interval=1000)
    service.startService()
    assert watchdog_pings(systemd) == 1  # at once: the first ping does not wait

    clock.advance(14.9)
    assert watchdog_pings(systemd) == 0
    clock.advance(0.1)
    assert watchdog_pings(systemd) == 1  # 15 s = WATCHDOG_USEC / 2

    health.ok = False
    clock.pump([15.0] * 4)
    assert watchdog_pings(systemd) == 0  # wedged: systemd's timeout will restart us

    health.ok = True
    clock.advance(15.0)
    assert watchdog_pings(systemd) == 1  # recovered before the timeout: pings resume


def test_a_raising_health_check_counts_as_unhealthy(systemd: Systemd) -> None:
    def broken() -> bool:
        raise RuntimeError("watcher state unreadable")

    clock = Clock()
    make_service(systemd, clock, healthy=broken).startService()
    clock.pump([15.0] * 3)
    assert watchdog_pings(systemd) == 0


def test_no_watchdog_pings_unless_systemd_asked(systemd: Systemd) -> None:
    clock = Clock()
    make_service(systemd, clock, watchdog_usec=None).startService()
    clock.pump([15.0] * 4)
    assert watchdog_pings(systemd) == 0


def test_status_is_refreshed_periodically(systemd: Systemd) -> None:
    clock = Clock()
    depth = iter(range(100))
    service = make_service(
        systemd, clock, watchdog_usec=None, status=lambda: f"new {next(depth)}", status_interval=10
    )
    service.startService()
    clock.pump([10.0, 10.0])
    assert [m["STATUS"] for m in systemd.received()] == ["new 0", "new 1", "new 2"]


def test_status_runs_through_run_and_never_piles_up(systemd: Systemd) -> None:
    """A status listing stuck on a slow disk is not asked again, and does not stop pings."""
    clock = Clock()
    calls: list[Deferred] = []

    def hanging_run(f: Callable[..., Any], *args: Any) -> Deferred:
        d: Deferred = Deferred()
        calls.append(d)
        return d

    service = make_service(systemd, clock, run=hanging_run, status_interval=10)
    service.startService()
    clock.pump([10.0] * 6)
    assert len(calls) == 1
    messages = systemd.received()
    assert not any("STATUS" in m for m in messages)
    assert sum(1 for m in messages if "WATCHDOG" in m) == 5  # at 0, 15, 30, 45, 60

    calls[0].callback("new 7")
    assert systemd.received() == [{"STATUS": "new 7"}]
    clock.advance(10.0)
    assert len(calls) == 2


def test_a_failing_status_keeps_the_timer_alive(systemd: Systemd) -> None:
    clock = Clock()
    results = iter([OSError("spool unreadable"), "new 1"])

    def status() -> str:
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return result

    make_service(systemd, clock, watchdog_usec=None, status=status).startService()
    assert systemd.received() == []
    clock.advance(10.0)
    assert systemd.received() == [{"STATUS": "new 1"}]


def test_ready_carries_the_latest_status(systemd: Systemd) -> None:
    clock = Clock()
    service = make_service(systemd, clock, watchdog_usec=None, status=lambda: "new 3, cur 0")
    service.startService()
    systemd.received()
    assert not service.is_ready
    service.ready()
    assert service.is_ready
    assert systemd.received() == [{"READY": "1", "STATUS": "new 3, cur 0"}]


def test_stopping_is_sent_and_the_watchdog_outlives_it(systemd: Systemd) -> None:
    clock = Clock()
    service = make_service(systemd, clock, status_interval=10)
    service.startService()
    service.ready()
    systemd.received()

    service.stopService()
    assert systemd.received() == [{"STOPPING": "1", "STATUS": "stopping: draining in-flight items"}]
    assert not service.is_ready
    clock.pump([15.0, 15.0])
    # Draining may take the whole drain timeout: keep pinging, but no more status updates.
    assert systemd.keys() == ["WATCHDOG", "WATCHDOG"]


def test_reload_brackets_the_action_with_reloading_and_ready(systemd: Systemd) -> None:
    clock = Clock()
    service = make_service(systemd, clock, watchdog_usec=None, status=lambda: "new 0")
    service.startService()
    service.ready()
    systemd.received()

    seen_during_action: list[dict[str, str]] = []
    pending: Deferred = Deferred()

    def action() -> Deferred:
        seen_during_action.extend(systemd.received())
        return pending

    result = service.reload(action)
    assert seen_during_action == [{"RELOADING": "1", "MONOTONIC_USEC": "42", "STATUS": "reloading"}]
    assert systemd.received() == []  # READY=1 only once the reload is over
    pending.callback(None)
    assert systemd.received() == [{"READY": "1", "STATUS": "new 0"}]
    assert result.result is True


def test_a_failed_reload_still_says_ready_with_the_error(systemd: Systemd) -> None:
    clock = Clock()
    service = make_service(systemd, clock, watchdog_usec=None)
    service.startService()
    systemd.received()

    def action() -> None:
        raise ValueError("htpasswd line 3 is malformed")

    result = service.reload(action)
    assert systemd.received() == [
        {"RELOADING": "1", "MONOTONIC_USEC": "42", "STATUS": "reloading"},
        {"READY": "1", "STATUS": "reload failed: htpasswd line 3 is malformed"},
    ]
    assert result.result is False


def test_without_systemd_the_service_does_nothing() -> None:
    clock = Clock()
    calls: list[str] = []
    service = SystemdService(
        clock,
        Notifier.from_environment({}),
        healthy=lambda: calls.append("healthy") or True,
        status=lambda: calls.append("status") or "",
        run=run_now,
    )
    service.startService()
    clock.pump([15.0] * 4)
    service.ready()
    service.stopService()
    assert calls == []
    assert clock.getDelayedCalls() == []


def test_systemd_going_away_does_not_break_the_daemon(systemd: Systemd) -> None:
    clock = Clock()
    service = make_service(systemd, clock)
    service.startService()
    systemd.sock.close()
    os.unlink(systemd.address)
    clock.pump([15.0] * 3)  # sends fail quietly (logged once)
    service.ready()
    service.stopService()
    assert isinstance(service.notifier.last_error, FileNotFoundError)
