"""``GET /packages/<project>/<file>`` (and ``<file>.metadata``): the distributions.

Local storage: the file is opened in a thread and streamed by a push producer whose
reads also run in a thread (unlike :class:`twisted.web.static.File`, which reads on the
reactor), paced by the client, so a gigabyte wheel costs one chunk of memory; ``Content-Length``, a strong ``ETag`` (size and mtime: stored files
are immutable, so that identifies the bytes), ``Last-Modified`` and single ``Range``
requests are supported. S3: a 302 to a presigned URL, so the bytes never pass through
spoold; or, with ``FilesPolicy.proxy``, streamed through (reads in a thread, writes
paced by the client) for networks where clients cannot reach the bucket.

Paths are checked before storage sees them (:func:`spoold.http.paths.package_file_key`):
exactly two segments, a valid project name in normalized form and a plain file name (no
``..``, no separators from ``%2F``, no dotfiles), so no request can name anything outside
``packages/``. The ETag and Range rules are :mod:`spoold.http.conditional`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from email.utils import formatdate
from typing import IO, Any, BinaryIO

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from spoold.errors import Transient
from spoold.http.conditional import etag_matches, parse_range, range_applies
from spoold.http.paths import package_file_key
from spoold.threads import Run
from spoold.web.guard import Guard
from spoold.web.protocols import StorageReader
from spoold.web.responses import LeafResource, finish_text, is_gone, send_text

__all__ = ["FilesPolicy", "FilesResource"]

log = Logger()


@dataclass(frozen=True, slots=True)
class FilesPolicy:
    #: Stream S3 objects through spoold instead of redirecting to a presigned URL.
    proxy: bool = False
    #: Lifetime of presigned URLs, in seconds.
    presign_seconds: int = 300
    #: A published filename never changes its bytes (the Warehouse rule spoold keeps).
    cache_control: str = "public, max-age=86400"
    retry_after: int = 30
    #: Read size when streaming a file (local or proxied).
    chunk: int = 256 * 1024


@dataclass(frozen=True, slots=True)
class _Local:
    file: IO[bytes]
    size: int
    mtime: float
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class _Redirect:
    url: str


@dataclass(frozen=True, slots=True)
class _Proxy:
    size: int
    mtime: float


class FilesResource(LeafResource):
    """``/packages/...``; a leaf that reads ``request.postpath``."""

    def __init__(self, storage: StorageReader, run: Run, policy: FilesPolicy | None = None,
                 guard: Guard | None = None) -> None:
        super().__init__()
        self.storage = storage
        self.run = run
        self.policy = policy or FilesPolicy()
        #: Who may read (None: everyone). A presigned URL is handed out only after it.
        self.guard = guard

    def render_GET(self, request: Request) -> bytes | int:
        key = package_file_key(request.postpath or [])
        if key is None:
            return send_text(request, 404, "Not found")
        if self.guard is None or self.guard.public:
            return self._serve(request, key, visible=True)
        request.setHeader(b"vary", b"Authorization")
        project = key.split("/")[1]
        d = self.guard.reader(request, project)
        d.addCallback(lambda principal: None if principal is None else self._serve(
            request, key, visible=self.guard is not None and self.guard.sees(principal, project)))
        d.addErrback(self._failed, request)
        return NOT_DONE_YET

    def _serve(self, request: Request, key: str, *, visible: bool) -> int:
        if visible:
            d = self.run(self._locate, key)
        else:
            # Absent for this reader: the same lookup, then the answer for a missing file.
            d = self.run(self._locate, key).addCallback(lambda found: (_close(found), None)[1])
        d.addCallback(self._send, request, key)
        d.addErrback(self._failed, request)
        return NOT_DONE_YET

    # -- in a thread -----------------------------------------------------------------------

    def _locate(self, key: str) -> _Local | _Redirect | _Proxy | None:
        path = self.storage.local_path(key)
        if path is not None:
            try:
                f = open(path, "rb")
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return None
            st = os.fstat(f.fileno())
            return _Local(f, st.st_size, st.st_mtime, st.st_mtime_ns)
        if not self.policy.proxy:
            url = self.storage.presigned_url(key, self.policy.presign_seconds)
            if url is not None:
                return _Redirect(url)
        found = self.storage.stat(key)
        if found is None:
            return None
        return _Proxy(found.size, found.modified.timestamp())

    # -- on the reactor --------------------------------------------------------------------

    def _send(self, found: _Local | _Redirect | _Proxy | None, request: Request, key: str) -> None:
        if is_gone(request):
            if isinstance(found, _Local):
                found.file.close()
            return
        if found is None:
            finish_text(request, 404, "No such file on this index")
            return
        if isinstance(found, _Redirect):
            request.setHeader(b"cache-control", b"no-store")
            finish_text(request, 302, "Found", headers=[(b"location", found.url.encode("ascii"))])
            return
        size = found.size
        etag = f'"{size:x}-{found.mtime_ns:x}"' if isinstance(found, _Local) else f'"{size:x}-{int(found.mtime * 1e9):x}"'
        request.setHeader(b"etag", etag.encode("ascii"))
        request.setHeader(b"last-modified", formatdate(found.mtime, usegmt=True).encode("ascii"))
        cache_control = self.policy.cache_control
        if self.guard is not None and not self.guard.public:
            cache_control = cache_control.replace("public", "private")  # no shared cache
        request.setHeader(b"cache-control", cache_control.encode("ascii"))
        request.setHeader(b"content-type", b"application/octet-stream")
        request.setHeader(b"x-content-type-options", b"nosniff")
        if etag_matches(request.getHeader(b"if-none-match"), etag):
            _close(found)
            request.setResponseCode(304)
            request.finish()
            return
        ranged: tuple[int, int] | None | bool = None
        if isinstance(found, _Local):
            request.setHeader(b"accept-ranges", b"bytes")
            if range_applies(request.getHeader(b"if-range"), etag):
                header = request.getHeader(b"range")
                ranged = parse_range(header.decode("latin-1") if header else None, size)
        if ranged is False:
            found.file.close()  # type: ignore[union-attr]
            finish_text(request, 416, "Range Not Satisfiable",
                        headers=[(b"content-range", f"bytes */{size}".encode())])
            return
        if isinstance(ranged, tuple):
            offset, length = ranged
            request.setResponseCode(206)
            request.setHeader(b"content-range", f"bytes {offset}-{offset + length - 1}/{size}".encode())
            request.setHeader(b"content-length", str(length).encode())
        else:
            request.setHeader(b"content-length", str(size).encode())
        if request.method == b"HEAD" or size == 0:
            _close(found)
            request.finish()
            return
        if isinstance(found, _Local):
            offset, length = ranged if isinstance(ranged, tuple) else (0, size)
            local = found.file

            def open_local() -> BinaryIO:
                local.seek(offset)
                return local  # type: ignore[return-value]

            _StreamProducer(request, self.run, open_local, lambda f: f.close(),
                            length=length, chunk=self.policy.chunk).start()
            return
        opened: list[AbstractContextManager[BinaryIO]] = []

        def open_remote() -> BinaryIO:
            cm = self.storage.open_read(key)
            stream = cm.__enter__()
            opened.append(cm)
            return stream

        _StreamProducer(request, self.run, open_remote, lambda f: opened[0].__exit__(None, None, None),
                        length=size, chunk=self.policy.chunk).start()

    def _failed(self, failure: Failure, request: Request) -> None:
        if failure.check(Transient):
            finish_text(request, 503, f"The storage is unavailable: {failure.value}",
                        headers=[(b"retry-after", str(self.policy.retry_after).encode())])
            return
        log.failure("serving a file failed", failure)
        finish_text(request, 500, "Internal error while reading the file; see the server log")


def _close(found: Any) -> None:
    if isinstance(found, _Local):
        found.file.close()


@implementer(IPushProducer)
class _StreamProducer:
    """Copy a blocking stream to a request without blocking the reactor.

    Every open, read and close runs through ``run`` (a thread); the next read starts only
    when the previous chunk is written and the transport is not paused, so memory holds one
    chunk and a slow client slows the reads down (backpressure), never the reverse.
    """

    def __init__(
        self,
        request: Request,
        run: Run,
        open_stream: Callable[[], BinaryIO],
        close_stream: Callable[[BinaryIO], object],
        *,
        length: int | None = None,
        chunk: int = 256 * 1024,
    ) -> None:
        self.request = request
        self.run = run
        self.open_stream = open_stream
        self.close_stream = close_stream
        self.remaining = length
        self.chunk = chunk
        self._stream: BinaryIO | None = None
        self._paused = False
        self._reading = False
        self._done = False
        self._looping = False
        self._again = False

    def start(self) -> None:
        self.request.registerProducer(self, True)
        self.request.notifyFinish().addErrback(lambda _: self.stopProducing())
        self._reading = True
        self.run(self.open_stream).addCallbacks(self._opened, self._error)

    def _opened(self, stream: BinaryIO) -> None:
        self._reading = False
        self._stream = stream
        if self._done:
            self._close()
            return
        self._next()

    def _next(self) -> None:
        # Iterative, so a run() that fires synchronously (tests) does not recurse per chunk.
        if self._looping:
            self._again = True
            return
        self._looping = True
        try:
            self._again = True
            while self._again and not (self._done or self._paused or self._reading or self._stream is None):
                self._again = False
                size = self.chunk if self.remaining is None else min(self.chunk, self.remaining)
                if size == 0:
                    self._finish()
                    return
                self._reading = True
                self.run(self._stream.read, size).addCallbacks(self._got, self._error)
        finally:
            self._looping = False

    def _got(self, data: bytes) -> None:
        self._reading = False
        if self._done:
            self._close()
            return
        if not data:
            if self.remaining:
                self._error(Failure(EOFError(f"the stored file ended {self.remaining} bytes early")))
                return
            self._finish()
            return
        if self.remaining is not None:
            self.remaining -= len(data)
        self.request.write(data)
        self._next()

    def _finish(self) -> None:
        self._done = True
        self._close()
        if not is_gone(self.request):
            self.request.unregisterProducer()
            self.request.finish()

    def _error(self, failure: Failure) -> None:
        self._reading = False
        if self._done:
            self._close()
            return
        log.failure("streaming a stored file failed", failure)
        self._done = True
        self._close()
        if not is_gone(self.request):
            # Headers (and Content-Length) are out: the only honest signal left is to
            # cut the connection, so the client sees a truncated download.
            self.request.unregisterProducer()
            self.request.loseConnection()

    def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            self.run(self.close_stream, stream).addErrback(lambda f: None)

    # IPushProducer
    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._next()

    def stopProducing(self) -> None:
        if not self._done:
            self._done = True
            if not self._reading:
                self._close()
