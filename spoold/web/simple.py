"""``GET /simple/`` and ``GET /simple/<project>/``: the pre-rendered index pages.

Pages are rendered by the publisher when a project changes and stored next to the files
(``simple/<project>/index.html`` and ``index.v1.json``); serving one is a storage read
and a content negotiation (PEP 691, :mod:`spoold.http.negotiation`), never a rendering. So
the HTTP layer needs no manifest logic, and a static web server pointed at the storage
serves the same bytes.

Every answer carries ``Vary: Accept`` (the same URL has two representations, and a cache
must not hand the JSON page to a browser), and a strong ``ETag`` from storage so clients
revalidate with ``If-None-Match`` and get 304. Redirects are relative (``../foo/``) so a
reverse proxy can mount spoold under any prefix; which path serves, redirects or is not
found is :func:`spoold.http.paths.simple_route`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET, Request

from spoold.errors import Transient
from spoold.http.conditional import etag_matches
from spoold.http.negotiation import Choice, Format, NotAcceptable, choose
from spoold.http.pagecache import PageCache
from spoold.http.paths import NotFound, Redirect, simple_route
from spoold.index.manifest import RootIndex
from spoold.access.principal import ANONYMOUS, Principal
from spoold.index.pages import parse_root_json, render_root_html, render_root_json
from spoold.storage.base import Page
from spoold.storage.keys import project_html_key, project_json_key, project_page_keys, root_page_keys
from spoold.threads import Run
from spoold.web.batched_reads import BatchedReads
from spoold.web.guard import Guard
from spoold.web.pagewatch import PageWatch
from spoold.web.protocols import StorageReader
from spoold.web.responses import LeafResource, finish_text, is_gone, send_text

log = Logger()

__all__ = ["SimplePolicy", "SimpleResource"]

#: Served when nothing was ever published, so pip sees an empty index, not an error.
_EMPTY_ROOT = {
    Format.HTML: render_root_html(RootIndex()),
    Format.JSON: render_root_json(RootIndex()),
}


@dataclass(frozen=True, slots=True)
class SimplePolicy:
    #: Index pages change with every upload; clients revalidate (cheap, thanks to ETag).
    cache_control: str = "max-age=0, must-revalidate"
    #: Seconds a client should wait before retrying when storage is down.
    retry_after: int = 30


def _query(request: Request) -> str:
    _, question, query = request.uri.partition(b"?")
    return ("?" + query.decode("latin-1")) if question else ""


class SimpleResource(LeafResource):
    """``/simple/...``; a leaf: it reads ``request.postpath`` itself."""

    def __init__(self, storage: StorageReader, run: Run, policy: SimplePolicy | None = None,
                 cache: PageCache | None = None, guard: Guard | None = None,
                 reads_in_flight: int = 2, later: Callable[..., object] | None = None,
                 watch: PageWatch | None = None) -> None:
        super().__init__()
        self.storage = storage
        self.run = run
        #: Watches the folders pages are read from, so the cache keeps them (None: they
        #: expire after the cache's ttl).
        self.watch = watch
        self.reads = BatchedReads(self._read_page, run, reads_in_flight, later)
        self.policy = policy or SimplePolicy()
        self.cache = cache
        #: Who may read (None: everyone, as with ``read = "public"``).
        self.guard = guard
        public = guard is None or guard.public
        self._cache_control = (("" if public else "private, ") + self.policy.cache_control).encode("ascii")
        #: The Accept headers seen -> the format and Content-Type they get (bounded).
        self._accepts: dict[bytes | None, tuple[Format, bytes] | None] = {}

    def _read_page(self, key: str) -> tuple[Page | None, bool]:
        """On a pool thread: the page, and whether a watch on its folder came first."""
        lasting = self.watch.watch(key) if self.watch is not None else False
        return self.storage.read_page(key), lasting

    def render_GET(self, request: Request) -> bytes | int:
        if self.cache is not None and request.method == b"GET":
            if self.guard is None or self.guard.public:
                body = self._from_memory(request)
            else:
                body = self._private_from_cache(request)
            if body is not None:
                return body
        request.setHeader(b"vary", b"Accept")
        route = simple_route(request.postpath or [])
        if isinstance(route, NotFound):
            return send_text(request, 404, route.message)
        if isinstance(route, Redirect):
            return self._redirect(request, route.location)
        return self._serve(request, route.project)

    def _from_memory(self, request: Request) -> bytes | None:
        """The common read answered at once: a public GET of a cached page with a plain
        Accept header and no condition. None: take the general path (which also serves
        from the cache, and answers everything else)."""
        hit = self._cached(request)
        if hit is None:
            return None
        page, _project, content_type = hit
        return self._send_page(request, page, content_type, b"Accept")

    def _private_from_cache(self, request: Request) -> bytes | int | None:
        """:meth:`_from_memory` for private reads: a cached page, for a reader whose
        credentials memory can judge (a cached token, a remembered password), answered
        without a Deferred. Refusals are answered here (they were counted); a hidden
        project or a filtered root takes :meth:`_read` with the principal known, exactly
        as the general path would. None: take the general path (nothing was asked yet)."""
        assert self.guard is not None
        hit = self._cached(request)
        if hit is None:
            return None
        page, project, content_type = hit
        result = self.guard.known(request)
        if result is None:
            return None  # only the pool's check can tell
        request.setHeader(b"vary", b"Accept, Authorization")
        principal = self.guard.decide(request, result, project)
        if principal is None:
            return NOT_DONE_YET  # refused, and answered
        if (principal.projects and project is None) or (project is not None and not self.guard.sees(principal, project)):
            choice = choose(_header(request, b"accept"), None)
            assert isinstance(choice, Choice)  # an Accept header _offer accepted
            return self._read(request, choice, project, principal)
        return self._send_page(request, page, content_type, b"Accept, Authorization")

    def _cached(self, request: Request) -> tuple[Page, str | None, bytes] | None:
        """The cached page a plain GET (no query, no condition, one Accept header) asks
        for, its project (None: the root) and Content-Type; None when not that simple.

        The key is made from the path as it came: only pages of normalized project names
        are ever cached, so a hit proves the route (no route is computed or remembered)."""
        assert self.cache is not None
        headers = request.requestHeaders
        if request.args or headers.hasHeader(b"if-none-match"):
            return None
        path = request.postpath
        if path == [b""]:
            project = None
        elif len(path) == 2 and not path[1] and path[0].isascii():
            project = path[0].decode("ascii")
        else:
            return None
        accept = headers.getRawHeaders(b"accept")
        if accept is not None and len(accept) != 1:
            return None
        raw = accept[0] if accept is not None else None
        offer = self._accepts.get(raw, False)
        if offer is False:
            offer = self._offer(raw)
        if offer is None:
            return None
        fmt, content_type = offer
        if project is None:
            key = root_page_keys()[fmt is Format.JSON]
        else:
            key = project_html_key(project) if fmt is Format.HTML else project_json_key(project)
        page = self.cache.get(key, count_miss=False)
        if page is None:
            return None
        return page, project, content_type

    def _send_page(self, request: Request, page: Page, content_type: bytes, vary: bytes) -> bytes:
        """The headers of a 200 with ``page``; its body, for ``render`` to send."""
        out = request.responseHeaders
        out.setRawHeaders(b"vary", [vary])
        out.setRawHeaders(b"etag", [page.etag.encode("ascii")])
        out.setRawHeaders(b"cache-control", [self._cache_control])
        out.setRawHeaders(b"x-content-type-options", [b"nosniff"])
        out.setRawHeaders(b"content-type", [content_type])
        return page.data  # Twisted adds the Content-Length

    def _offer(self, accept: bytes | None) -> tuple[Format, bytes] | None:
        choice = choose(accept.decode("latin-1") if accept is not None else None, None)
        offer = (choice.format, choice.content_type.encode("ascii")) if isinstance(choice, Choice) else None
        if len(self._accepts) < 256:
            self._accepts[accept] = offer
        return offer

    def _redirect(self, request: Request, location: str) -> bytes:
        body = send_text(request, 301, f"Moved to {location}", headers=[
            (b"location", (location + _query(request)).encode("ascii")),
            (b"cache-control", b"max-age=3600"),
        ])
        return body

    def _serve(self, request: Request, project: str | None) -> bytes | int:
        fmt = request.args.get(b"format")
        choice = choose(
            _header(request, b"accept"),
            fmt[0].decode("utf-8", "replace") if fmt else None,
        )
        if isinstance(choice, NotAcceptable):
            return send_text(request, 406, choice.message)
        if self.guard is None or self.guard.public:
            return self._read(request, choice, project, ANONYMOUS)
        # The answer depends on who asks: no shared cache may hand it to someone else.
        request.setHeader(b"vary", b"Accept, Authorization")
        d = self.guard.reader(request, project)
        known: list[Principal | None] = []
        d.addCallback(known.append)
        if not known:  # the credentials are being checked on a thread (or failed)
            d.addCallback(lambda _: None if known[0] is None
                          else self._read(request, choice, project, known[0]))
            d.addErrback(self._failed, request)
            return NOT_DONE_YET
        # Decided from memory (a cached token, a remembered password): go on at once.
        principal = known[0]
        if principal is None:
            return NOT_DONE_YET  # refused, and answered
        return self._read(request, choice, project, principal)

    def _read(self, request: Request, choice: Choice, project: str | None,
              principal: Principal) -> bytes | int:
        html, json = root_page_keys() if project is None else project_page_keys(project)
        key = html if choice.format is Format.HTML else json
        if project is not None and self.guard is not None and not self.guard.sees(principal, project):
            # Absent for this reader: the same storage read and the same answer as a
            # project that does not exist, so neither the body nor the time tells.
            d = self.reads.read(key)
            d.addCallback(lambda _: self._found(None, request, choice, project))
            d.addErrback(self._failed, request)
            return NOT_DONE_YET
        if project is None and principal.projects:
            # A token limited to projects sees only those in the root index.
            d = self.reads.read(root_page_keys()[1])
            d.addCallback(lambda read: self._filtered_root(read[0], request, choice, principal))
            d.addErrback(self._failed, request)
            return NOT_DONE_YET
        if self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                self._found(cached, request, choice, project)
                return NOT_DONE_YET
            ticket = self.cache.ticket()
        d = self.reads.read(key)
        if self.cache is not None:
            d.addCallback(self._remember, key, ticket)
        else:
            d.addCallback(lambda read: read[0])
        d.addCallback(self._found, request, choice, project)
        d.addErrback(self._failed, request)
        return NOT_DONE_YET

    def _filtered_root(self, page: Page | None, request: Request, choice: Choice,
                       principal: Principal) -> None:
        root = parse_root_json(page.data) if page is not None else RootIndex()
        visible = RootIndex(root.generation, tuple(
            entry for entry in root.projects if self.guard is not None
            and self.guard.sees(principal, entry.project)))
        data = render_root_html(visible) if choice.format is Format.HTML else render_root_json(visible)
        self._found(Page(data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'), request, choice, None)

    def _remember(self, read: tuple[Page | None, bool], key: str, ticket: tuple[float, int]) -> Page | None:
        page, lasting = read
        if page is not None and self.cache is not None:
            self.cache.put(key, page, ticket, lasting=lasting)
        return page

    def _found(self, page: Page | None, request: Request, choice: Choice, project: str | None) -> None:
        if is_gone(request):
            return
        if page is None:
            if project is not None:
                finish_text(request, 404, f"No project named {project!r} on this index")
                return
            data = _EMPTY_ROOT[choice.format]
            page = Page(data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"')
        request.setHeader(b"etag", page.etag.encode("ascii"))
        request.setHeader(b"cache-control", self._cache_control)
        request.setHeader(b"x-content-type-options", b"nosniff")
        if etag_matches(request.getHeader(b"if-none-match"), page.etag):
            request.setResponseCode(304)
            request.finish()
            return
        request.setHeader(b"content-type", choice.content_type.encode("ascii"))
        request.setHeader(b"content-length", str(len(page.data)).encode("ascii"))
        if request.method != b"HEAD":
            request.write(page.data)
        request.finish()

    def _failed(self, failure: Failure, request: Request) -> None:
        if failure.check(Transient):
            finish_text(request, 503, f"The index storage is unavailable: {failure.value}",
                        headers=[(b"retry-after", str(self.policy.retry_after).encode())])
            return
        log.failure("reading an index page failed", failure)
        finish_text(request, 500, "Internal error while reading the index; see the server log")


def _header(request: Request, name: bytes) -> str | None:
    values = request.requestHeaders.getRawHeaders(name)
    if values is None:
        return None
    return ", ".join(v.decode("latin-1") for v in values)
