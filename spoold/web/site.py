"""The web site: every resource mounted, request bodies kept on disk, slow clients cut off.

Three things here are about not letting a client exhaust the server:

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
* **Slow clients time out.** ``idle_timeout``: no byte for that long closes the
  connection (Twisted's ``Site(timeout=...)``); ``header_timeout``: the request line and
  headers must arrive within that time however slowly the bytes trickle (slowloris).

Twisted's own form parsing (``request.args`` from a multipart body, which reads the whole
body into memory) is switched off; uploads parse the body from disk in a thread.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from spoold.access.htpasswd import Htpasswd
from spoold.config import Settings
from spoold.metrics import Metrics
from spoold.spool.queue import Spool
from spoold.threads import pool_runner
from spoold.web import LeafResource, Run, StorageReader, Waiter, reason_phrase, send_text
from spoold.web.files import FilesPolicy, FilesResource
from spoold.web.health import HealthResource, MetricsResource
from spoold.web.simple import SimplePolicy, SimpleResource
from spoold.http.pagecache import PageCache
from spoold.web.upload import Authenticator, Refusal, UploadPolicy, UploadResource

__all__ = [
    "SpooldChannel",
    "SpooldRequest",
    "SpooldSite",
    "WebPolicy",
    "auth_from_settings",
    "build_site",
]

log = Logger()


@dataclass(frozen=True, slots=True)
class WebPolicy:
    """Limits and timeouts of the web site; the defaults suit a LAN or a reverse proxy."""

    #: Seconds without a byte from the client before the connection is closed.
    idle_timeout: float = 60.0
    #: Seconds the request line and headers may take in all (against slowloris).
    header_timeout: float = 30.0
    #: Largest request body, in bytes; None means ``Settings.max_upload``.
    max_body: int | None = None
    #: After refusing a body, how much more of it is read and dropped so the client gets
    #: to read the 413 before the connection is cut.
    drain_limit: int = 64 * 1024 * 1024
    #: Bodies declared smaller than this are kept in memory; larger or undeclared ones go
    #: to a temporary file in the spool's tmp/.
    memory_body: int = 64 * 1024
    #: One log line per request; off where a proxy in front already logs them.
    access_log: bool = True
    #: Seconds a read index page is served from memory (see spoold.http.pagecache); 0: off.
    page_cache: float = 10.0
    simple: SimplePolicy = field(default_factory=SimplePolicy)
    files: FilesPolicy = field(default_factory=FilesPolicy)
    upload: UploadPolicy = field(default_factory=UploadPolicy)


class SpooldRequest(Request):
    """A request whose body goes to the site's body folder, within the site's limit."""

    _refused = False
    _received = 0
    _drained = 0

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
        self._site.metrics.record_request(getattr(self.channel, "_command", None), status)
        if code is not None:
            self._site.metrics.record_rejection(code)
        log.info("refused a request body from {client}: {status} {message}",
                 client=_peer(self), status=status, message=message)


def _too_large(limit: int, length: int | None) -> str:
    size = f" ({length} bytes)" if length is not None else ""
    return (
        f"The upload is larger{size} than this server accepts ({limit} bytes); "
        "the operator can raise max_upload"
    )


def _peer(request: Request) -> str:
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

    def dataReceived(self, data: bytes) -> None:
        if (
            self.headerTimeout
            and self._headerCall is None
            and not self._handlingRequest
            and not self._inBody
        ):
            self._headerCall = self.callLater(self.headerTimeout, self._headersTooSlow)
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        self._cancelHeaderCall()
        self._inBody = True
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        self._inBody = False
        super().allContentReceived()

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


class SpooldSite(Site):
    """A :class:`Site` with spoold's request, channel, limits, metrics and access log."""

    requestFactory = SpooldRequest

    def __init__(
        self,
        resource: Resource,
        *,
        body_dir: Path,
        max_body: int,
        metrics: Metrics,
        web: WebPolicy,
        reactor: Any,
    ) -> None:
        super().__init__(resource, timeout=web.idle_timeout, reactor=reactor,
                         parsePOSTFormSubmission=False)
        self.body_dir = body_dir
        self.max_body = max_body
        self.metrics = metrics
        self.web = web

    #: The upload resource, for refusing uploads before their body is in.
    upload: UploadResource | None = None

    def early_refusal(self, request: Request) -> Refusal | None:
        """An answer for a request whose body need not be read (an upload with no
        credentials, or with uploads disabled), from the request line and headers."""
        # The request line is parsed by the channel, which keeps it until the body is in.
        method = getattr(request.channel, "_command", None)
        path = getattr(request.channel, "_path", None)
        if self.upload is None or method != b"POST" or not isinstance(path, bytes):
            return None
        if path.split(b"?", 1)[0] not in _UPLOAD_PATHS:
            return None
        return self.upload.precheck(request.getHeader(b"authorization"))

    def buildProtocol(self, addr: Any) -> SpooldChannel:
        channel = SpooldChannel()
        channel.factory = self
        channel.callLater = self.reactor.callLater
        channel.timeOut = self.timeOut
        channel.headerTimeout = self.web.header_timeout
        channel.requestFactory = self.requestFactory
        channel.site = self
        return channel

    def log(self, request: Request) -> None:
        """One line per request (never the Authorization header), and the request count."""
        self.metrics.record_request(request.method, request.code)
        if not self.web.access_log:
            return
        uri = request.uri.decode("latin-1")[:300].encode("unicode_escape").decode("ascii")
        agent = (request.getHeader(b"user-agent") or b"-").decode("latin-1")[:120]
        log.info(
            '{client} "{method} {uri}" {code} {length} "{agent}"',
            client=_peer(request),
            method=request.method.decode("latin-1")[:16],
            uri=uri,
            code=request.code,
            length=request.sentLength or "-",
            agent=agent.encode("unicode_escape").decode("ascii"),
        )


