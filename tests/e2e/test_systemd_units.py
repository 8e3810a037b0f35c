"""The shipped systemd units: systemd itself accepts them, they say what the deployment
relies on, and the socket they pass is one Twisted can adopt by the name the service uses.

``systemd-analyze verify --root=DIR`` checks the files exactly as shipped: they are put in
``DIR/etc/systemd/system`` beside stub executables at the paths their Exec lines name, so
nothing about the test host (is spoold installed in /usr/local/bin?) changes the result.
"""

from __future__ import annotations

import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

UNITS_DIR = Path(__file__).resolve().parents[2] / "systemd"
UNITS = ("spoold.service", "spoold.socket", "spoold-worker@.service", "spoold.target")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")

#: Units the shipped ones depend on (implicitly or explicitly); stubs when the host has none.
_STUB_UNITS = (
    "sysinit.target", "basic.target", "shutdown.target", "sockets.target",
    "network-online.target", "multi-user.target", "system.slice",
)
_HOST_UNITS = (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))


Unit = dict[str, dict[str, list[str]]]


def parse_unit(path: Path) -> Unit:
    """Sections -> key -> every value in order (keys like SystemCallFilter= repeat)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = unit.setdefault(line.strip("[]"), {})
            continue
        assert section is not None, f"{path.name}: {line!r} outside a section"
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def one(unit: Unit, section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, f"{key}= given {len(values)} times"
    return values[0]


@pytest.fixture(scope="module")
def units() -> dict[str, Unit]:
    return {name: parse_unit(UNITS_DIR / name) for name in UNITS}


def exec_paths(unit: Unit) -> list[str]:
    """The binaries the Exec*= lines run (prefixes like '-' or '!' stripped)."""
    paths = []
    for key, values in unit.get("Service", {}).items():
        if key.startswith("Exec"):
            for value in values:
                paths.append(shlex.split(value)[0].lstrip("-@:+!"))
    return paths


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, units: dict[str, Unit]) -> Path:
    """A file system root holding the shipped units and stubs for what they run."""
    root = tmp_path_factory.mktemp("root")
    system = root / "etc/systemd/system"
    system.mkdir(parents=True)
    for name in UNITS:
        shutil.copy(UNITS_DIR / name, system / name)
    library = root / "usr/lib/systemd/system"
    host = next((p for p in _HOST_UNITS if p.is_dir()), None)
    if host is not None:
        shutil.copytree(host, library, symlinks=True)
    else:
        library.mkdir(parents=True)
    for stub in _STUB_UNITS:
        target = library / stub
        if not target.exists():
            target.write_text(f"[Unit]\nDescription=stub {stub}\n")
    for unit in units.values():
        for path in exec_paths(unit):
            stub = root / path.lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\nexit 0\n")
            stub.chmod(0o755)
    return root


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args], capture_output=True, text=True, timeout=60, check=False
    )


# -- systemd accepts them ------------------------------------------------------------------


@needs_analyze
def test_systemd_analyze_verify_accepts_every_unit(root: Path) -> None:
    # A template is verified through an instance; verify exits 0 even after warnings
    # ("Unknown key", "Failed to parse"), so any output at all is a failure.
    names = [name.replace("@.", "@1.") for name in UNITS]
    result = analyze("verify", "--man=no", f"--root={root}", *names)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


@needs_analyze
def test_verify_would_catch_a_mistake(root: Path, tmp_path: Path) -> None:
    """Guards the test above: a typo in a copy of the unit does produce output."""
    broken = root / "etc/systemd/system/spoold-broken.service"
    broken.write_text((UNITS_DIR / "spoold.service").read_text().replace("Type=notify", "Type=notfy"))
    try:
        result = analyze("verify", "--man=no", f"--root={root}", "spoold-broken.service")
    finally:
        broken.unlink()
    assert "notfy" in result.stdout + result.stderr


@needs_analyze
@pytest.mark.parametrize("name", ["spoold.service", "spoold-worker@1.service"])
def test_security_exposure_is_low(root: Path, name: str) -> None:
    result = analyze("security", "--offline=yes", f"--root={root}", "--no-pager", name)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", result.stdout)
    assert match, result.stdout + result.stderr
    exposure, verdict = float(match[1]), match[2]
    # 1.4 "OK" when written: network access (S3) and a world-readable storage tree (nginx)
    # are what is left. Anything above 2.0 means a hardening line went missing.
    assert exposure <= 2.0 and verdict == "OK", result.stdout


# -- what the deployment relies on ---------------------------------------------------------

HARDENING = {
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "NoNewPrivileges": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "ProtectProc": "invisible",
    "ProcSubset": "pid",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "DevicePolicy": "closed",
}


@pytest.mark.parametrize("name", ["spoold.service", "spoold-worker@.service"])
def test_services_notify_watchdog_and_restart(units: dict[str, Unit], name: str) -> None:
    service = units[name]["Service"]
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert service["WatchdogSec"] == ["30"]
    assert service["Restart"] == ["on-failure"]
    # Stopping drains for up to drain_timeout (30 s): systemd must not SIGKILL before.
    assert int(one(units[name], "Service", "TimeoutStopSec")) > 30
    assert "@system-service" in service["SystemCallFilter"]


@pytest.mark.parametrize("name", ["spoold.service", "spoold-worker@.service"])
def test_services_are_hardened(units: dict[str, Unit], name: str) -> None:
    service = units[name]["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], f"{name}: {key}={service.get(key)}"


@pytest.mark.parametrize("name", ["spoold.service", "spoold-worker@.service"])
def test_services_share_the_spool_as_user_and_group_spoold(units: dict[str, Unit], name: str) -> None:
    service = units[name]["Service"]
    assert service["User"] == ["spoold"] and service["Group"] == ["spoold"]
    assert "DynamicUser" not in service  # scp/rsync users need a real, shared group
    # Spool folders are setgid 2775 by the administrator; what the daemon creates (the
    # storage tree above all) must not be writable by every uploader in group spoold.
    assert service["UMask"] == ["0022"]
    assert "/var/spool/spoold" in service["ReadWritePaths"][0].split()
    assert service["StateDirectory"] == ["spoold"]
    assert service["EnvironmentFile"] == ["-/etc/spoold/env"]  # optional AWS credentials
    assert "--config /etc/spoold/spoold.toml" in one(units[name], "Service", "ExecStart")


def test_reload_is_sighup(units: dict[str, Unit]) -> None:
    assert one(units["spoold.service"], "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"


def listen_endpoints(unit: Unit) -> list[str]:
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--listen"]


def test_socket_and_service_are_paired(units: dict[str, Unit]) -> None:
    socket_unit, service = units["spoold.socket"], units["spoold.service"]
    assert one(socket_unit, "Socket", "ListenStream") == "127.0.0.1:5555"
    assert one(socket_unit, "Socket", "Service") == "spoold.service"
    assert "Accept" not in socket_unit["Socket"]  # one long-running daemon, not inetd style
    name = one(socket_unit, "Socket", "FileDescriptorName")
    assert listen_endpoints(service) == [f"systemd:domain=INET:name={name}"]
    # The service must not start before the socket exists (it would find no descriptor).
    assert "spoold.socket" in one(service, "Unit", "Requires").split()
    assert "spoold.socket" in one(service, "Unit", "After").split()
    assert units["spoold-worker@.service"]["Service"].get("Sockets") is None
    assert listen_endpoints(units["spoold-worker@.service"]) == []


def test_target_groups_server_and_workers(units: dict[str, Unit]) -> None:
    target = units["spoold.target"]
    assert {"spoold.service", "spoold.socket"} <= set(one(target, "Unit", "Wants").split())
    assert one(units["spoold-worker@.service"], "Unit", "PartOf") == "spoold.target"
    assert one(units["spoold-worker@.service"], "Install", "WantedBy") == "spoold.target"
    assert one(units["spoold.service"], "Unit", "PartOf") == "spoold.target"
    assert one(target, "Install", "WantedBy") == "multi-user.target"


# -- the socket really reaches Twisted -----------------------------------------------------

ADOPT = """
import sys
from twisted.internet import endpoints, protocol, reactor

