"""From a request's credentials (:mod:`spoold.access.credentials`) to a
:class:`~spoold.access.principal.Principal`.

Two paths, so that a read costs microseconds, not a thread hop: :meth:`Authenticator.quick`
answers from memory alone (a cached token record and a hash; a password whose success is
remembered) and is safe on the reactor thread; only when it cannot tell does the caller
run :meth:`Authenticator.check` on a thread pool (a storage read of the token record, or
bcrypt). Failed logins are throttled per address and per user
(:class:`~spoold.access.throttle.LoginThrottle`): 429 with ``Retry-After``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from spoold.access.credentials import Credentials
from spoold.access.principal import ANONYMOUS, Principal
from spoold.access.store import AccessStore
from spoold.access.throttle import LoginThrottle
from spoold.access.tokens import Token, split_token

__all__ = ["AuthResult", "Authenticator"]

_REALM_CHALLENGE = (b"www-authenticate", b'Basic realm="spoold", charset="UTF-8"')


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Who the request is, or why it is refused (401, or 429 with ``retry_after``)."""

    principal: Principal | None
    status: int = 200
    message: str = ""
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        return self.principal is not None

    @property
    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        if self.status == 401:
            return (_REALM_CHALLENGE,)
        if self.status == 429 and self.retry_after is not None:
            return ((b"retry-after", str(self.retry_after).encode("ascii")),)
        return ()


class Passwords(Protocol):
    """The htpasswd accounts (:class:`spoold.access.htpasswd.Htpasswd`)."""

    def has_user(self, user: str) -> bool: ...

    def verify(self, user: str, password: str) -> bool: ...

    def remembered(self, user: str, password: str) -> bool: ...


_INVALID = "Invalid user name or password"
_BAD_TOKEN = "Invalid or revoked token"


class Authenticator:
    """Thread-safe; ``quick`` on the reactor thread, ``check`` on a pool thread."""

    def __init__(
        self,
        passwords: Passwords,
        store: AccessStore,
        *,
        admins: frozenset[str] = frozenset(),
        throttle: LoginThrottle,
        clock: Callable[[], float],
        cache_seconds: float = 10.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.passwords = passwords
        self.store = store
        self.admins = admins
        self.throttle = throttle
        self.clock = clock
        self.cache_seconds = cache_seconds
        self.now = now
        #: token id -> (its record or None, cached until, its principal)
        self._tokens: dict[str, tuple[Token | None, float, Principal | None]] = {}
        self._used: dict[str, float] = {}
        self._due: set[str] = set()
        self._lock = threading.Lock()

    # -- the two paths ---------------------------------------------------------------------

    def quick(self, credentials: Credentials | None, address: str | None) -> AuthResult | None:
        """The answer from memory, or None when only :meth:`check` can tell."""
        if credentials is None:
            return AuthResult(ANONYMOUS)
        blocked = self._blocked(credentials, address)
        if blocked is not None:
            return blocked
        if credentials.token is not None:
            parts = split_token(credentials.token)
            if parts is None:
                return self._failed(credentials, address, _BAD_TOKEN)
            with self._lock:
                cached = self._tokens.get(parts[0])
            if cached is None or cached[1] <= self.clock():
                return None
            return self._token_result(cached[0], parts[1], credentials, address, cached[2])
        assert credentials.user is not None and credentials.password is not None
        if self.passwords.remembered(credentials.user, credentials.password):
            return AuthResult(self._user(credentials.user))
        return None

    def check(self, credentials: Credentials | None, address: str | None) -> AuthResult:
        """The full check: may read a token record from the storage, or run bcrypt."""
        quick = self.quick(credentials, address)
        if quick is not None:
            return quick
        assert credentials is not None
        if credentials.token is not None:
            token_id, secret = split_token(credentials.token) or ("", "")
            token = self.store.token(token_id)
            principal = token.principal(admin=token.user in self.admins) if token is not None else None
            with self._lock:
                self._tokens[token_id] = (token, self.clock() + self.cache_seconds, principal)
                if len(self._tokens) > 10_000:
                    self._tokens.pop(next(iter(self._tokens)))
            return self._token_result(token, secret, credentials, address, principal)
        assert credentials.user is not None and credentials.password is not None
        if self.passwords.verify(credentials.user, credentials.password):
            return AuthResult(self._user(credentials.user))
        return self._failed(credentials, address, _INVALID)

    def forget(self) -> None:
        """Drop cached token records (SIGHUP; a revocation seen here)."""
        with self._lock:
            self._tokens.clear()

    # -- helpers ---------------------------------------------------------------------------

    def _user(self, user: str) -> Principal:
        return Principal.for_user(user, admin=user in self.admins)

    def _key(self, credentials: Credentials) -> str | None:
        if credentials.user is not None:
            return credentials.user
        parts = split_token(credentials.token or "")
        return f"token {parts[0]}" if parts else None

    def _blocked(self, credentials: Credentials, address: str | None) -> AuthResult | None:
        if self.throttle.quiet:
            return None
        wait = self.throttle.retry_after(address, self._key(credentials))
        if wait is None:
            return None
        return AuthResult(None, 429, f"Too many failed logins; try again in {wait} seconds",
                          retry_after=wait)

    def _failed(self, credentials: Credentials, address: str | None, message: str) -> AuthResult:
        self.throttle.failed(address, self._key(credentials))
        return AuthResult(None, 401, message)

    def _token_result(self, token: Token | None, secret: str, credentials: Credentials,
                      address: str | None, principal: Principal | None) -> AuthResult:
        # Compare even when there is no record, so that timing does not tell ids apart.
        matched = token.matches(secret) if token is not None else _compare_nothing(secret)
        if token is None or not matched:
            return self._failed(credentials, address, _BAD_TOKEN)
        if not self.passwords.has_user(token.user):
            return self._failed(credentials, address, f"{_BAD_TOKEN}: its user no longer exists")
        if token.expired(self.now()):
            return AuthResult(None, 401, token.expiry_message())
        self._note_use(token.id)
        return AuthResult(principal or token.principal(admin=token.user in self.admins))

    def _note_use(self, token_id: str) -> None:
        """Note a use for ``last used``, at most once a minute per token so reads stay
        cheap; the write happens later, off the request (:meth:`write_uses`)."""
        now = self.clock()
        with self._lock:
            if now - self._used.get(token_id, -1e18) >= 60:
                self._used[token_id] = now
                self._due.add(token_id)

    def write_uses(self) -> int:
        """Write the noted uses to the storage (blocking: a thread, every few seconds)."""
        with self._lock:
            due, self._due = sorted(self._due), set()
        for token_id in due:
            self.store.mark_used(token_id, self.now())
        return len(due)


def _compare_nothing(secret: str) -> bool:
    Token(id="0" * 16, user="-", scopes=frozenset(), secret_sha256="0" * 64).matches(secret)
    return False
