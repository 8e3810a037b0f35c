"""Start-up failures are failures: one line on stderr, the documented status, nothing left
running. And socket activation works without LISTEN_FDNAMES."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from testlib.nginxserver import free_port
from testlib.s3server import moto_server  # noqa: F401  (fixture)

CONFIG_STATUS = 78
TEMPFAIL_STATUS = 75


def spoold(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spoold", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def serve(tmp_path: Path, *listen: str, storage: str | None = None,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    args = ["serve", "--spool", str(tmp_path / "spool"), "--storage", storage or str(tmp_path / "store")]
    for endpoint in listen or ("tcp:0:interface=127.0.0.1",):
        args += ["--listen", endpoint]
    return spoold(*args, env=env)


def assert_one_line(result: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    assert result.returncode == status, (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("spoold serve: error: ")
    for word in words:
        assert word in result.stderr, result.stderr


def test_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(tmp_path, f"tcp:{port}:interface=127.0.0.1")
    assert_one_line(result, CONFIG_STATUS, "Address already in use", "choose another port")


def test_an_interface_the_host_does_not_have(tmp_path: Path) -> None:
    # TEST-NET-1 (RFC 5737): never an address of this host; binding fails locally.
    result = serve(tmp_path, "tcp:0:interface=192.0.2.1")
    assert_one_line(result, CONFIG_STATUS, "not an address of this host")


@pytest.mark.parametrize("endpoint", ["tcpx:99", "tcp:notaport", "tcp:5555:bogus=1", ""])
def test_a_malformed_endpoint(tmp_path: Path, endpoint: str) -> None:
    result = serve(tmp_path, endpoint)
    assert_one_line(result, CONFIG_STATUS, "--listen")
    assert not (tmp_path / "spool").exists(), "the endpoint is checked before anything is made"


def test_the_second_endpoint_failing_closes_the_first(tmp_path: Path) -> None:
    first = free_port()
    result = serve(tmp_path, f"tcp:{first}:interface=127.0.0.1", "tcp:0:interface=192.0.2.1")
    assert_one_line(result, CONFIG_STATUS, "192.0.2.1")
    with socket.socket() as again:  # the first port was released, not leaked
        again.bind(("127.0.0.1", first))


@pytest.mark.parametrize("endpoint", ["systemd:domain=INET:index=0", "systemd:domain=INET:name=http"])
def test_systemd_endpoints_without_socket_activation(tmp_path: Path, endpoint: str) -> None:
    result = serve(tmp_path, endpoint, env={"LISTEN_FDS": "", "LISTEN_PID": ""})
    assert_one_line(result, CONFIG_STATUS, "systemd passed no sockets", "spoold.socket")


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None,
                    reason="systemd-socket-activate is not installed")
def test_socket_activation_by_index_needs_no_names(tmp_path: Path) -> None:
    """systemd-socket-activate without --fdname sets no LISTEN_FDNAMES (nor does systemd
    before 227): Twisted refuses the descriptors then; spoold adopts them by index."""
    port = free_port()
    proc = subprocess.Popen(
        ["systemd-socket-activate", "--listen", f"127.0.0.1:{port}", sys.executable, "-m",
         "spoold", "serve", "--spool", str(tmp_path / "spool"), "--storage", str(tmp_path / "store"),
         "--listen", "systemd:domain=INET:index=0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as r:
                    assert r.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out


def test_a_missing_bucket(tmp_path: Path, moto_server: str) -> None:  # noqa: F811
    result = serve(tmp_path, storage="s3://no-such-bucket-at-start/pypi")
    assert_one_line(result, CONFIG_STATUS, "the bucket does not exist")
    for command in (["reindex"], ["yank", "demo", "1.0"], ["remove", "demo", "demo-1.0.tar.gz"]):
        other = spoold(command[0], "--storage", "s3://no-such-bucket-at-start/pypi", *command[1:])
        assert other.returncode == CONFIG_STATUS and other.stderr.count("\n") == 1, other.stderr
        assert "the bucket does not exist" in other.stderr


def test_an_unreachable_store_is_a_temporary_failure(tmp_path: Path) -> None:
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_ENDPOINT_URL_S3": "",
           "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_MAX_ATTEMPTS": "1"}
    env["AWS_ENDPOINT_URL_S3"] = env["AWS_ENDPOINT_URL"]
    result = spoold("reindex", "--storage", "s3://bucket/pypi", env=env)
    assert result.returncode == TEMPFAIL_STATUS and result.stderr.count("\n") == 1, result.stderr
    assert "run it again" in result.stderr


def test_a_storage_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "store").write_text("not a directory")
    assert_one_line(serve(tmp_path), CONFIG_STATUS, "not a directory")
