"""Fakes and an in-memory HTTP client for the web tests (imported by ``test_web_*``).

The client drives a real :class:`~spoold.web.site.SpooldSite` channel over a
``StringTransport`` with raw bytes, on a ``MemoryReactorClock``: the whole HTTP stack
runs (parsing, body buffering, limits, resources), synchronously, with no socket and no
global reactor. Blocking calls run synchronously through :func:`run_now`.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from requests_toolbelt import MultipartEncoder
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.testing import MemoryReactorClock, StringTransport

from spoold.config import Settings
from spoold.spool.outcome import Outcome, Result
from spoold.storage.base import Page, StorageUnavailable, StoredObject
from spoold.testing.dists import build_wheel
from spoold.web.site import SpooldSite, WebPolicy, build_site


def run_now(f: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
    """A ``run`` that calls at once (the thread pool of the unit tests)."""
    return maybeDeferred(f, *args, **kwargs)


class ManualRun:
    """A ``run`` that queues calls until the test says go: proves the work happens off
    the request's path, and lets a test act (disconnect) while a call is "in a thread"."""

    def __init__(self) -> None:
        self.queue: list[tuple[Any, tuple[Any, ...], dict[str, Any], Deferred[Any]]] = []

    def __call__(self, f: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.queue.append((f, args, kwargs, d))
        return d

    def names(self) -> list[str]:
        return [getattr(f, "__name__", repr(f)) for f, _, _, _ in self.queue]

    def step(self) -> None:
        f, args, kwargs, d = self.queue.pop(0)
        maybeDeferred(f, *args, **kwargs).chainDeferred(d)

    def flush(self) -> None:
        while self.queue:
            self.step()


class MemoryStorage:
    """A :class:`~spoold.web.StorageReader`: pages in memory, files on disk or "in S3"."""

    def __init__(self, root: Path, *, s3: bool = False) -> None:
        self.root = root
        self.s3 = s3
        self.pages: dict[str, bytes] = {}
        self.files: dict[str, bytes] = {}
        self.down: str | None = None
        self.reads: list[str] = []

    def _check(self) -> None:
        if self.down:
            raise StorageUnavailable(self.down)

    def add_file(self, key: str, data: bytes) -> None:
        self.files[key] = data
        if not self.s3:
            path = self.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def read_page(self, key: str) -> Page | None:
        self._check()
        self.reads.append(key)
        data = self.pages.get(key)
        if data is None:
            return None
        return Page(data, '"' + hashlib.sha256(data).hexdigest()[:16] + '"')

    def local_path(self, key: str) -> Path | None:
        self._check()
        if self.s3 or key not in self.files:
            return None
        return self.root / key

    def presigned_url(self, key: str, expires: int = 300) -> str | None:
        self._check()
        if not self.s3:
            return None
        return f"https://bucket.example/{key}?X-Amz-Expires={expires}&X-Amz-Signature=abc"

    def stat(self, key: str) -> StoredObject | None:
        self._check()
        data = self.files.get(key)
        if data is None:
            return None
        return StoredObject(key, len(data), datetime(2024, 1, 2, tzinfo=UTC))

    @contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        self._check()
        if key not in self.files:
            raise FileNotFoundError(key)
        yield io.BytesIO(self.files[key])

    def ping(self) -> None:
        self._check()


class FakeWaiter:
    """``wait_for`` hands out Deferreds the test fires; ``auto`` answers at once."""

    def __init__(self, auto: Outcome | None = None) -> None:
        self.auto = auto
        self.waiting: dict[str, Deferred[Outcome]] = {}
        self.cancelled: list[str] = []

    def wait_for(self, item: str) -> Deferred[Outcome]:
        def cancel(d: Deferred[Outcome]) -> None:
            self.cancelled.append(item)

        d: Deferred[Outcome] = Deferred(cancel)
        self.waiting[item] = d
        if self.auto is not None:
            from dataclasses import replace

            d.callback(replace(self.auto, item=item))
        return d

    def resolve(self, item: str, result: Result = Result.PUBLISHED, **kwargs: Any) -> None:
        filename = item.split(",", 1)[-1]
        self.waiting.pop(item).callback(Outcome(item, filename, result, **kwargs))


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[-1] if values else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def parse_responses(raw: bytes, *, head: bool = False) -> list[Response]:
    """Split the bytes a server wrote into responses (Content-Length or chunked)."""
    out: list[Response] = []
    while raw:
        head_end = raw.index(b"\r\n\r\n")
        lines = raw[:head_end].decode("latin-1").split("\r\n")
        raw = raw[head_end + 4:]
        _version, status, *reason = lines[0].split(" ", 2)
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        code = int(status)
        body = b""
        if head or code in (204, 304) or 100 <= code < 200:
            pass
        elif "content-length" in headers:
            n = int(headers["content-length"][-1])
            body, raw = raw[:n], raw[n:]
        elif headers.get("transfer-encoding", [""])[-1].lower() == "chunked":
            chunks = []
            while True:
                size_end = raw.index(b"\r\n")
                size = int(raw[:size_end].split(b";")[0], 16)
                raw = raw[size_end + 2:]
                if size == 0:
                    raw = raw[raw.index(b"\r\n") + 2:]
                    break
                chunks.append(raw[:size])
                raw = raw[size + 2:]
            body = b"".join(chunks)
        else:
            body, raw = raw, b""
        out.append(Response(code, reason[0] if reason else "", headers, body))
    return out


@dataclass
class Connection:
    site: SpooldSite
    transport: StringTransport = field(default_factory=StringTransport)

    def __post_init__(self) -> None:
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        self.channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        self.channel.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.channel.dataReceived(data)

    def responses(self, *, head: bool = False) -> list[Response]:
        return parse_responses(self.transport.value(), head=head)

    @property
    def closed(self) -> bool:
        return self.transport.disconnecting or self.transport.disconnected


def raw_request(
    method: str,
    path: str,
    headers: Mapping[str, str] | list[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    length: bool = True,
) -> bytes:
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    names = {k.lower() for k, _ in items}
    if "host" not in names:
        items.insert(0, ("Host", "index.test"))
    if body and length and "content-length" not in names and "transfer-encoding" not in names:
        items.append(("Content-Length", str(len(body))))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n"
    return head.encode("latin-1") + body


def request(site: SpooldSite, method: str, path: str, headers: Any = (), body: bytes = b"") -> Response:
    conn = Connection(site)
    conn.send(raw_request(method, path, headers, body))
    responses = conn.responses(head=method == "HEAD")
    assert len(responses) == 1, responses
    return responses[0]


def make_site(
    tmp_path: Path,
    spool: Any,
    *,
    storage: Any = None,
    waiter: Any = None,
    auth: Any = None,
    max_upload: int = 1 << 30,
    policy: WebPolicy | None = None,
    reactor: MemoryReactorClock | None = None,
    run: Any = run_now,
) -> SpooldSite:
    return build_site(
        storage_reader=storage if storage is not None else MemoryStorage(tmp_path / "storage"),
        spool=spool,
        waiter=waiter if waiter is not None else FakeWaiter(),
        auth=auth,
        settings=Settings(spool=str(spool.root), storage=str(tmp_path / "storage"), max_upload=max_upload),
        reactor=reactor if reactor is not None else MemoryReactorClock(),
        threadpool=None,
        policy=policy,
        run=run,
    )


def upload_form(
    filename: str,
    data: bytes,
    *,
    name: str | None = None,
    version: str | None = None,
    filetype: str | None = None,
    extra: list[tuple[str, Any]] | None = None,
    drop: tuple[str, ...] = (),
) -> tuple[bytes, str]:
    """A body and Content-Type exactly as twine 7 builds them (requests-toolbelt)."""
    guessed_name, guessed_version = filename.split("-")[:2]
    base: list[tuple[str, Any]] = [
        ("metadata_version", "2.1"),
        ("name", name if name is not None else guessed_name),
        ("version", version if version is not None else guessed_version.removesuffix(".tar.gz")),
        ("classifiers", "Programming Language :: Python :: 3"),
        ("classifiers", "License :: OSI Approved :: MIT License"),
        ("description", "# A readme\n\n" + "long text " * 12_000),
        ("pyversion", "py3" if filename.endswith(".whl") else "source"),
        ("filetype", filetype if filetype is not None else
         ("bdist_wheel" if filename.endswith(".whl") else "sdist")),
        ("sha256_digest", hashlib.sha256(data).hexdigest()),
        ("blake2_256_digest", hashlib.blake2b(data, digest_size=32).hexdigest()),
        (":action", "file_upload"),
        ("protocol_version", "1"),
    ]
    fields = [(k, v) for k, v in base if k not in drop] + list(extra or [])
    if "content" not in drop:  # last, as twine sends it
        fields.append(("content", (filename, io.BytesIO(data), "application/octet-stream")))
    encoder = MultipartEncoder(fields)
    return encoder.to_string(), encoder.content_type


def wheel(name: str = "demo", version: str = "1.0") -> tuple[str, bytes]:
    filename, data, _ = build_wheel(name, version)
    return filename, data


def basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
