"""The request of spoold's site: no body is stored before it may be, none trickles forever.

* **Only uploads' bodies are stored**, and only once their headers passed the upload gate
  (:mod:`spoold.web.admission`: credentials, bodies in flight, free space). Meanwhile the
  request *holds*: the channel stops reading from the transport, and the few bytes that
  arrived with the headers wait in memory (``hold_limit``). ``Expect: 100-continue`` is
  answered only then, by spoold (Twisted would answer it at once). Bodies of any other
  request are read and dropped: nothing else reads one.
* **Stored bodies go to the spool's** ``tmp/``: an anonymous temporary file there (the
  space an upload needs is the space the operator gave the spool), small ones in memory.
* **Refusals come early.** A declared ``Content-Length`` above the limit is answered with
  413 before the body is read; a chunked body is refused the moment it passes the limit;
  the gate's refusals (401, 429, 503, 507) are answered before a byte is stored. The rest
  of the body is read and dropped (up to ``drain_limit``, then the connection is cut) so
  that clients that send the whole body before reading, as requests does, see the answer
  instead of a reset connection.
* **Slow bodies are cut.** Over every ``body_grace`` seconds from its start, a body must
  arrive at ``body_min_rate`` bytes per second, or it is answered 408 and the connection
  closed (the idle timeout only catches a body that stops altogether).

spoold learns what it needs through overridable methods and public API, not Twisted's
private attributes: the request line from :meth:`SpooldChannel.lineReceived` (see
:mod:`spoold.web.channel`), a disconnect from the request's own ``notifyFinish()``
errback (:attr:`SpooldRequest.gone`). ``tests/adapter/test_web_request.py`` checks these
against the installed Twisted.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger
from twisted.web.server import Request

from spoold.access.principal import Principal
from spoold.http.admission import Refusal
from spoold.http.headers import RequestLine, reason_phrase

if TYPE_CHECKING:
    from spoold.http.admission import Slot
    from spoold.web.admission import Admitting
    from spoold.web.site import SpooldSite

__all__ = ["SpooldRequest", "peer_host"]

log = Logger()

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class SpooldRequest(Request):
    """A request whose body is stored only when admitted, in the site's body folder."""

    #: The request line, known from the moment it arrives (Twisted's own ``method`` and
    #: ``uri`` are set only once the body is in); None if it was malformed.
    request_line: RequestLine | None = None
    #: True once the client went away: writing or finishing then raises in Twisted.
    gone = False
    #: Who the upload gate found the sender to be, before the body was read (None: unchecked).
    verified: Principal | None = None
    _refused = False
    _received = 0
    _drained = 0
    #: Not an upload: the body is counted (limit, rate) and dropped.
    _discard = False
    #: Waiting for the gate; what arrives meanwhile is kept in ``_held``.
    _holding = False
    _held: list[bytes] | None = None
    _held_bytes = 0
    _expect_continue = False
    _declared: int | None = None
    #: requestReceived's arguments, when the whole body came in while holding.
    _complete: tuple[bytes, bytes, bytes] | None = None
    _slot: Slot | None = None
    _rate_call: Any = None
    _rate_mark = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notifyFinish().addErrback(self._lost)

    def _lost(self, _reason: object) -> None:
        self.gone = True
        self._end_body()

    @property
    def _site(self) -> SpooldSite:
        return self.channel.site  # type: ignore[no-any-return]

    # -- the body's headers are in --------------------------------------------------------

    def gotLength(self, length: int | None) -> None:
        site = self._site
        self.content = io.BytesIO()
        if length is not None and length > site.max_body:
            self._refuse(413, _too_large(site.max_body, length), code="too-large")
            return
        if length == 0:
            return
        if not site.is_upload(self):
            self._discard = True
            self._start_rate_clock()
            return
        admission = site.admit(self, length)
        if isinstance(admission, Refusal):
            self._refuse(admission.status, admission.message, reason=admission.reason,
                         headers=admission.headers, code=admission.code)
            return
        self._hold(admission, length)

    def _hold(self, admission: Admitting, length: int | None) -> None:
        """Stop reading until the gate answers; answer ``Expect`` ourselves after it."""
        self._slot = admission.slot
        self._declared = length
        self._holding = True
        self._held = []
        expect = self.requestHeaders.getRawHeaders(b"expect") or []
        line = self.request_line
        self._expect_continue = (bool(expect) and expect[0].lower() == b"100-continue"
                                 and line is not None and line.version == b"HTTP/1.1")
        self.requestHeaders.removeHeader(b"expect")
        if not admission.result.called:  # answered from memory: nothing to wait for
            self.channel.hold_reading()
        admission.result.addCallback(self._admitted).addErrback(self._admission_failed)

    def _admission_failed(self, failure: Any) -> None:
        log.failure("an upload could not be admitted", failure)
        if not self.gone and self.channel is not None:
            self.channel.transport.abortConnection()

    def _admitted(self, result: Principal | Refusal) -> None:
        held, self._held, self._held_bytes = self._held or [], None, 0
        self._holding = False
        if self.gone or self.channel is None:
            return  # the client left; _lost released everything
        self.channel.resume_reading()
        if isinstance(result, Refusal):
            self._refuse(result.status, result.message, reason=result.reason,
                         headers=result.headers, code=result.code)
        else:
            self.verified = result
            self._open_content()
            for data in held:
                if self._refused:
                    break
                self._store(data)
        if self._refused:
            if self._complete is not None and self.channel is not None:
                self.channel.loseConnection()  # the whole body is in: nothing left to drain
            return
        complete, self._complete = self._complete, None
        if complete is not None:
            self.requestReceived(*complete)
            return
        if self._expect_continue:
            self.channel.transport.write(CONTINUE)
        self._start_rate_clock()

    def _open_content(self) -> None:
        site = self._site
        try:
            if self._declared is not None and self._declared < site.web.memory_body:
                self.content = io.BytesIO()
            else:
                self.content = tempfile.TemporaryFile(dir=site.body_dir)
        except OSError as e:
            log.error("cannot buffer a request body in {folder}: {error}", folder=str(site.body_dir),
                      error=e.strerror)
            self._refuse(503, f"The server cannot store the request body now ({e.strerror}); try again later")

    # -- the body arrives -------------------------------------------------------------------

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            self._drained += len(data)
            if self._drained > self._site.web.drain_limit and self.channel is not None:
                self.channel.transport.abortConnection()
            return
        if self._holding:
            assert self._held is not None
            self._held.append(data)
            self._held_bytes += len(data)
            if self._held_bytes > self._site.web.hold_limit and self.channel is not None:
                # The transport did not stop (it cannot pause?): never buffer without bound.
                log.warn("cutting a connection that sent {bytes} bytes of a body while told to wait",
                         bytes=self._held_bytes)
                self.channel.transport.abortConnection()
            return
        self._store(data)

    def _store(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > self._site.max_body:
            self._refuse(413, _too_large(self._site.max_body, None), code="too-large")
            return
        if self._discard:
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
        if self._holding:
            self._complete = (command, path, version)  # processed once the gate answers
            return
        self._end_body()
        super().requestReceived(command, path, version)

    # -- the body's pace ---------------------------------------------------------------------

    def _start_rate_clock(self) -> None:
        web = self._site.web
        if web.body_min_rate > 0 and web.body_grace > 0 and self.channel is not None:
            self._rate_mark = self._received
            self._rate_call = self.channel.callLater(web.body_grace, self._check_rate)

    def _check_rate(self) -> None:
        self._rate_call = None
        web = self._site.web
        arrived = self._received - self._rate_mark
        if arrived >= web.body_min_rate * web.body_grace:
            self._start_rate_clock()
            return
        self._refuse(
            408,
            f"The request body arrived too slowly ({arrived} bytes in the last {web.body_grace:g} "
            f"seconds; at least {web.body_min_rate} bytes per second are needed); try again "
            "over a faster connection",
            reason="Request Timeout: the body arrived too slowly",
            code=None if self._discard else "slow-body",  # an upload rejected, or not one
        )
        if self.channel is not None:
            self.channel.loseConnection()

    def _end_body(self) -> None:
        """The body is in, refused, or abandoned: stop its clock, free its slot."""
        call, self._rate_call = self._rate_call, None
        if call is not None and call.active():
            call.cancel()
        slot, self._slot = self._slot, None
        if slot is not None:
            slot.release()
        self._held = None

    # -- answering before the body is in -----------------------------------------------------

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
        self._end_body()
        if self._holding and self.channel is not None:
            self._holding = False
            self.channel.resume_reading()
        content, self.content = self.content, io.BytesIO()
        if content is not None:
            content.close()
        # No "100 Continue" after a final answer.
        self.requestHeaders.removeHeader(b"expect")
        if self.channel is None:
            return
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
