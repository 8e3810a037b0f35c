"""Logging in with a browser: the session cookie, the guard that honours it, the forms.

* :class:`FormRequest` -- the site's request, keeping the small form bodies of the
  explorer's POSTs (login, logout, tokens, manage) in memory; every other body is still
  read and dropped unless it is an upload (:mod:`spoold.web.request`).
* :class:`SessionKeeper` -- the session secret (:func:`spoold.explorer.session.load_secret`,
  read or created in the storage once, on first use) and the cookies it signs.
* :class:`SessionGuard` -- the read guard (:class:`spoold.web.guard.Guard`) that also
  takes a session cookie when a request has no ``Authorization`` header, so a logged-in
  browser downloads files and index pages without a password prompt. A session is a
  user (admin when listed in ``admins``) and ends when the user leaves the htpasswd file.
* ``/login`` (GET: the form, with a CSRF token that must match a cookie set with it;
  POST: the check, through the :class:`~spoold.access.authenticate.Authenticator`, so
  failed logins are throttled -- 429 -- like Basic ones) and ``/logout`` (POST, CSRF).

The first-run marker (:func:`spoold.explorer.session.mark_first_login`) is set on the
first web login of ``admin``: from then on ``/`` stops pointing at the password file.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.web.server import Request

from spoold.access.authenticate import AuthResult
from spoold.access.credentials import TOKEN_USER, Credentials
from spoold.access.first_start import ADMIN
from spoold.access.principal import ANONYMOUS, Principal
from spoold.access.tokens import split_token
from spoold.explorer.forms import MAX_FORM, safe_next
from spoold.explorer.pages import Nav, page
from spoold.explorer.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Session,
    Sessions,
    cookie_header,
    load_secret,
    login_token,
    mark_first_login,
    tokens_match,
)
from spoold.storage.base import Storage
from spoold.threads import Run
from spoold.web.explorer_kit import Explorer
from spoold.web.guard import Guard
from spoold.web.request import SpooldRequest, peer_host
from spoold.web.responses import LeafResource

__all__ = ["FormRequest", "Login", "Logout", "SessionAuth", "SessionGuard", "SessionKeeper"]

_FORM_PATHS = (b"/login", b"/logout", b"/account/", b"/project/")


class FormRequest(SpooldRequest):
    """Keeps the body of a small form POST to the explorer (in memory, bounded)."""

    def gotLength(self, length: int | None) -> None:
        line = self.request_line
        if (length is not None and 0 < length <= MAX_FORM and line is not None
                and line.method == b"POST" and line.path.startswith(_FORM_PATHS)):
            self.content = io.BytesIO()
            self._start_rate_clock()
            return
        super().gotLength(length)


@dataclass(frozen=True, slots=True)
class SessionAuth(AuthResult):
    session: Session | None = None


class SessionKeeper:
    """The session secret, loaded on first use (one storage read, or one creation)."""

    def __init__(self, storage: Storage, run: Run, *, lifetime: float, clock: Callable[[], float],
                 admins: frozenset[str], users: Callable[[], frozenset[str]]) -> None:
        self.storage = storage
        self.run = run
        self.lifetime = lifetime
        self.clock = clock
        self.admins = admins
        self.users = users
        self._sessions: Sessions | None = None
        self._waiting: list[Deferred[Sessions]] | None = None
        self.admin_seen = False

    def sessions(self) -> Deferred[Sessions]:
        if self._sessions is not None:
            return succeed(self._sessions)
        d: Deferred[Sessions] = Deferred()
        if self._waiting is None:
            self._waiting = [d]
            self.run(load_secret, self.storage).addCallbacks(self._loaded, self._not_loaded)
        else:
            self._waiting.append(d)
        return d

    def _loaded(self, secret: bytes) -> None:
        self._sessions = Sessions(secret, lifetime=self.lifetime, clock=self.clock)
        waiting, self._waiting = self._waiting or [], None
        for d in waiting:
            d.callback(self._sessions)

    def _not_loaded(self, failure: Any) -> None:
        waiting, self._waiting = self._waiting or [], None
        for d in waiting:
            d.errback(failure)

    def csrf(self, session: Session) -> str | None:
        return self._sessions.csrf(session) if self._sessions is not None else None

    def check_csrf(self, session: Session | None, token: str | None) -> bool:
        return session is not None and self._sessions is not None and self._sessions.check_csrf(session, token)

    def principal_of(self, session: Session | None) -> Principal | None:
        if session is None or session.user not in self.users():
            return None
        return Principal.for_user(session.user, admin=session.user in self.admins)


class SessionGuard(Guard):
    """:class:`Guard`, plus the session cookie when no ``Authorization`` is sent."""

    def __init__(self, authenticator: Any, auth_run: Run, *, public: bool, keeper: SessionKeeper) -> None:
        super().__init__(authenticator, auth_run, public=public)
        self.keeper = keeper

    def principal(self, request: Request) -> Deferred[AuthResult]:
        if request.getHeader(b"authorization") is not None or self.authenticator is None:
            return super().principal(request)
        cookie = request.getCookie(SESSION_COOKIE.encode("ascii"))
        if not cookie:
            return succeed(SessionAuth(ANONYMOUS))

        def read(sessions: Sessions) -> AuthResult:
            session = sessions.read(cookie)
            principal = self.keeper.principal_of(session)
            if principal is None:
                return SessionAuth(ANONYMOUS)
            return SessionAuth(principal, session=session)

        return self.keeper.sessions().addCallback(read)


class Login(LeafResource):
    methods = (b"GET", b"POST")

    def __init__(self, explorer: Explorer) -> None:
        super().__init__()
        self.ex = explorer

    def render_GET(self, request: Request) -> int:
        return self.ex.serve(request, lambda: self._form(request))

    def render_POST(self, request: Request) -> int:
        return self.ex.serve(request, lambda: self._login(request))

    def _page(self, request: Request, *, token: str, next_path: str, error: str | None = None,
              user: str = "", status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        body = page("login", "Log in", Nav(), csrf=token, next=next_path, error=error, user=user)
        self.ex.send(request, body, status=status, cache="no-store", headers=headers or [])

    async def _form(self, request: Request) -> None:
        if request.postpath not in ([], [b""]):
            self.ex.message(request, None, 404, "Not found", "There is no such page.")
            return
        who = await self.ex.who(request)
        if who is None:
            return
        next_path = safe_next(_arg(request, b"next"))
        if who.session is not None:
            self.ex.redirect(request, next_path)
            return
        token = login_token()
        cookie = cookie_header(LOGIN_COOKIE, token, max_age=3600, secure=self.ex.secure(request))
        self._page(request, token=token, next_path=next_path, headers=[(b"set-cookie", cookie)])

    async def _login(self, request: Request) -> None:
        ex = self.ex
        form = ex.form(request)
        next_path = safe_next(form.get("next"))
        token = form.get("csrf", "")
        if not ex.same_site(request) or not tokens_match(request.getCookie(LOGIN_COOKIE.encode()), token):
            ex.message(request, None, 403, "Refused",
                       "This form has expired or was not sent from this site; load the login page again.",
                       link=("/login", "Log in"))
            return
        user, password = form.get("user", "").strip(), form.get("password", "")
        authenticator = ex.guard.authenticator
        if not user or not password:
            self._page(request, token=token, next_path=next_path, user=user, status=400,
                       error="Give a user name and a password.")
            return
        if user == TOKEN_USER or split_token(user) or split_token(password) or authenticator is None:
            self._page(request, token=token, next_path=next_path, status=400,
                       error="Log in with a user name and password; tokens are for tools.")
            return
        credentials = Credentials(user=user, password=password)
        address = peer_host(request)
        result = authenticator.quick(credentials, address)
        if result is None:
            result = await ex.guard.auth_run(authenticator.check, credentials, address)
        if result.status == 429:
            self._page(request, token=token, next_path=next_path, user=user, status=429,
                       error=result.message, headers=list(result.headers))
            return
        if result.principal is None:
            self._page(request, token=token, next_path=next_path, user=user, status=403,
                       error="Invalid user name or password.")
            return
        keeper: SessionKeeper = ex.guard.keeper
        sessions = await keeper.sessions()
        value, _ = sessions.issue(user)
        if user == ADMIN and not keeper.admin_seen:
            await ex.run(mark_first_login, ex.storage, user, datetime.now(UTC).isoformat())
            keeper.admin_seen = True
        secure = ex.secure(request)
        ex.redirect(request, next_path, headers=[
            (b"set-cookie", cookie_header(SESSION_COOKIE, value, max_age=int(keeper.lifetime), secure=secure)),
            (b"set-cookie", cookie_header(LOGIN_COOKIE, "", max_age=0, secure=secure)),
        ])


class Logout(LeafResource):
    methods = (b"POST",)

    def __init__(self, explorer: Explorer) -> None:
        super().__init__()
        self.ex = explorer

    def render_POST(self, request: Request) -> int:
        return self.ex.serve(request, lambda: self._logout(request))

    async def _logout(self, request: Request) -> None:
        ex = self.ex
        who = await ex.who(request)
        if who is None:
            return
        form = ex.form(request)
        if who.session is not None and not (ex.same_site(request)
                                            and ex.guard.keeper.check_csrf(who.session, form.get("csrf"))):
            ex.message(request, who, 403, "Refused", "This form was not sent from this site.")
            return
        cookie = cookie_header(SESSION_COOKIE, "", max_age=0, secure=ex.secure(request))
        ex.redirect(request, "/", headers=[(b"set-cookie", cookie)])


def _arg(request: Request, name: bytes) -> str | None:
    values = request.args.get(name)
    return values[0].decode("utf-8", "replace") if values else None
