"""Browser sessions: a signed, expiring cookie, its CSRF token, and the secret behind both.

A session is a cookie (``spoold_session``) holding the user, when it was issued, when it
expires and a random session id, signed with HMAC-SHA256. Nothing is stored per session,
so every process and host that shares the storage accepts it -- they share the secret,
which lives in the storage (``.spoold/explorer/session-secret``, never served, never
logged) and is created once, by compare-and-swap, by whichever process needs it first.

The cookie is ``HttpOnly``, ``SameSite=Lax`` (a link from elsewhere still finds you
logged in; a cross-site POST carries no cookie), ``Secure`` when the request came over
HTTPS, and expires after ``lifetime`` seconds. Logging out clears it in the browser; a
copy taken before stays valid until it expires (no server-side session store), and a
session of a user removed from the htpasswd file is refused at once (the caller checks).

Every form carries a CSRF token: for a session, an HMAC of its id (:meth:`Sessions.csrf`);
for the login form, which comes before any session, a random value that must match a
cookie set with the form (double submit, :func:`login_token`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from spoold.storage.base import Storage
from spoold.storage.keys import SESSION_SECRET, first_login_key

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "Session",
    "Sessions",
    "cookie_header",
    "first_login_seen",
    "load_secret",
    "login_token",
    "mark_first_login",
    "tokens_match",
]

SESSION_COOKIE = "spoold_session"
LOGIN_COOKIE = "spoold_login"
_MAX_COOKIE = 4096


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _same(a: str, b: str) -> bool:
    """Constant-time equality of two strings from anywhere: compared as bytes, because
    ``hmac.compare_digest`` raises on a str with non-ASCII characters (a form field or a
    cookie can carry any)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    issued: int
    expires: int
    sid: str


class Sessions:
    """Issues and checks session cookies with one secret; thread-safe (no state)."""

    def __init__(self, secret: bytes, *, lifetime: float, clock: Callable[[], float]) -> None:
        if len(secret) < 32:
            raise ValueError("a session secret has at least 32 bytes")
        self._secret = secret
        self.lifetime = int(lifetime)
        self.clock = clock

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, b"session|" + payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, user: str) -> tuple[str, Session]:
        now = int(self.clock())
        session = Session(user, now, now + self.lifetime, secrets.token_hex(16))
        payload = _b64(json.dumps({"u": user, "i": session.issued, "e": session.expires,
                                   "s": session.sid}, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._sign(payload)}", session

    def read(self, value: str | bytes | None) -> Session | None:
        """The session a cookie holds, or None: missing, forged, damaged or expired."""
        if not value:
            return None
        if isinstance(value, bytes):
            try:
                value = value.decode("ascii")
            except UnicodeDecodeError:
                return None
        if len(value) > _MAX_COOKIE or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        try:
            doc = json.loads(_unb64(payload))
            session = Session(str(doc["u"]), int(doc["i"]), int(doc["e"]), str(doc["s"]))
        except (ValueError, KeyError, TypeError):
            return None
        if not session.issued <= self.clock() < session.expires:
            return None
        return session

    def csrf(self, session: Session) -> str:
        return _b64(hmac.new(self._secret, b"csrf|" + session.sid.encode("ascii"), hashlib.sha256).digest())

    def check_csrf(self, session: Session, token: str | None) -> bool:
        return bool(token) and _same(self.csrf(session), str(token))


def login_token() -> str:
    """A random token for the login form and its cookie (double submit)."""
    return secrets.token_urlsafe(24)


def tokens_match(cookie: str | bytes | None, field: str | None) -> bool:
    if not cookie or not field:
        return False
    if isinstance(cookie, bytes):
        cookie = cookie.decode("ascii", "replace")
    return len(field) >= 24 and _same(cookie, field)


def cookie_header(name: str, value: str, *, max_age: int | None, secure: bool) -> bytes:
    """A ``Set-Cookie`` value: HttpOnly, SameSite=Lax, Path=/, Secure over HTTPS;
    ``max_age`` 0 deletes the cookie, None makes it last as long as the browser."""
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode("ascii")


def load_secret(storage: Storage) -> bytes:
    """The storage's session secret, created now if there is none (exactly one process
    wins the creation: a compare-and-swap; the others read the winner's)."""
    for _ in range(10):
        doc = storage.read_doc(SESSION_SECRET)
        if doc is not None:
            secret = _unb64(doc.data.decode("ascii").strip())
            if len(secret) >= 32:
                return secret
            raise ValueError(f"{SESSION_SECRET} is damaged; delete it to make a new one "
                             "(every session then ends)")
        fresh = secrets.token_bytes(32)
        if storage.swap_doc(SESSION_SECRET, (_b64(fresh) + "\n").encode("ascii"), 1, None):
            return fresh
    raise RuntimeError("the session secret could not be created")


def first_login_seen(storage: Storage, user: str) -> bool:
    return storage.stat(first_login_key(user)) is not None


def mark_first_login(storage: Storage, user: str, when: str) -> None:
    data = (when + "\n").encode("ascii")
    try:
        storage.put_file(first_login_key(user), data, hashlib.sha256(data).hexdigest())
    except Exception:  # already marked (with another time): that is all we wanted to know
        if storage.stat(first_login_key(user)) is None:
            raise
