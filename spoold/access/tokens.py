"""API tokens: long random secrets, shown once, stored only as a hash, checked in microseconds.

A token reads ``spoold_<id>_<secret>``: the id (16 hex digits) names the stored record, the
secret (32 random bytes, URL-safe base64) is never stored -- only its sha256. A token is a
secret of 256 bits, not a password a person picked, so a plain hash is enough (nobody can
guess one from its hash) and checking it costs a hash and a constant-time comparison, not
the hundreds of milliseconds of bcrypt. Every character is URL-safe, so a token works as
the user name of an index URL (``https://TOKEN@host/simple/``) as pip documents.

Pure code: records in, records out; :mod:`spoold.access.store` keeps them in the storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from packaging.utils import InvalidName, canonicalize_name

from spoold.access.principal import Kind, Principal, Scope
from spoold.errors import SpooldError

__all__ = [
    "PREFIX",
    "BadToken",
    "Token",
    "TokenExpired",
    "new_token",
    "parse_expiry",
    "split_token",
]

PREFIX = "spoold_"
_TOKEN = re.compile(r"^spoold_(?P<id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})$")
_ID = re.compile(r"^[0-9a-f]{16}$")


class BadToken(SpooldError):
    """A token that cannot be created as asked (bad scope, project or expiry)."""

    code = "bad-token"


class TokenExpired(SpooldError):
    """A valid token past its expiry: 401 with the date, so the owner knows to renew it."""

    code = "token-expired"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def split_token(text: str) -> tuple[str, str] | None:
    """``(id, secret)`` of something shaped like a token, else None (then it is a password)."""
    match = _TOKEN.match(text)
    return (match["id"], match["secret"]) if match else None


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("a time must be an ISO 8601 string")
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Token:
    """One token's record (what ``spoold token list`` shows, plus the secret's hash)."""

    id: str
    user: str
    scopes: frozenset[Scope]
    #: Normalized project names; empty: every project the user may reach.
    projects: frozenset[str] = frozenset()
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: None: never expires.
    expires: datetime | None = None
    description: str = ""
    #: sha256 of the secret, hex.
    secret_sha256: str = field(default="", repr=False)

    def matches(self, secret: str) -> bool:
        """Whether ``secret`` is this token's, in constant time."""
        return hmac.compare_digest(_hash(secret), self.secret_sha256)

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and now >= self.expires

    def expiry_message(self) -> str:
        assert self.expires is not None
        shown = (self.expires - timedelta(seconds=1)).date().isoformat()
        return (f"token {self.id} expired on {shown}; create a new one with "
                f"`spoold token create --user {self.user}` or on the account page")

    def principal(self, *, admin: bool) -> Principal:
        return Principal(Kind.TOKEN, user=self.user, admin=admin, token_id=self.id,
                         scopes=self.scopes, projects=self.projects)

    def allows(self) -> str:
        """What the token may do, for 403 messages."""
        scopes = "upload and read" if Scope.UPLOAD in self.scopes else "read"
        where = ", ".join(sorted(self.projects)) if self.projects else "every project of its user"
        return f"token {self.id} allows {scopes} on {where}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "scopes": sorted(s.value for s in self.scopes),
            "projects": sorted(self.projects),
            "created": _time(self.created),
            "expires": _time(self.expires) if self.expires else None,
            "description": self.description,
            "sha256": self.secret_sha256,
        }

    def listing(self, last_used: datetime | None) -> dict[str, Any]:
        """The ``token list --json`` object: everything but the secret's hash."""
        doc = self.to_json()
        del doc["sha256"]
        doc["last_used"] = _time(last_used) if last_used else None
        return doc

    @classmethod
    def from_json(cls, doc: object) -> Token:
        if not isinstance(doc, Mapping):
            raise ValueError("a token record is a JSON object")
        token_id = doc.get("id")
        if not isinstance(token_id, str) or not _ID.match(token_id):
            raise ValueError("a token record needs a 16-hex-digit id")
        user, digest = doc.get("user"), doc.get("sha256")
        if not isinstance(user, str) or not user or not isinstance(digest, str):
            raise ValueError("a token record needs user and sha256")
        scopes = doc.get("scopes")
        projects = doc.get("projects") or []
        if not isinstance(scopes, list) or not isinstance(projects, list):
            raise ValueError("scopes and projects are lists")
        expires = doc.get("expires")
        return cls(
            id=token_id,
            user=user,
            scopes=frozenset(Scope(s) for s in scopes),
            projects=frozenset(str(p) for p in projects),
            created=_parse_time(doc.get("created")),
            expires=_parse_time(expires) if expires is not None else None,
            description=str(doc.get("description") or ""),
            secret_sha256=digest,
        )


def parse_expiry(value: str | None, now: datetime) -> datetime | None:
    """``--expires DAYS|YYYY-MM-DD``: a token valid DAYS days, or through the given date
    (it expires when that day ends, UTC). None: never expires."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        days = int(text)
        if not 1 <= days <= 3650:
            raise BadToken(f"--expires {text}: give 1 to 3650 days, or a date YYYY-MM-DD")
        return now + timedelta(days=days)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadToken(f"--expires {text!r}: give a number of days or a date YYYY-MM-DD") from None
    expires = datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=UTC)
    if expires <= now:
        raise BadToken(f"--expires {text}: that date has passed")
    return expires


def new_token(
    user: str,
    scopes: Iterable[str],
    projects: Iterable[str] = (),
    *,
    expires: datetime | None = None,
    description: str = "",
    now: datetime | None = None,
) -> tuple[Token, str]:
    """A new token record and its secret string (shown once, never stored)."""
    try:
        chosen = frozenset(Scope(s) for s in scopes) or frozenset({Scope.READ})
    except ValueError:
        raise BadToken("a scope is read or upload (upload includes read)") from None
    normalized: set[str] = set()
    for project in projects:
        try:
            normalized.add(canonicalize_name(project, validate=True))
        except InvalidName:
            raise BadToken(f"{project[:100]!r} is not a project name") from None
    if len(description) > 200 or any(ord(c) < 0x20 for c in description):
        raise BadToken("a description is one line of at most 200 characters")
    token_id = secrets.token_hex(8)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
    token = Token(
        id=token_id,
        user=user,
        scopes=chosen,
        projects=frozenset(normalized),
        created=now or datetime.now(UTC),
        expires=expires,
        description=description,
        secret_sha256=_hash(secret),
    )
    return token, f"{PREFIX}{token_id}_{secret}"
