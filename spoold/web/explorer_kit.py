"""What every explorer resource shares: who is asking, the answers, and the safety headers.

:class:`Explorer` is built once by :func:`spoold.web.site.build_site` and handed to the
explorer's resources (:mod:`spoold.web.explorer`, :mod:`spoold.web.account`,
:mod:`spoold.web.session`, :mod:`spoold.web.jsonapi`). The rule for a reader who must log
in first (private reads, no credentials) is :meth:`Explorer.reader`'s: a browser asking
for a page (``Accept: text/html``) is sent to the login page (303); anything else -- pip,
uv, curl, a script -- gets 401 with the ``Basic`` challenge, as from ``/simple/``.

Every page carries ``Content-Security-Policy`` (no inline script or style, scripts and
styles from this site only, images from this site or ``data:`` only, no framing, forms
post here only), ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and
``Referrer-Policy: same-origin``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET, Request

from spoold.access.events import Event
from spoold.access.principal import Kind, Principal
from spoold.access.store import AccessStore
from spoold.config import Settings
from spoold.errors import Transient
from spoold.explorer.cache import ExplorerCache
from spoold.explorer.forms import base_url, login_location, parse_form, peer_trusted, same_origin, wants_html
from spoold.explorer.pages import Nav, page
from spoold.explorer.session import Session
from spoold.storage.base import Storage
from spoold.threads import Run
from spoold.web.guard import CHALLENGE
from spoold.web.request import peer_host
from spoold.web.responses import is_gone

__all__ = ["CSP", "Explorer", "Who", "security_headers"]

log = Logger()

CSP = (b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def security_headers(request: Request) -> None:
    request.setHeader(b"content-security-policy", CSP)
    request.setHeader(b"x-content-type-options", b"nosniff")
    request.setHeader(b"x-frame-options", b"DENY")
    request.setHeader(b"referrer-policy", b"same-origin")


@dataclass(frozen=True, slots=True)
class Who:
    principal: Principal
    #: The browser session it came from (None: credentials in the request, or none).
    session: Session | None = None


class Explorer:
    def __init__(self, *, storage: Storage, run: Run, guard: Any, settings: Settings,
                 cache: ExplorerCache, reactor: Any) -> None:
        self.storage = storage
        self.run = run
        self.guard = guard
        self.settings = settings
        self.cache = cache
        self.reactor = reactor
        self.access = AccessStore(storage)
        self.public = settings.public_reads
        self.data_dir = Path(settings.data_dir)

    # -- the request ---------------------------------------------------------------------

    def secure(self, request: Request) -> bool:
        return self.base(request).startswith("https:")

    def base(self, request: Request) -> str:
        host = request.getHeader(b"host")
        own = request.getHost()
        fallback = f"{getattr(own, 'host', 'localhost')}:{getattr(own, 'port', 80)}"
        return base_url(
            host.decode("latin-1") if host else None, secure=request.isSecure(), fallback=fallback,
            forwarded_proto=_text(request.getHeader(b"x-forwarded-proto")),
            forwarded_host=_text(request.getHeader(b"x-forwarded-host")),
            trusted=peer_trusted(peer_host(request), self.settings.forwarded_allow))

    def form(self, request: Request) -> dict[str, str]:
        content = request.content
        if content is None:
            return {}
        content.seek(0)
        return parse_form(content.read())

    def same_site(self, request: Request) -> bool:
        return same_origin(_text(request.getHeader(b"origin")), _text(request.getHeader(b"referer")),
                           self.base(request))

    # -- who is asking ---------------------------------------------------------------------

    async def who(self, request: Request) -> Who | None:
        """The principal (anonymous without credentials), or None after answering bad
        credentials (401 with the challenge) or throttling (429)."""
        result = await self.guard.principal(request)
        if result.principal is None:
            self.send(request, self.render_message(None, result.status, "Not logged in", result.message),
                      status=result.status, headers=result.headers)
            return None
        return Who(result.principal, getattr(result, "session", None))

    async def reader(self, request: Request) -> Who | None:
        """:meth:`who`, and for private reads a reader who must log in is answered."""
        who = await self.who(request)
        if who is None or self.public or who.principal.authenticated:
            return who
        self.must_log_in(request)
        return None

    def must_log_in(self, request: Request) -> None:
        if wants_html(_text(request.getHeader(b"accept"))):
            if request.method in (b"GET", b"HEAD"):
                self.redirect(request, login_location(request.uri.decode("latin-1")))
            else:  # a form sent without a session: refused, and no password dialog
                self.message(request, None, 403, "Refused",
                             "You are not logged in (or this form came from another site); nothing "
                             "was changed.", link=("/login", "Log in"))
            return
        body = self.render_message(None, 401, "Log in first",
                                   "This index is private: log in, or send a user name and password "
                                   "or a token (as the password of the user __token__).")
        self.send(request, body, status=401, headers=[CHALLENGE])

    def visible(self, principal: Principal) -> Callable[[str], bool] | None:
        """The search and home filter: a token limited to projects sees only those
        (None: everything)."""
        if principal.projects and not self.public:
            allowed = principal.projects
            return lambda project: project in allowed
        if self.public or principal.authenticated:
            return None
        return lambda project: False

    def nav(self, who: Who | None, query: str = "") -> Nav:
        if who is None or who.principal.kind is not Kind.USER:
            return Nav(query=query)
        csrf = self.guard.keeper.csrf(who.session) if who.session is not None else None
        return Nav(user=who.principal.user, csrf=csrf, query=query)

    # -- answering -------------------------------------------------------------------------

    def render_message(self, who: Who | None, status: int, heading: str, message: str,
                       link: tuple[str, str] | None = None) -> bytes:
        return page("message", heading, self.nav(who), heading=heading, message=message, link=link)

    def send(self, request: Request, body: bytes, *, status: int = 200,
             cache: str = "private, no-cache", headers: Iterable[tuple[bytes, bytes]] = (),
             content_type: bytes = b"text/html; charset=utf-8") -> None:
        if is_gone(request):
            return
        request.setResponseCode(status)
        security_headers(request)
        request.setHeader(b"content-type", content_type)
        request.setHeader(b"cache-control", cache.encode("ascii"))
        if not self.public:
            request.setHeader(b"vary", b"Cookie, Authorization")
        for name, value in headers:
            if name == b"set-cookie":
                request.responseHeaders.addRawHeader(name, value)
            else:
                request.setHeader(name, value)
        request.setHeader(b"content-length", str(len(body)).encode("ascii"))
        if request.method != b"HEAD":
            request.write(body)
        request.finish()

    def message(self, request: Request, who: Who | None, status: int, heading: str, message: str,
                link: tuple[str, str] | None = None) -> None:
        self.send(request, self.render_message(who, status, heading, message, link), status=status,
                  cache="no-store")

    def redirect(self, request: Request, location: str, status: int = 303,
                 headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
        body = f"See {location}\n".encode()
        self.send(request, body, status=status, headers=[(b"location", location.encode("latin-1")), *headers],
                  content_type=b"text/plain; charset=utf-8",
                  cache="max-age=3600" if status == 301 else "no-store")

    def serve(self, request: Request, handler: Callable[[], Coroutine[Any, Any, None]]) -> int:
        """Run an async handler for ``request``; storage faults are 503, bugs 500."""
        d = Deferred.fromCoroutine(handler())
        d.addErrback(self._failed, request)
        return NOT_DONE_YET

    def _failed(self, failure: Failure, request: Request) -> None:
        if failure.check(Transient):
            self.send(request, self.render_message(None, 503, "Try again later",
                                                   f"The index storage is unavailable: {failure.value}"),
                      status=503, cache="no-store", headers=[(b"retry-after", b"30")])
            return
        log.failure("an explorer page failed", failure)
        self.send(request, self.render_message(None, 500, "Internal error",
                                               "Something went wrong; the server log says what."),
                  status=500, cache="no-store")

    # -- the audit trail -------------------------------------------------------------------

    async def record(self, request: Request, who: Who, action: str, **fields: Any) -> None:
        agent = request.getHeader(b"user-agent")
        event = Event(action, who.principal.describe(), address=peer_host(request),
                      user_agent=agent.decode("latin-1")[:300] if agent else None, **fields)
        try:
            await self.run(self.access.record, event)
        except Exception:  # the action is done; a lost audit line must not undo it
            log.failure("cannot record {action} in the audit trail", action=action)


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None
