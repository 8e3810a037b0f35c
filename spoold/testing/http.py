"""An in-memory HTTP/1.1 client for a Twisted site: raw bytes in, parsed responses out.

It drives the site's real channel (``site.buildProtocol``) over a ``StringTransport``, so
the whole HTTP stack runs (request parsing, body buffering and limits, resources) with no
socket and no global reactor. Build the site on a ``MemoryReactorClock`` and with a
:mod:`spoold.testing.run` stand-in for the thread pool, and every request is answered
inside :meth:`Connection.send`; what the site defers (a timer on the clock, a call queued
on a :class:`~spoold.testing.run.ManualRun`) is answered when the test moves it on::

    site = build_site(..., reactor=MemoryReactorClock(), threadpool=None, run=run_now)
    r = request(site, "GET", "/simple/", {"Accept": "application/vnd.pypi.simple.v1+json"})
    assert r.status == 200 and r.header("vary") == "Accept"

    conn = Connection(site)  # keep-alive, pipelining, bodies in pieces, disconnects
    conn.request("GET", "/simple/")
    conn.request("HEAD", "/health")
    assert [r.status for r in conn.responses()] == [200, 200]

Responses are parsed from exactly the bytes the server wrote (``Content-Length`` or
chunked bodies, several responses in a row), so a test sees what a client would see.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionLost
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

__all__ = [
    "Connection",
    "IncompleteResponse",
    "Response",
    "basic_auth",
    "parse_responses",
    "raw_request",
    "request",
]

#: The client address requests come from (the site logs it).
PEER = IPv4Address("TCP", "127.0.0.1", 40000)

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


class IncompleteResponse(ValueError):
    """The bytes the server wrote end inside a response (or hold none where one was due)."""


@dataclass(frozen=True, slots=True)
class Response:
    """One response as the client received it."""

    status: int
    #: The reason phrase of the status line (twine shows it to the uploader).
    reason: str
    #: Every header line in order, names lowercased.
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` (any case), or None."""
        values = self.header_values(name)
        return values[-1] if values else None

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (any case), in order."""
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    @property
    def text(self) -> str:
        """The body as UTF-8."""
        return self.body.decode("utf-8")


def parse_responses(raw: bytes, methods: Sequence[str] = ()) -> list[Response]:
    """Split the bytes a server wrote into responses.

    ``methods`` are the methods of the requests answered, in order, where known: the
    answer to a HEAD has headers only. Raises :class:`IncompleteResponse` if the bytes
    end inside a response's headers or before its ``Content-Length``/last chunk.
    """
    out: list[Response] = []
    while raw:
        head_end = raw.find(b"\r\n\r\n")
        if head_end < 0:
            raise IncompleteResponse(f"the response headers never end: {raw[:200]!r}")
        lines = raw[:head_end].decode("latin-1").split("\r\n")
        raw = raw[head_end + 4:]
        _version, status, *reason = lines[0].split(" ", 2)
        headers = tuple(
            (name.strip().lower(), value.strip())
            for name, _, value in (line.partition(":") for line in lines[1:])
        )
        response = Response(int(status), reason[0] if reason else "", headers, b"")
        head = len(out) < len(methods) and methods[len(out)].upper() == "HEAD"
        if head or response.status in (204, 304) or 100 <= response.status < 200:
            body = b""
        elif response.header("content-length") is not None:
            n = int(response.header("content-length") or 0)
            if len(raw) < n:
                raise IncompleteResponse(
                    f"the body ends after {len(raw)} of its {n} bytes (Content-Length)")
            body, raw = raw[:n], raw[n:]
        elif (response.header("transfer-encoding") or "").lower() == "chunked":
            body, raw = _dechunk(raw)
        else:  # delimited by the end of the connection
            body, raw = raw, b""
        out.append(Response(response.status, response.reason, headers, body))
    return out


def _dechunk(raw: bytes) -> tuple[bytes, bytes]:
    chunks = []
    while True:
        size_end = raw.find(b"\r\n")
        if size_end < 0:
            raise IncompleteResponse("a chunked body ends before its last chunk")
        size = int(raw[:size_end].split(b";")[0], 16)
        raw = raw[size_end + 2:]
        if size == 0:
            trailer_end = raw.find(b"\r\n")
            if trailer_end < 0:
                raise IncompleteResponse("a chunked body ends inside its trailer")
            return b"".join(chunks), raw[trailer_end + 2:]
        if len(raw) < size + 2:
            raise IncompleteResponse("a chunked body ends inside a chunk")
        chunks.append(raw[:size])
        raw = raw[size + 2:]


def raw_request(
    method: str,
    path: str,
    headers: Headers = (),
    body: bytes = b"",
    *,
    length: bool = True,
) -> bytes:
    """The bytes of an HTTP/1.1 request: ``Host`` added if missing, and ``Content-Length``
    for a body unless ``length`` is False or a length or transfer coding is given."""
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    names = {k.lower() for k, _ in items}
    if "host" not in names:
        items.insert(0, ("Host", "index.test"))
    if body and length and "content-length" not in names and "transfer-encoding" not in names:
        items.append(("Content-Length", str(len(body))))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n"
    return head.encode("latin-1") + body


def basic_auth(user: str, password: str) -> str:
    """An ``Authorization`` header value with Basic credentials."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class Connection:
    """One client connection to ``site``: send bytes, read the responses so far."""

    def __init__(self, site: Any, *, peer: IPv4Address = PEER) -> None:
        self.site = site
        #: What the server wrote is ``transport.value()``.
        self.transport = StringTransport(peerAddress=peer)
        #: The server side: the channel ``site.buildProtocol`` made for this connection.
        self.channel = site.buildProtocol(peer)
        self.channel.makeConnection(self.transport)
        self._methods: list[str] = []

    def send(self, data: bytes) -> None:
        """Bytes from the client (any part of one or more requests)."""
        self.channel.dataReceived(data)

    def request(self, method: str, path: str, headers: Headers = (), body: bytes = b"") -> None:
        """Send a whole request (see :func:`raw_request`); its method is remembered, so
        :meth:`responses` knows which answers are to HEAD and have no body."""
        self._methods.append(method)
        self.send(raw_request(method, path, headers, body))

    def responses(self, methods: Sequence[str] | None = None) -> list[Response]:
        """Every response the server wrote so far, in order (see :func:`parse_responses`).

        ``methods``: of the requests answered, for bytes sent with :meth:`send`; by
        default those sent with :meth:`request`.
        """
        return parse_responses(self.transport.value(), self._methods if methods is None else methods)

    def lose(self) -> None:
        """The client goes away (the connection is lost, as on a reset)."""
        self.channel.connectionLost(Failure(ConnectionLost("the test client went away")))

    @property
    def closed(self) -> bool:
        """The server closed (or aborted) the connection."""
        return bool(self.transport.disconnecting or self.transport.disconnected)


def request(site: Any, method: str, path: str, headers: Headers = (), body: bytes = b"") -> Response:
    """One request on a new connection, and its response.

    Raises :class:`IncompleteResponse` if the site has not answered (yet): the answer may
    wait for a call queued on a ManualRun or a timer on the clock; use a
    :class:`Connection` to answer those first.
    """
    conn = Connection(site)
    conn.request(method, path, headers, body)
    responses = conn.responses()
    if len(responses) != 1:
        raise IncompleteResponse(
            f"{method} {path} got {len(responses)} responses, not one"
            + ("; is a Run call or a timer still pending?" if not responses else "")
        )
    return responses[0]
