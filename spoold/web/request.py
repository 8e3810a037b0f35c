"""The request and channel of spoold's site: bodies kept on disk, slow clients cut off.

* **Bodies go to the spool's** ``tmp/``. Twisted buffers a request body in memory below
  100 KB and in a ``TemporaryFile`` in ``$TMPDIR`` above; :class:`SpooldRequest` puts it
  in an anonymous temporary file in ``tmp/`` instead (the same filesystem as the spool, so
  the space an upload needs is the space the operator gave the spool), and keeps only
  small bodies in memory.
* **Oversize bodies are refused early.** A declared ``Content-Length`` above the limit is
  answered with 413 before the body is read; a chunked body is refused the moment it
  passes the limit. The rest of the body is read and dropped (up to ``drain_limit``, then
  the connection is cut) so that clients that send the whole body before reading, as
  requests does, see the 413 instead of a reset connection.
* **Slow clients time out.** :class:`SpooldChannel` gives the request line and headers a
  deadline however slowly the bytes trickle (slowloris); the idle timeout is Twisted's.

Both need to know things about a request before Twisted hands it over with its body: the
request line (to refuse an upload from its headers) and whether the client left. Twisted
keeps those in private attributes (``HTTPChannel._command``, ``Request._disconnected``);
spoold records its own copies through overridable methods and public API instead:

* the request line: :meth:`SpooldChannel.lineReceived` sees every line and, when a line
  made Twisted create a request, stores it on that request (:attr:`SpooldRequest.request_line`);
* disconnects: :attr:`SpooldRequest.gone`, set by the request's own ``notifyFinish()``
  errback (Twisted fires it when the connection is lost);
* whether a response is under way (the header deadline must not run meanwhile): set in
  ``allContentReceived``, cleared in ``requestDone``.

``tests/adapter/test_web_request.py`` checks each of these against the installed
Twisted, so a Twisted release that changes when these methods run fails loudly there.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger
from twisted.web.http import HTTPChannel
from twisted.web.server import Request

from spoold.http.headers import RequestLine, parse_request_line, reason_phrase

if TYPE_CHECKING:
    from spoold.web.site import SpooldSite

__all__ = ["SpooldChannel", "SpooldRequest", "peer_host"]

log = Logger()


class SpooldRequest(Request):
    """A request whose body goes to the site's body folder, within the site's limit."""

    #: The request line, known from the moment it arrives (Twisted's own ``method`` and
    #: ``uri`` are set only once the body is in); None if it was malformed.
    request_line: RequestLine | None = None
    #: True once the client went away: writing or finishing then raises in Twisted.
    gone = False
    _refused = False
    _received = 0
    _drained = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notifyFinish().addErrback(self._lost)

    def _lost(self, _reason: object) -> None:
        self.gone = True

    @property
    def _site(self) -> SpooldSite:
        return self.channel.site  # type: ignore[no-any-return]

    def gotLength(self, length: int | None) -> None:
        site = self._site
        if length is not None and length > site.max_body:
            self.content = io.BytesIO()
            self._refuse(413, _too_large(site.max_body, length), code="too-large")
            return
        refusal = site.early_refusal(self) if length != 0 else None
        if refusal is not None:
            self.content = io.BytesIO()
            self._refuse(refusal.status, refusal.message, reason=refusal.reason,
                         headers=refusal.headers, code=refusal.code)
            return
        try:
            if length is not None and length < site.web.memory_body:
                self.content = io.BytesIO()
            else:
                self.content = tempfile.TemporaryFile(dir=site.body_dir)
        except OSError as e:
            self.content = io.BytesIO()
            log.error("cannot buffer a request body in {folder}: {error}", folder=str(site.body_dir),
                      error=e.strerror)
            self._refuse(503, f"The server cannot store the request body now ({e.strerror}); try again later")

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            self._drained += len(data)
            if self._drained > self._site.web.drain_limit and self.channel is not None:
                self.channel.transport.abortConnection()
            return
        self._received += len(data)
        if self._received > self._site.max_body:
            self._refuse(413, _too_large(self._site.max_body, None), code="too-large")
            return
        try:
            self.content.write(data)
        except OSError as e:
            log.error("cannot buffer a request body: {error}", error=e.strerror)
            self._refuse(503, f"The server cannot store the request body now ({e.strerror}); try again later")

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            # The answer went out already; nothing is processed, the connection closes.
            if self.channel is not None:
                self.channel.loseConnection()
            return
        super().requestReceived(command, path, version)

    def _refuse(
        self,
        status: int,
        message: str,
        *,
        reason: str | None = None,
        headers: Iterable[tuple[bytes, bytes]] = (),
        code: str | None = None,
    ) -> None:
        """Answer now, before the body is in, and close the connection after it."""
        self._refused = True
        content, self.content = self.content, io.BytesIO()
        if content is not None:
            content.close()
        # No "100 Continue" after a final answer.
        self.requestHeaders.removeHeader(b"expect")
        body = (message + "\n").encode("utf-8")
        extra = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        head = (
            f"HTTP/1.1 {status} ".encode("ascii") + reason_phrase(reason or message) + b"\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"X-Content-Type-Options: nosniff\r\n" + extra
            + b"Content-Length: " + str(len(body)).encode("ascii") + b"\r\n"
            b"Connection: close\r\n\r\n"
        )
        self.channel.transport.write(head + body)
        method = self.request_line.method if self.request_line is not None else None
        self._site.metrics.record_request(method, status)
        if code is not None:
            self._site.metrics.record_rejection(code)
        log.info("refused a request body from {client}: {status} {message}",
                 client=peer_host(self), status=status, message=message)


def _too_large(limit: int, length: int | None) -> str:
    size = f" ({length} bytes)" if length is not None else ""
    return (
        f"The upload is larger{size} than this server accepts ({limit} bytes); "
        "the operator can raise max_upload"
    )


def peer_host(request: Request) -> str:
    try:
        peer = request.getClientAddress()
        return str(getattr(peer, "host", peer))
    except Exception:
        return "?"


class SpooldChannel(HTTPChannel):
    """HTTP/1.1 with a deadline for the request line and headers (slowloris)."""

    headerTimeout: float | None = 30.0
    _headerCall: Any = None
    _inBody = False
    #: A request is being answered: what arrives meanwhile is buffered, not parsed.
    _responding = False

    def dataReceived(self, data: bytes) -> None:
        if (
            self.headerTimeout
            and self._headerCall is None
            and not self._responding
            and not self._inBody
        ):
            self._headerCall = self.callLater(self.headerTimeout, self._headersTooSlow)
        super().dataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        pending = len(self.requests)
        super().lineReceived(line)
        # A request line is the one line that makes Twisted create a request. (Lines
        # that end a request can start the next one inside this call, through the
        # buffered pipelined data; that one was counted by its own, nested, call.)
        if len(self.requests) > pending and isinstance(self.requests[-1], SpooldRequest):
            self.requests[-1].request_line = parse_request_line(line)

    def allHeadersReceived(self) -> None:
        self._cancelHeaderCall()
        self._inBody = True
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        self._inBody = False
        self._responding = True
        super().allContentReceived()

    def requestDone(self, request: Request) -> None:
        if self.persistent:
            self._responding = False  # before the buffered next request is parsed
        super().requestDone(request)

    def connectionLost(self, reason: Any) -> None:
        self._cancelHeaderCall()
        super().connectionLost(reason)

    def _cancelHeaderCall(self) -> None:
        call, self._headerCall = self._headerCall, None
        if call is not None and call.active():
            call.cancel()

    def _headersTooSlow(self) -> None:
        self._headerCall = None
        log.info("closing a connection whose request headers took more than {seconds}s",
                 seconds=self.headerTimeout)
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        self.loseConnection()
        if self.abortTimeout is not None:
            self.callLater(self.abortTimeout, self.forceAbortClient)
