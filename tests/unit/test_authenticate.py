"""From an Authorization header to a principal: every form clients send, every refusal."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from spoold.access.authenticate import Authenticator
from spoold.access.credentials import Credentials, parse_authorization
from spoold.access.principal import Kind
from spoold.access.store import AccessStore
from spoold.access.throttle import LoginThrottle
from spoold.access.tokens import new_token
from spoold.storage.memory import MemoryStorage

NOW = datetime(2027, 1, 10, tzinfo=UTC)


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


class Passwords:
    def __init__(self) -> None:
        self.users = frozenset({"alice", "root"})
        self.slow = 0
        self.known: set[tuple[str, str]] = set()

    def verify(self, user: str, password: str) -> bool:
        self.slow += 1
        ok = user in self.users and password == "right"
        if ok:
            self.known.add((user, password))
        return ok

    def remembered(self, user: str, password: str) -> bool:
        return (user, password) in self.known

    def has_user(self, user: str) -> bool:
        return user in self.users


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def parts(clock: Clock) -> tuple[Authenticator, AccessStore, Passwords]:
    store = AccessStore(MemoryStorage())
    passwords = Passwords()
    auth = Authenticator(passwords, store, admins=frozenset({"root"}),
                         throttle=LoginThrottle(clock=clock), clock=clock, cache_seconds=10,
                         now=lambda: NOW)
    return auth, store, passwords


def test_the_forms_clients_send() -> None:
    token, secret = new_token("alice", ["read"])
    assert parse_authorization(None) is None
    assert parse_authorization(basic("alice", "pw")) == Credentials(user="alice", password="pw")
    assert parse_authorization(basic("__token__", secret)) == Credentials(token=secret)
    assert parse_authorization(basic(secret, "")) == Credentials(token=secret)  # https://TOKEN@host
    assert parse_authorization(b"Bearer " + secret.encode()) == Credentials(token=secret)
    assert parse_authorization(basic("alice", "")) == Credentials(user="alice", password="")
    for junk in (b"Basic !!!", b"Digest x", b"Basic " + base64.b64encode(b"nocolon"),
                 b"Basic " + base64.b64encode(b"__token__:"), b"Bearer "):
        assert parse_authorization(junk) is None
    assert "..." in repr(Credentials(token=secret)) and secret not in repr(Credentials(token=secret))


def test_passwords_slow_once_then_remembered(parts) -> None:
    auth, _, passwords = parts
    creds = parse_authorization(basic("alice", "right"))
    assert auth.quick(creds, "10.0.0.1") is None  # needs bcrypt: the caller uses a thread
    result = auth.check(creds, "10.0.0.1")
    assert result.ok and result.principal.user == "alice" and not result.principal.admin
    assert auth.quick(creds, "10.0.0.1").principal.user == "alice"
    assert passwords.slow == 1
    assert auth.check(parse_authorization(basic("root", "right")), None).principal.admin
    refused = auth.check(parse_authorization(basic("alice", "wrong")), None)
    assert refused.status == 401 and dict(refused.headers)[b"www-authenticate"].startswith(b"Basic")


def test_tokens_from_the_store_then_from_memory(parts, clock: Clock) -> None:
    auth, store, _ = parts
    token, secret = new_token("alice", ["upload"], ["demo"], now=NOW)
    store.add_token(token)
    creds = Credentials(token=secret)
    assert auth.quick(creds, None) is None  # first sight: read the record in a thread
    result = auth.check(creds, None)
    assert result.ok and result.principal.kind is Kind.TOKEN
    assert result.principal.projects == {"demo"} and result.principal.token_id == token.id
    assert auth.quick(creds, None).ok  # cached: microseconds, no thread
    # Revoked on another host: refused once the cache time has passed.
    store.revoke_token(token.id)
    assert auth.quick(creds, None).ok
    clock.now += 11
    assert auth.quick(creds, None) is None
    assert auth.check(creds, None).status == 401


def test_token_refusals(parts) -> None:
    auth, store, passwords = parts
    expired, expired_secret = new_token("alice", ["read"], expires=NOW - timedelta(days=1), now=NOW - timedelta(days=9))
    store.add_token(expired)
    result = auth.check(Credentials(token=expired_secret), None)
    assert result.status == 401 and f"token {expired.id} expired on {(NOW - timedelta(days=2)).date()}" in result.message
    assert auth.check(Credentials(token="spoold_" + "0" * 16 + "_" + "A" * 43), None).status == 401
    assert auth.check(Credentials(token="not-a-token"), None).status == 401
    gone, gone_secret = new_token("bob", ["read"], now=NOW)
    store.add_token(gone)
    result = auth.check(Credentials(token=gone_secret), None)
    assert result.status == 401 and "no longer exists" in result.message
    wrong = expired_secret.rsplit("_", 1)[0] + "_" + "B" * 43
    assert auth.check(Credentials(token=wrong), None).status == 401


def test_failed_logins_are_throttled_and_others_are_not(parts, clock: Clock) -> None:
    auth, _, passwords = parts
    for _ in range(11):
        assert auth.check(parse_authorization(basic("alice", "guess")), "10.0.0.9").status == 401
    blocked = auth.check(parse_authorization(basic("alice", "right")), "10.0.0.9")
    assert blocked.status == 429 and dict(blocked.headers)[b"retry-after"] == b"60"
    slow_before = passwords.slow
    assert auth.check(parse_authorization(basic("root", "right")), "192.0.2.1").ok
    assert passwords.slow == slow_before + 1  # another user from another address: not slowed
    clock.now += 61
    assert auth.check(parse_authorization(basic("alice", "right")), "10.0.0.9").ok


def test_last_used_is_written_at_most_once_a_minute(parts, clock: Clock) -> None:
    auth, store, _ = parts
    token, secret = new_token("alice", ["read"], now=NOW)
    store.add_token(token)
    creds = Credentials(token=secret)
    for _ in range(5):
        assert auth.check(creds, None).ok
    assert auth.write_uses() == 1 and store.last_used(token.id) == NOW
    assert auth.quick(creds, None).ok and auth.write_uses() == 0
    clock.now += 61
    assert auth.check(creds, None).ok and auth.write_uses() == 1
