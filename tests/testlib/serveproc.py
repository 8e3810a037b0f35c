"""Run a real ``spoold serve`` on an ephemeral loopback port for end-to-end tests."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

_LISTENING = re.compile(rb"serving the index at (http://127\.0\.0\.1:\d+)/simple/")


def _toml(value: object) -> str:
    """A setting's value in TOML (strings, numbers, booleans and lists of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


class Server:
    """``spoold serve`` in a child process; ``url`` is its base URL once it listens."""

    def __init__(self, tmp: Path, storage: str, *, htpasswd: Path | None = None,
                 env: dict[str, str] | None = None, extra: dict[str, object] | None = None) -> None:
        self.spool = tmp / "spool"
        self.storage = storage
        self.log = tmp / "serve.log"
        config = tmp / "serve.toml"
        self.config = config
        lines = [f'spool = "{self.spool}"', f'storage = "{storage}"',
                 'listen = ["tcp:0:interface=127.0.0.1"]', "scan_interval = 0.5",
                 f'data_dir = "{tmp / "data"}"']
        extra = dict(extra or {})
        # The tests of 0.1 read without credentials and upload as users with every right;
        # the access tests ask for private reads and roles explicitly.
        extra.setdefault("read", "public")
        extra.setdefault("admins", ["alice", "uploader", "bob"])
        if htpasswd is not None:
            lines.append(f'htpasswd = "{htpasswd}"')
        lines += [f"{k} = {_toml(v)}" for k, v in extra.items()]
        config.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spoold", "serve", "--config", str(config)],
            stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        self.url = self._wait_for_url()

    def _wait_for_url(self, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = _LISTENING.search(self.log.read_bytes())
            if m:
                return m[1].decode()
            if self.proc.poll() is not None:
                raise RuntimeError(f"spoold serve exited: {self.log.read_text()}")
            time.sleep(0.05)
        raise RuntimeError(f"spoold serve did not listen: {self.log.read_text()}")

    @property
    def index(self) -> str:
        return f"{self.url}/simple/"

    @property
    def upload(self) -> str:
        return f"{self.url}/legacy/"

    def peak_rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def post_file(url: str, path: Path, auth: tuple[str, str], *, name: str = "big",
              version: str = "1.0", source: str | None = None) -> tuple[int, bytes]:
    """POST a twine-style multipart form, streaming the file from disk (from the local
    address ``source``, e.g. 127.0.0.2, to look like another client)."""
    import base64
    boundary = "spoold-test-boundary"
    sha256 = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha256.update(chunk)
    fields = {":action": "file_upload", "protocol_version": "1", "name": name, "version": version,
              "filetype": "bdist_wheel", "pyversion": "py3", "metadata_version": "2.1",
              "sha256_digest": sha256.hexdigest()}
    head = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                   for k, v in fields.items())
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{path.name}"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n")
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = len(head.encode()) + path.stat().st_size + len(tail)

    def body():
        yield head.encode()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                yield chunk
        yield tail

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300,
                                      source_address=(source, 0) if source else None)
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    conn.request("POST", parts.path, body=body(), headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(size),
        "Authorization": f"Basic {token}"})
    response = conn.getresponse()
    return response.status, response.read()
