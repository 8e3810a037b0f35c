"""A real `spoold serve` against hostile clients: nobody without a valid password can make
it store a body, and a real upload goes through meanwhile.

The spool is on a small tmpfs (20 MB; CI runs as root), so a body the server wrongly
buffered would show as used space, and would make the real upload fail with 503 "No
space left on device", which is how the defect was found.
"""

from __future__ import annotations

import base64
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from testlib.distbuild import write_wheel
from testlib.serveproc import Server, post_file
from testlib.smallfs import small_filesystem

from spoold.access.accounts import add_user

AUTH = ("alice", "correct horse")
WRONG = "hunter2-guessed"
MB = 1 << 20


def used(folder: Path) -> int:
    st = os.statvfs(folder)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def connect(server: Server) -> socket.socket:
    parts = urlsplit(server.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def read_for(sock: socket.socket, seconds: float) -> bytes:
    """What the server sent, up to the head of a final (not 100) answer or ``seconds``."""
    got = b""
    deadline = time.monotonic() + seconds
    while not _has_final_head(got) and time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except OSError:  # a timeout, or the server hung up
            break
        if not chunk:
            break
        got += chunk
    return got


def _has_final_head(data: bytes) -> bool:
    while data.startswith(b"HTTP/1.1 100 ") and b"\r\n\r\n" in data:
        data = data.split(b"\r\n\r\n", 1)[1]
    return b"\r\n\r\n" in data


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    add_user(path, *AUTH, rounds=4)
    return path


@pytest.mark.parametrize("expect", [True, False], ids=["expect-100-continue", "no-expect"])
def test_a_wrong_password_stores_nothing_and_a_real_upload_goes_through(tmp_path: Path, htpasswd: Path,
                                                                         expect: bool) -> None:
    with small_filesystem(tmp_path / "spool", "20m") as spool, \
         Server(tmp_path, str(tmp_path / "storage"), htpasswd=htpasswd) as server:
        before = used(spool)
        bad = connect(server)
        token = base64.b64encode(b"alice:" + WRONG.encode()).decode()
        bad.sendall(
            b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            + f"Authorization: Basic {token}\r\nContent-Length: {30 * MB}\r\n".encode()
            + (b"Expect: 100-continue\r\n" if expect else b"") + b"\r\n")
        # A hostile client does not wait for "100 Continue": 18 MB of the 30 it declared.
        bad.sendall(b"x" * (18 * MB))
        answer = read_for(bad, 5.0)  # (before the fix: nothing but "100 Continue")
        grown = used(spool) - before
        # Meanwhile (the bad connection still open, mid-body) a real upload succeeds.
        wheel = write_wheel(tmp_path, "demo", "1.0", files={"demo/__init__.py": os.urandom(3 * MB)})
        status, body = post_file(server.upload, wheel, AUTH, name="demo", version="1.0")
        assert status == 200, body  # (before the fix: 503 "No space left on device")
        assert b"published" in body
        assert grown < 2 * MB, f"the spool's filesystem grew by {grown} bytes for a refused body"
        assert answer.startswith(b"HTTP/1.1 401 "), answer[:300]
        assert b"100 Continue" not in answer
        assert b"www-authenticate: basic" in answer.lower()
        bad.close()
        assert server.stop() == 0
    log = server.log.read_text()
    assert "No space left" not in log
    assert "correct horse" not in log and WRONG not in log  # no password is ever logged


def test_a_good_password_with_expect_gets_100_continue_after_the_check(tmp_path: Path, htpasswd: Path) -> None:
    with small_filesystem(tmp_path / "spool", "20m"), \
         Server(tmp_path, str(tmp_path / "storage"), htpasswd=htpasswd) as server:
        sock = connect(server)
        token = base64.b64encode(":".join(AUTH).encode()).decode()
        sock.sendall(
            b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            + f"Authorization: Basic {token}\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n".encode())
        sock.settimeout(30)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"0123456789")
        assert read_for(sock, 10.0).startswith(b"HTTP/1.1 400 ")  # not a form: but read and judged
        sock.close()
        assert server.stop() == 0


def test_a_spool_below_its_reserve_answers_507_before_the_body(tmp_path: Path, htpasswd: Path) -> None:
    with small_filesystem(tmp_path / "spool", "20m") as spool, \
         Server(tmp_path, str(tmp_path / "storage"), htpasswd=htpasswd,
                extra={"spool_reserve": 8 * MB}) as server:
        filler = spool / "filler"
        filler.write_bytes(b"\0" * (13 * MB))  # about 7 MB left: below the reserve
        wheel = write_wheel(tmp_path, "demo", "1.0")
        status, body = post_file(server.upload, wheel, AUTH, name="demo", version="1.0")
        assert status == 507, body
        assert b"short of space" in body
        filler.unlink()
        status, body = post_file(server.upload, wheel, AUTH, name="demo", version="1.0")
        assert status == 200, body
        assert server.stop() == 0


def test_headers_too_large_are_answered_431(tmp_path: Path, htpasswd: Path) -> None:
    with Server(tmp_path, str(tmp_path / "storage"), htpasswd=htpasswd) as server:
        sock = connect(server)
        sock.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * 20_000 + b"\r\n\r\n")
        assert read_for(sock, 10.0).startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
        sock.close()
        assert server.stop() == 0
