"""Real clients against a running `spoold serve`: twine uploads, pip and uv installs,
on local storage and on S3 (moto's HTTP server)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from testlib.distbuild import wheel_members, write_sdist, write_wheel, write_zip  # noqa: E402
from testlib.s3server import storage_url  # noqa: E402,F401  (fixture: local and s3)
from testlib.serveproc import post_file, Server  # noqa: E402

from spoold.access.accounts import add_user  # noqa: E402

BIN = Path(sys.executable).parent
CLIENT_ENV = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INPUT": "1",
              "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


@pytest.fixture
def htpasswd(tmp_path) -> Path:
    path = tmp_path / "htpasswd"
    add_user(path, "alice", "correct horse", rounds=4)
    return path


@pytest.fixture
def server(tmp_path, storage_url, htpasswd):  # noqa: F811
    with Server(tmp_path, storage_url, htpasswd=htpasswd) as s:
        yield s
        assert s.stop() == 0


def twine(server: Server, *files: Path, user: str = "alice", password: str = "correct horse"):
    return subprocess.run(
        [str(BIN / "twine"), "upload", "--repository-url", server.upload, "-u", user, "-p", password,
         "--non-interactive", "--disable-progress-bar", *map(str, files)],
        capture_output=True, text=True, env=CLIENT_ENV, timeout=120)


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          env=CLIENT_ENV, timeout=120)


def test_twine_upload_then_pip_and_uv_install(server, tmp_path):
    dists = tmp_path / "dists"
    dists.mkdir()
    wheel = write_wheel(dists, "demo-pkg", "1.0")
    sdist = write_sdist(dists, "demo-pkg", "1.0")
    result = twine(server, wheel, sdist)
    assert result.returncode == 0, result.stdout + result.stderr

    page = json.load(urllib.request.urlopen(urllib.request.Request(
        server.index + "demo-pkg/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})))
    assert {f["filename"] for f in page["files"]} == {wheel.name, sdist.name}

    target = tmp_path / "installed"
    result = pip("install", "--no-deps", "--index-url", server.index, "--target", str(target), "demo-pkg==1.0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (target / "demo_pkg" / "__init__.py").exists()

    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"demo-pkg==1.0 --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}\n")
    result = pip("download", "--no-deps", "--require-hashes", "--only-binary", ":all:",
                 "--index-url", server.index, "-r", str(reqs), "-d", str(tmp_path / "dl"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "dl" / wheel.name).read_bytes() == wheel.read_bytes()

    uv_target = tmp_path / "uv-installed"
    result = subprocess.run(
        [str(BIN / "uv"), "pip", "install", "--no-deps", "--index-url", server.index,
         "--target", str(uv_target), "--python", sys.executable, "demo-pkg==1.0"],
        capture_output=True, text=True, timeout=120,
        env={**CLIENT_ENV, "UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_NO_CONFIG": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (uv_target / "demo_pkg" / "__init__.py").exists()


def test_reupload_identical_succeeds_and_different_bytes_fail(server, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    wheel = write_wheel(first, "demo", "1.0")
    assert twine(server, wheel).returncode == 0
    again = twine(server, wheel)
    assert again.returncode == 0, again.stdout + again.stderr
    other = write_wheel(second, "demo", "1.0", files={"demo/__init__.py": b"x = 2\n"})
    assert other.name == wheel.name
    result = twine(server, other)
    assert result.returncode != 0
    assert "File already exists" in result.stdout + result.stderr
    assert "409" in result.stdout + result.stderr


def test_bad_password_and_unknown_user_are_refused(server, tmp_path):
    wheel = write_wheel(tmp_path, "demo", "1.0")
    for user, password in [("alice", "wrong"), ("mallory", "correct horse")]:
        result = twine(server, wheel, user=user, password=password)
        assert result.returncode != 0
        out = result.stdout + result.stderr
        assert "401" in out or "403" in out
    assert not urllib.request.urlopen(server.index).read().count(b"demo")


def test_rejected_upload_says_why(server, tmp_path):
    members = wheel_members("tampered", "1.0")
    members["tampered/__init__.py"] = b"print('not what RECORD says')\n"
    bad = write_zip(tmp_path / "tampered-1.0-py3-none-any.whl", members)
    result = twine(server, bad)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "400" in out and "RECORD" in out, out


@pytest.mark.parametrize("storage_url", ["local"], indirect=True)
def test_a_300_mb_upload_stays_out_of_memory(tmp_path, storage_url, htpasswd):  # noqa: F811
    wheel = tmp_path / "big-1.0-py3-none-any.whl"
    payload = os.urandom(1 << 20)
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as zf:
        with zf.open("big/data.bin", "w", force_zip64=True) as f:
            for _ in range(300):
                f.write(payload)
        record = ("big/data.bin,sha256=" + _b64(hashlib.sha256(payload * 300).digest())
                  + f",{300 << 20}\n")
        zf.writestr("big-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: big\nVersion: 1.0\n")
        zf.writestr("big-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        meta_lines = "".join(
            f"big-1.0.dist-info/{n},sha256={_b64(hashlib.sha256(zf.read('big-1.0.dist-info/' + n)).digest())},"
            f"{zf.getinfo('big-1.0.dist-info/' + n).file_size}\n" for n in ("METADATA", "WHEEL"))
        zf.writestr("big-1.0.dist-info/RECORD", record + meta_lines + "big-1.0.dist-info/RECORD,,\n")
    with Server(tmp_path, storage_url, htpasswd=htpasswd, extra={"max_upload": 1 << 30}) as server:
        before = server.peak_rss_kb()
        status, body = post_file(server.upload, wheel, ("alice", "correct horse"))
        assert status == 200, body
        grown_mb = (server.peak_rss_kb() - before) / 1024
        assert grown_mb < 64, f"peak RSS grew by {grown_mb:.0f} MB for a 300 MB upload"
        assert server.stop() == 0


def _b64(digest: bytes) -> str:
    import base64
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_pages_cached_by_serve_follow_publishes_of_other_workers(tmp_path, htpasswd):
    """serve (claiming nothing) caches pages for a minute; a separate worker process on the
    same spool publishes; serve's pages show it at once (its watcher sees done/)."""
    from testlib.workerprocs import Workers, write_config

    storage = str(tmp_path / "storage")
    with Server(tmp_path, storage, htpasswd=htpasswd, extra={"threads": 0, "page_cache": 60.0}) as server, \
         Workers(tmp_path, write_config(tmp_path / "w.toml", server.spool, storage)) as workers:
        workers.start(1)
        dists = tmp_path / "dists"
        dists.mkdir()
        first = write_wheel(dists, "demo", "1.0")
        assert post_file(server.upload, first, ("alice", "correct horse"), name="demo", version="1.0")[0] == 200
        page = urllib.request.urlopen(server.index + "demo/").read()  # now cached for 60 s
        assert first.name.encode() in page
        # Uploaded here, published by the other process: visible the moment twine hears 200.
        second = write_wheel(dists, "demo", "2.0")
        assert post_file(server.upload, second, ("alice", "correct horse"), name="demo", version="2.0")[0] == 200
        assert second.name.encode() in urllib.request.urlopen(server.index + "demo/").read()
        # Dropped straight into the spool: nobody here waited for it; the watcher tells.
        third = write_wheel(dists, "demo", "3.0")
        subprocess.run([sys.executable, "-m", "spoold", "drop", "--spool", str(server.spool), str(third)],
                       check=True)
        deadline = time.monotonic() + 20
        while third.name.encode() not in urllib.request.urlopen(server.index + "demo/").read():
            assert time.monotonic() < deadline, "serve kept a stale page"
            time.sleep(0.05)
        assert workers.stop() == [0]
        assert server.stop() == 0
    log = server.log.read_text()
    assert "] published " not in log, "serve was not supposed to claim anything"


