"""`spoold serve` under a stand-in for systemd: a datagram socket as NOTIFY_SOCKET."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from testlib.distbuild import write_wheel  # noqa: E402
from testlib.serveproc import post_file  # noqa: E402

from spoold.access.accounts import add_user  # noqa: E402


class FakeSystemd:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="sd-")  # short: AF_UNIX paths are limited
        self.path = f"{self.dir}/notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[dict[str, str]] = []

    def wait_for(self, key: str, value: str | None = None, timeout: float = 30) -> dict[str, str]:
        """Read datagrams until one sets ``key`` (to ``value``); bounded by ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                raise AssertionError(f"no {key}={value} from spoold; got {self.messages}") from None
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append(fields)
            if key in fields and (value is None or fields[key] == value):
                return fields


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def systemd():
    fake = FakeSystemd()
    yield fake
    fake.sock.close()


def start(tmp_path: Path, systemd: FakeSystemd, port: int, htpasswd: Path) -> subprocess.Popen:
    env = {"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "300000", "PATH": "/usr/bin:/bin"}
    return subprocess.Popen(
        [sys.executable, "-m", "spoold", "serve", "--spool", str(tmp_path / "spool"),
         "--storage", str(tmp_path / "storage"), "--listen", f"tcp:{port}:interface=127.0.0.1",
         "--htpasswd", str(htpasswd)],
        stdout=open(tmp_path / "serve.log", "wb"), stderr=subprocess.STDOUT, env=env)


def test_ready_after_listening_watchdog_and_stopping(tmp_path, systemd):
    htpasswd = tmp_path / "htpasswd"
    add_user(htpasswd, "alice", "pw-alice", rounds=4)
    port = free_port()
    proc = start(tmp_path, systemd, port, htpasswd)
    try:
        ready = systemd.wait_for("READY", "1")
        assert accepts(port), "READY=1 came before the HTTP port accepted connections"
        # Queue depths ride with READY once the first count is in, else in a STATUS= soon.
        # READY=1 says "ready" when the count is still on the pool (behind the start-up
        # page reads); a STATUS= with the depths follows.
        status = ready
        while "new " not in status.get("STATUS", ""):
            assert status.get("STATUS") in (None, "ready"), status
            status = systemd.wait_for("STATUS")
        assert "new 0" in status["STATUS"]
        pings = 0
        while pings < 4:
            systemd.wait_for("WATCHDOG", "1", timeout=10)
            pings += 1
        proc.send_signal(15)
        systemd.wait_for("STOPPING", "1")
        assert proc.wait(60) == 0
    finally:
        proc.kill()
        proc.wait()


def test_sighup_reloads_the_htpasswd_file(tmp_path, systemd):
    htpasswd = tmp_path / "htpasswd"
    add_user(htpasswd, "alice", "pw-alice", rounds=4)
    port = free_port()
    proc = start(tmp_path, systemd, port, htpasswd)
    url = f"http://127.0.0.1:{port}/legacy/"
    dists = tmp_path / "dists"
    dists.mkdir()
    try:
        systemd.wait_for("READY", "1")
        wheel = write_wheel(dists, "demo", "1.0")
        assert post_file(url, wheel, ("bob", "pw-bob"), name="demo", version="1.0")[0] == 401

        add_user(htpasswd, "bob", "pw-bob", rounds=4)
        proc.send_signal(1)
        systemd.wait_for("RELOADING", "1")
        systemd.wait_for("READY", "1")
        assert post_file(url, wheel, ("bob", "pw-bob"), name="demo", version="1.0")[0] == 200

        htpasswd.write_text("".join(line + "\n" for line in htpasswd.read_text().splitlines()
                                    if not line.startswith("alice:")))
        proc.send_signal(1)
        systemd.wait_for("RELOADING", "1")
        systemd.wait_for("READY", "1")
        wheel2 = write_wheel(dists, "demo", "2.0")
        assert post_file(url, wheel2, ("alice", "pw-alice"), name="demo", version="2.0")[0] == 401
        assert proc.poll() is None, "SIGHUP must not stop the server"
    finally:
        proc.send_signal(15)
        proc.wait(60)
