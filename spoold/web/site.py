"""The web site: every resource mounted under one :class:`SpooldSite`, by :func:`build_site`.

The site carries what its requests and channels (:mod:`spoold.web.request`,
:mod:`spoold.web.channel`) need to keep a client from exhausting the server: the body
folder (the spool's ``tmp/``), the body limit, the upload gate (:mod:`spoold.web.admission`:
credentials, bodies in flight and free space, all before a body is stored), and the
timeouts: ``idle_timeout``, no byte for that long closes the connection (Twisted's
``Site(timeout=...)``); ``header_timeout``, the request line and headers must arrive
within that time however slowly the bytes trickle (slowloris); ``body_min_rate``, the
pace a body must keep.

Twisted's own form parsing (``request.args`` from a multipart body, which reads the whole
body into memory) is switched off; uploads parse the body from disk in a thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any, TextIO

from twisted.internet import task
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from spoold.config import Settings
from spoold.http.health import Bugs
from spoold.http.pagecache import PageCache
from spoold.metrics import Metrics
from spoold.spool.queue import Spool
from spoold.storage.local import LocalStorage
from spoold.threads import Run, pool_runner
from spoold.web.files import FilesPolicy, FilesResource
from spoold.web.front import UPLOAD_PATHS, Legacy, Root
from spoold.web.health import HealthResource, MetricsResource
from spoold.web.protocols import StorageReader, Waiter
from spoold.http.admission import AdmissionPolicy, Refusal
from spoold.web.admission import Admitting, UploadGate
from spoold.web.channel import SpooldChannel
from spoold.web.request import SpooldRequest, peer_host
from spoold.web.pagewatch import PageWatch, Warmer
from spoold.web.simple import SimplePolicy, SimpleResource
from spoold.access.authenticate import Authenticator, Passwords
from spoold.access.store import AccessStore
from spoold.access.throttle import LoginThrottle
from spoold.web.authcheck import AuthCheckResource
from spoold.web.explorer_site import FormRequest, explorer_guard, mount_explorer
from spoold.web.upload import UploadPolicy, UploadResource

__all__ = [
    "SpooldChannel",
    "SpooldRequest",
    "SpooldSite",
    "WebPolicy",
    "build_site",
    "web_policy",
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
    #: A body must arrive at this many bytes per second, measured over every
    #: ``body_grace`` seconds from its start, or it is cut with 408; 0: no minimum.
    body_min_rate: int = 8192
    body_grace: float = 30.0
    #: Bytes of a body kept in memory while its upload's headers are checked (what came
    #: with the headers; the transport is paused): past it the connection is cut.
    hold_limit: int = 1 << 20
    #: Upload bodies in flight, per client and in all, and the spool's free-space reserve.
    uploads: AdmissionPolicy = field(default_factory=AdmissionPolicy)
    #: One log line per request; off where a proxy in front already logs them.
    access_log: bool = True
    #: Seconds a read index page is served from memory (see spoold.http.pagecache); 0: off.
    page_cache: float = 10.0
    simple: SimplePolicy = field(default_factory=SimplePolicy)
    files: FilesPolicy = field(default_factory=FilesPolicy)
    upload: UploadPolicy = field(default_factory=UploadPolicy)


class AccessLog:
    """One line per request, written cheaply.

    Through Twisted's logger a line costs some 40 microseconds (an event, observers,
    a format string parsed, a write and a flush per line): more than serving an index
    page. Given ``out`` (the daemon's stdout, where its log goes), the line is formatted
    as the daemon's log observer formats it (``TIME [spoold.web.site#info] MESSAGE``),
    kept, and written with the others of the same reactor turn in one write at its end.
    Without ``out`` every line is an event of Twisted's logger (tests, embedding).
    """

    def __init__(self, reactor: Any, out: TextIO | None = None) -> None:
        self.reactor = reactor
        self.out = out
        self._lines: list[str] = []
        self._second = -1
        self._stamp = ""
        if out is not None and hasattr(reactor, "addSystemEventTrigger"):
            reactor.addSystemEventTrigger("after", "shutdown", self.flush)

    def line(self, client: str, method: str, uri: str, code: int, length: object, agent: str) -> None:
        if self.out is None:
            log.info('{client} "{method} {uri}" {code} {length} "{agent}"', client=client,
                     method=method, uri=uri, code=code, length=length, agent=agent)
            return
        now = int(time.time())
        if now != self._second:
            self._second, self._stamp = now, time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now))
        if not self._lines:
            self.reactor.callLater(0, self.flush)
        self._lines.append(f'{self._stamp} [spoold.web.site#info] {client} "{method} {uri}" {code} '
                           f'{length} "{agent}"\n')
        if len(self._lines) >= 512:
            self.flush()

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if lines and self.out is not None:
            try:
                self.out.write("".join(lines))
                self.out.flush()
            except (OSError, ValueError):  # stdout closed or full: never fail a request for it
                pass


#: Request methods counted by name (Metrics counts the rest as "other").
_METHODS = frozenset({b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"})


class SpooldSite(Site):
    """A :class:`Site` with spoold's request, channel, limits, metrics and access log."""

    requestFactory = SpooldRequest
    protocol = SpooldChannel  # HTTP/1.1 only: spoold's limits live in this channel

    #: The upload resource, for refusing uploads before their body is in.
    upload: UploadResource | None = None
    #: The index page cache, for the worker to invalidate on publish (None: off).
    page_cache: PageCache | None = None

    def __init__(
        self,
        resource: Resource,
        *,
        body_dir: Path,
        max_body: int,
        metrics: Metrics,
        web: WebPolicy,
        reactor: Any,
        access_log_to: TextIO | None = None,
    ) -> None:
        super().__init__(resource, timeout=web.idle_timeout, reactor=reactor,
                         parsePOSTFormSubmission=False)
        self.body_dir = body_dir
        self.max_body = max_body
        self.metrics = metrics
        self.web = web
        self.access_log = AccessLog(reactor, access_log_to)
        #: The request counter of each (method, status) seen: labels() once, not per request.
        self._counters: dict[tuple[bytes, int], Any] = {}

    #: Admits upload bodies (see spoold.web.admission); set by build_site.
    gate: UploadGate | None = None

    def is_upload(self, request: SpooldRequest) -> bool:
        """Whether the request line is an upload's: the only requests whose body is kept."""
        line = request.request_line
        return (self.gate is not None and line is not None and line.method == b"POST"
                and line.path in UPLOAD_PATHS)

    def admit(self, request: SpooldRequest, length: int | None) -> Refusal | Admitting:
        """The gate's answer to an upload whose headers are in (see :meth:`is_upload`)."""
        assert self.gate is not None
        return self.gate.admit(request.getHeader(b"authorization"), peer_host(request), length)

    def buildProtocol(self, addr: Any) -> SpooldChannel:
        channel = super().buildProtocol(addr)  # factory, clock, idle timeout, site
        channel.headerTimeout = self.web.header_timeout
        return channel  # type: ignore[no-any-return]

    def log(self, request: Request) -> None:
        """One line per request (never the Authorization header), and the request count."""
        method, code = request.method, request.code
        counter = self._counters.get((method, code))
        if counter is not None:
            counter.inc()
        else:
            self.metrics.record_request(method, code)  # the first time: creates the series
            if method in _METHODS and 100 <= code <= 599:  # bounded: 7 methods, 500 codes
                self._counters[(method, code)] = self.metrics.requests.labels(
                    method=method.decode(), status=str(code))
        if not self.web.access_log:
            return
        uri = request.uri.decode("latin-1")[:300]
        if not uri.isprintable():
            uri = uri.encode("unicode_escape").decode("ascii")
        agent = (request.getHeader(b"user-agent") or b"-").decode("latin-1")[:120]
        if not agent.isascii() or not agent.isprintable():
            agent = agent.encode("unicode_escape").decode("ascii")
        self.access_log.line(peer_host(request), method.decode("latin-1")[:16], uri, code,
                             request.sentLength or "-", agent)


def build_site(
    *,
    storage_reader: StorageReader,
    spool: Spool,
    waiter: Waiter,
    auth: Passwords | None,
    settings: Settings,
    reactor: Any,
    threadpool: ThreadPool | None,
    metrics: Metrics | None = None,
    policy: WebPolicy | None = None,
    run: Run | None = None,
    auth_threadpool: ThreadPool | None = None,
    bugs: Callable[[], Bugs] = Bugs,
    access: AccessStore | None = None,
    access_log_to: TextIO | None = None,
) -> SpooldSite:
    """The whole HTTP API as one :class:`~twisted.web.server.Site`.

    ``threadpool`` runs every blocking call (storage, stats, bcrypt, form parsing); pass
    ``run`` instead to choose how (tests: synchronously). ``auth_threadpool``, if given,
    runs the password checks instead, so slow bcrypt never queues ahead of other work.
    ``auth`` holds the accounts (the htpasswd file); None refuses uploads with 403 and
    checks no credentials (so reads must be public). ``access`` keeps tokens, roles and
    events (by default in ``storage_reader``, which must then be a full Storage).
    ``metrics`` is shared with the worker if given (``site.metrics`` otherwise).
    ``access_log_to``: the stream the daemon logs to, for the access log's fast path
    (:class:`AccessLog`); None sends each line through Twisted's logger.
    """
    web = policy or web_policy(settings)
    metrics = metrics or Metrics()
    if run is None:
        if threadpool is None:
            raise ValueError("build_site needs a threadpool or a run callable")
        run = pool_runner(reactor, threadpool)

    auth_run: Run | None = None
    if auth_threadpool is not None:
        auth_run = pool_runner(reactor, auth_threadpool)

    authenticator: Authenticator | None = None
    if auth is not None:
        if access is None:
            access = AccessStore(storage_reader)  # type: ignore[arg-type]
        authenticator = Authenticator(
            auth, access, admins=frozenset(settings.admins),
            throttle=LoginThrottle(clock=reactor.seconds), clock=reactor.seconds,
            cache_seconds=settings.page_cache if settings.page_cache > 0 else 10.0,
        )
    guard = explorer_guard(storage_reader, run, auth, authenticator, auth_run or run, settings, reactor)
    upload = UploadResource(
        spool=spool, waiter=waiter, authenticator=authenticator, run=run, reactor=reactor,
        metrics=metrics, policy=web.upload, auth_run=auth_run, access=access,
    )
    root = Root()
    root.putChild(b"legacy", Legacy(upload))
    explorer, cache = mount_explorer(root, storage=storage_reader, run=run, guard=guard, upload=upload,
                                     settings=settings, page_cache=web.page_cache, reactor=reactor)
    # Local pages are read in one trip at a time (the reads are quick, the hops are not);
    # others (S3: a round trip each) in many at once.
    in_flight = 1 if isinstance(storage_reader, LocalStorage) else 16
    watch = None
    if cache is not None and isinstance(storage_reader, LocalStorage):
        watch = PageWatch.for_storage(storage_reader.root, cache)
        if watch is not None:  # the inotify descriptor is read on the reactor; never blocks
            reactor.addReader(watch)
            reactor.addSystemEventTrigger("after", "shutdown", watch.close)
            reactor.callWhenRunning(Warmer(watch, storage_reader, cache, run).start)
    root.putChild(b"simple", SimpleResource(storage_reader, run, web.simple, cache, guard, in_flight,
                                            reactor.callLater, watch))
    root.putChild(b"packages", FilesResource(storage_reader, run, web.files, guard))
    root.putChild(b"_auth", AuthCheckResource(guard))
    root.putChild(b"health", HealthResource(spool, storage_reader.ping, run, metrics, bugs, guard))
    root.putChild(b"metrics", MetricsResource(spool, metrics, run))
    site = SpooldSite(
        root,
        body_dir=spool.tmp,
        max_body=web.max_body if web.max_body is not None else settings.max_upload,
        metrics=metrics,
        web=web,
        reactor=reactor,
        access_log_to=access_log_to,
    )
    site.requestFactory = FormRequest  # keeps the explorer's small form bodies
    site.explorer = explorer
    site.upload = upload
    site.gate = UploadGate(upload, web.uploads, spool.tmp, upload.auth_run)
    site.page_cache = cache
    if cache is not None:
        metrics.registry.register(PageCacheCollector(cache))
    site.guard = guard
    site.authenticator = authenticator
    site.token_use_flush = None
    if authenticator is not None:
        flush = task.LoopingCall(lambda: run(authenticator.write_uses).addErrback(
            lambda f: log.failure("cannot record when tokens were last used", f)))
        flush.clock = reactor
        site.token_use_flush = flush
    return site


class PageCacheCollector:
    """The page cache's counters in ``/metrics`` (read when scraped, never per request)."""

    def __init__(self, cache: PageCache) -> None:
        self.cache = cache

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        yield CounterMetricFamily("spoold_page_cache_hits", "Index page reads answered from memory.",
                                  value=self.cache.hits)
        yield CounterMetricFamily("spoold_page_cache_misses", "Index page reads that went to storage.",
                                  value=self.cache.misses)
        yield GaugeMetricFamily("spoold_page_cache_pages", "Index pages held in memory.",
                                value=len(self.cache))
        yield GaugeMetricFamily("spoold_page_cache_bytes", "Bytes the held index pages cost.",
                                value=self.cache.held_bytes)
        yield GaugeMetricFamily("spoold_page_cache_warming", "1 while the pages are read in at start.",
                                value=int(self.cache.warming))


def web_policy(settings: Settings) -> WebPolicy:
    """The web policy the settings describe (the rest at their defaults)."""
    return WebPolicy(
        access_log=settings.access_log,
        page_cache=settings.page_cache,
        body_min_rate=settings.body_min_rate,
        body_grace=settings.body_grace,
        uploads=AdmissionPolicy(
            max_per_client=settings.max_uploads_per_client,
            max_total=settings.max_uploads,
            reserve=settings.spool_reserve,
        ),
    )