_UPLOAD_PATHS = frozenset({b"/", b"/legacy", b"/legacy/"})


class _Front(LeafResource):
    """``/``: uploads (twine's default repository URL is the server root) and a hint."""

    methods = (b"GET", b"POST")

    def __init__(self, upload: UploadResource) -> None:
        super().__init__()
        self.upload = upload

    def render_GET(self, request: Request) -> bytes:
        if request.postpath not in ([], [b""]):
            return send_text(request, 404, "Not found")
        return send_text(
            request, 200,
            "spoold: a private Python package index.\n\n"
            "Install:  pip install --index-url http://HOST:PORT/simple/ NAME\n"
            "Upload:   twine upload --repository-url http://HOST:PORT/legacy/ dist/*\n"
            "Health:   /health   Metrics: /metrics\n",
        )

    def render_POST(self, request: Request) -> bytes | int:
        if request.postpath not in ([], [b""]):
            return send_text(request, 404, "Not found")
        return self.upload.render_POST(request)


class _Legacy(LeafResource):
    """``/legacy/`` (and ``/legacy``: never redirect an upload)."""

    methods = (b"POST",)

    def __init__(self, upload: UploadResource) -> None:
        super().__init__()
        self.upload = upload

    def render_POST(self, request: Request) -> bytes | int:
        if request.postpath not in ([], [b""]):
            return send_text(request, 404, "Not found")
        return self.upload.render_POST(request)


class _Root(Resource):
    def getChild(self, path: bytes, request: Request) -> Resource:
        return _NotFound()


class _NotFound(Resource):
    isLeaf = True

    def render(self, request: Request) -> bytes:
        body = send_text(request, 404, "Not found")
        return b"" if request.method == b"HEAD" else body


def auth_from_settings(settings: Settings) -> Htpasswd | None:
    """The htpasswd accounts the settings name, or None (uploads refused with 403).

    Raises :class:`~spoold.errors.ConfigError` if the file is named but unreadable.
    """
    if not settings.htpasswd:
        return None
    return Htpasswd(settings.htpasswd)


def build_site(
    *,
    storage_reader: StorageReader,
    spool: Spool,
    waiter: Waiter,
    auth: Authenticator | None,
    settings: Settings,
    reactor: Any,
    threadpool: ThreadPool | None,
    metrics: Metrics | None = None,
    policy: WebPolicy | None = None,
    run: Run | None = None,
    auth_threadpool: ThreadPool | None = None,
) -> SpooldSite:
    """The whole HTTP API as one :class:`~twisted.web.server.Site`.

    ``threadpool`` runs every blocking call (storage, stats, bcrypt, form parsing); pass
    ``run`` instead to choose how (tests: synchronously). ``auth_threadpool``, if given,
    runs the password checks instead, so slow bcrypt never queues ahead of other work. ``auth`` None refuses uploads
    with 403. ``metrics`` is shared with the worker if given (``site.metrics`` otherwise).
    """
    web = policy or WebPolicy(access_log=settings.access_log, page_cache=settings.page_cache)
    metrics = metrics or Metrics()
    if run is None:
        if threadpool is None:
            raise ValueError("build_site needs a threadpool or a run callable")
        run = pool_runner(reactor, threadpool)

    auth_run: Run | None = None
    if auth_threadpool is not None:
        auth_run = pool_runner(reactor, auth_threadpool)

    upload = UploadResource(
        spool=spool, waiter=waiter, auth=auth, run=run, reactor=reactor, metrics=metrics,
        policy=web.upload, auth_run=auth_run,
    )
    root = _Root()
    root.putChild(b"", _Front(upload))
    root.putChild(b"legacy", _Legacy(upload))
    cache = PageCache(web.page_cache, reactor.seconds) if web.page_cache > 0 else None
    root.putChild(b"simple", SimpleResource(storage_reader, run, web.simple, cache))
    root.putChild(b"packages", FilesResource(storage_reader, run, web.files))
    root.putChild(b"health", HealthResource(spool, storage_reader.ping, run, metrics))
    root.putChild(b"metrics", MetricsResource(spool, metrics, run))
    site = SpooldSite(
        root,
        body_dir=spool.tmp,
        max_body=web.max_body if web.max_body is not None else settings.max_upload,
        metrics=metrics,
        web=web,
        reactor=reactor,
    )
    site.upload = upload
    site.page_cache = cache
    return site