def raw_request(url: str, data: bytes, timeout: float = 60) -> bytes:
    """Send raw bytes and return the response (headers and a Content-Length body)."""
    import socket

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may hang up on us; what it said first is what counts
        got = b""
        try:
            while chunk := sock.recv(65536):
                got += chunk
                head, sep, body = got.partition(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if sep and length and len(body) >= int(length[1]):
                    break  # complete (a server draining a refused body keeps the line open)
        except OSError:
            pass
    return got


def form(boundary: str, fields: dict[str, str], file: tuple[str, bytes] | None) -> bytes:
    out = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                   for k, v in fields.items())
    if file is not None:
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{file[0]}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n").encode() + file[1] + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def post_raw(server: Server, body: bytes, content_type: str, *, auth: bool = True, extra: str = "") -> bytes:
    import base64

    headers = f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}"
    if auth:
        headers += "Authorization: Basic " + base64.b64encode(b"alice:correct horse").decode() + "\r\n"
    return raw_request(server.url, f"POST /legacy/ HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode() + body)


@pytest.mark.parametrize("storage_url", ["local"], indirect=True)
def test_hostile_requests_get_4xx_and_the_server_keeps_serving(server, tmp_path):
    wheel = write_wheel(tmp_path, "demo", "1.0")
    data = wheel.read_bytes()
    good = {":action": "file_upload", "protocol_version": "1", "name": "demo", "version": "1.0",
            "filetype": "bdist_wheel", "sha256_digest": hashlib.sha256(data).hexdigest()}
    b = "XyZ"
    ct = f"multipart/form-data; boundary={b}"
    cases = {
        "missing content": (form(b, good, None), ct, b"400"),
        "missing fields": (form(b, {":action": "file_upload"}, (wheel.name, data)), ct, b"400"),
        "malformed multipart": (b"--XyZ\r\nthis is not a part header\r\n\r\n", ct, b"400"),
        "no boundary": (form(b, good, (wheel.name, data)), "multipart/form-data", b"400"),
        "wrong digest": (form(b, {**good, "sha256_digest": "0" * 64}, (wheel.name, data)), ct, b"400"),
        "path in filename": (form(b, good, ("../../etc/" + wheel.name, data)), ct, b"400"),
        "markup in name": (form(b, {**good, "name": "<script>"}, ("<script>-1.0-py3-none-any.whl", data)), ct, b"400"),
        "unicode name": (form(b, {**good, "name": "dém"}, ("dém-1.0-py3-none-any.whl", data)), ct, b"400"),
    }
    for what, (body, content_type, status) in cases.items():
        answer = post_raw(server, body, content_type)
        assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == status, (what, answer[:300])
        head = answer.split(b"\r\n\r\n", 1)[0].lower()
        # Messages may quote what was sent; as plain text that no browser sniffs, markup is inert.
        assert b"content-type: text/plain" in head and b"x-content-type-options: nosniff" in head, what
    assert b" 401 " in post_raw(server, form(b, good, (wheel.name, data)), ct, auth=False).split(b"\r\n")[0] + b" "
    too_big = raw_request(server.url, b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nContent-Type: " + ct.encode()
                          + b"\r\nContent-Length: 99999999999\r\nConnection: close\r\n\r\n")
    assert too_big.startswith(b"HTTP/1.1 413"), too_big[:200]
    for method in ("PUT", "DELETE", "PATCH"):
        answer = raw_request(server.url, f"{method} /simple/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 405"), (method, answer[:200])
    # Still serving, and none of it reached the index.
    assert urllib.request.urlopen(server.index).status == 200
    assert twine(server, wheel).returncode == 0
    files = json.load(urllib.request.urlopen(urllib.request.Request(
        server.index + "demo/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})))["files"]
    assert [f["filename"] for f in files] == [wheel.name]


def test_pages_kept_in_memory_follow_changes_no_spool_event_announces(tmp_path, htpasswd):
    """Local storage: serve reads every page into memory at start and keeps it (no expiry
    within page_cache = 60 s), yet a yank by the CLI, which writes the storage directly and
    tells no spool, shows at once: inotify reports the changed file."""
    from spoold.index import publish
    from spoold.inspection.inspect import inspect_file
    from spoold.storage import open_storage

    root = tmp_path / "storage"
    wheel = write_wheel(tmp_path, "demo", "1.0")
    publish(open_storage(str(root)), inspect_file(wheel, wheel.name), wheel)
    with Server(tmp_path, str(root), htpasswd=htpasswd, extra={"read": "public", "page_cache": 60.0}) as server:
        def page() -> bytes:
            return urllib.request.urlopen(server.index + "demo/").read()

        deadline = time.monotonic() + 30
        while b"index pages read into memory" not in server.log.read_bytes():
            assert time.monotonic() < deadline, "serve never read the pages in"
            time.sleep(0.05)
        assert b"data-yanked" not in page()
        metrics = urllib.request.urlopen(server.url + "/metrics").read().decode()
        assert re.search(r"^spoold_page_cache_hits_total [1-9]", metrics, re.M), metrics
        yank = subprocess.run([sys.executable, "-m", "spoold", "yank", "--storage", str(root),
                               "--reason", "broken", "demo", "1.0"], capture_output=True, text=True)
        assert yank.returncode == 0, yank.stderr
        deadline = time.monotonic() + 10  # page_cache is 60 s: only the watch can tell this soon
        while b'data-yanked="broken"' not in page():
            assert time.monotonic() < deadline, "serve kept a stale page"
            time.sleep(0.05)
        unyank = subprocess.run([sys.executable, "-m", "spoold", "unyank", "--storage", str(root),
                                 "demo", "1.0"], capture_output=True, text=True)
        assert unyank.returncode == 0, unyank.stderr
        while b"data-yanked" in page():
            assert time.monotonic() < deadline, "serve kept a stale page"
            time.sleep(0.05)
        assert server.stop() == 0