class Hello(protocol.Protocol):
    def connectionMade(self):
        self.transport.write(b"adopted " + sys.argv[1].encode())
        self.transport.loseConnection()

    def connectionLost(self, reason):
        reactor.stop()

endpoints.serverFromString(reactor, sys.argv[1]).listen(protocol.Factory.forProtocol(Hello))
reactor.run()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def retry_until(attempt: Callable[[], socket.socket], timeout: float, what: str) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}") from None
            time.sleep(0.02)


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None,
                    reason="systemd-socket-activate is not installed")
@pytest.mark.parametrize("how", ["shipped", "index"])
def test_twisted_adopts_the_activated_socket(units: dict[str, Unit], how: str, tmp_path: Path) -> None:
    """systemd-socket-activate passes a listening socket the way systemd does (LISTEN_FDS,
    LISTEN_PID, LISTEN_FDNAMES); the endpoint string from the shipped ExecStart finds it."""
    name = one(units["spoold.socket"], "Socket", "FileDescriptorName")
    endpoint = listen_endpoints(units["spoold.service"])[0] if how == "shipped" else "systemd:domain=INET:index=0"
    port = free_port()
    script = tmp_path / "adopt.py"
    script.write_text(ADOPT)
    proc = subprocess.Popen(
        ["systemd-socket-activate", "--listen", f"127.0.0.1:{port}", f"--fdname={name}",
         sys.executable, str(script), endpoint],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        conn = retry_until(lambda: socket.create_connection(("127.0.0.1", port), timeout=20),
                           10, "systemd-socket-activate to listen")
        with conn:
            data = b""
            while chunk := conn.recv(4096):
                data += chunk
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert data == b"adopted " + endpoint.encode(), stderr
    assert proc.returncode == 0, stderr
