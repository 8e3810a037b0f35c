"""The channel of spoold's site: HTTP/1.1 with deadlines, header limits that answer, and
reading that a request can hold.

* **Slow headers time out.** The request line and headers get a deadline however slowly
  the bytes trickle (slowloris); the idle timeout is Twisted's.
* **Headers too large are answered**, not dropped: Twisted cuts a line longer than
  ``MAX_LENGTH`` (16 KiB) without a word and answers a bare 400 past ``totalHeadersSize``
  (16 KiB in all) or ``maxHeaders`` (500); spoold answers 414 URI Too Long for a request
  line, 431 Request Header Fields Too Large for the rest, with a message, and closes.
* **Reading can be held**: while an upload's headers are checked
  (:mod:`spoold.web.request`), the transport is paused, and stays paused even when
  Twisted would resume it because its write buffer drained.

What Twisted keeps private spoold records itself: the request line (seen by
:meth:`SpooldChannel.lineReceived` and stored on the request it created), whether a
response is under way (set in ``allContentReceived``, cleared in ``requestDone``), the
header bytes and lines of the current request.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger
from twisted.web.http import HTTPChannel
from twisted.web.server import Request

from spoold.http.headers import parse_request_line
from spoold.web.request import SpooldRequest

__all__ = ["SpooldChannel"]

log = Logger()


class SpooldChannel(HTTPChannel):
    """HTTP/1.1 with a deadline for the request line and headers, answered header limits,
    and reading a request can hold."""

    headerTimeout: float | None = 30.0
    _headerCall: Any = None
    _inBody = False
    #: A request is being answered: what arrives meanwhile is buffered, not parsed.
    _responding = False
    #: A request holds its body: the transport stays paused.
    _holdingReads = False
    #: Bytes and lines of the current request's head, counted as Twisted counts them.
    _headBytes = 0
    _headLines = 0

    # -- holding -------------------------------------------------------------------------

    def hold_reading(self) -> None:
        """Stop reading from the client until :meth:`resume_reading`."""
        self._holdingReads = True
        if not self.transport.disconnecting:
            self.transport.pauseProducing()

    def resume_reading(self) -> None:
        self._holdingReads = False
        if not self.transport.disconnecting:
            self.transport.resumeProducing()

    def resumeProducing(self) -> None:
        # The transport's write buffer drained: Twisted resumes reading, unless a request
        # holds it.
        super().resumeProducing()
        if self._holdingReads and not self.transport.disconnecting:
            self.transport.pauseProducing()

    # -- the head of a request -------------------------------------------------------------

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
        first = self._headBytes == 0 and self._headLines == 0
        self._headBytes += len(line)
        if self._headBytes > self.totalHeadersSize:
            self._headTooLarge(first)
            return
        pending = len(self.requests)
        super().lineReceived(line)
        # A request line is the one line that makes Twisted create a request. (Lines
        # that end a request can start the next one inside this call, through the
        # buffered pipelined data; that one was counted by its own, nested, call.)
        if len(self.requests) > pending and isinstance(self.requests[-1], SpooldRequest):
            self.requests[-1].request_line = parse_request_line(line)

    def headerReceived(self, line: bytes) -> bool:
        self._headLines += 1
        if self._headLines > self.maxHeaders:
            self._headTooLarge(False)
            return False
        return bool(super().headerReceived(line))

    def lineLengthExceeded(self, line: bytes) -> None:
        self._headTooLarge(self._headBytes == 0 and self._headLines == 0)

    def _headTooLarge(self, requestLine: bool) -> None:
        if self.transport.disconnecting:
            return  # answered already (Twisted goes on parsing the line it had)
        if requestLine:
            status, message = b"414 URI Too Long", (
                f"The request line is longer than this server reads ({self.MAX_LENGTH} bytes)")
        else:
            status, message = b"431 Request Header Fields Too Large", (
                f"The request headers are larger than this server reads ({self.totalHeadersSize} "
                f"bytes, {self.maxHeaders} fields in all, {self.MAX_LENGTH} bytes a line); send "
                "fewer or shorter headers (large cookies or tokens?)")
        body = (message + "\n").encode("ascii")
        self.transport.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: " + str(len(body)).encode("ascii") + b"\r\nConnection: close\r\n\r\n" + body)
        site = getattr(self, "site", None)
        if site is not None:
            site.metrics.record_request(None, int(status[:3]))
        log.info("refused a request whose head is too large: {status}", status=status.decode())
        self._cancelHeaderCall()
        self.loseConnection()

    def allHeadersReceived(self) -> None:
        self._cancelHeaderCall()
        self._inBody = True
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        self._inBody = False
        self._responding = True
        self._headBytes = self._headLines = 0
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
