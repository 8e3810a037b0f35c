"""Where tokens, roles and events live: in the storage, beside the index, never served.

Keeping them in the storage (the local tree or the bucket) is what makes every host that
shares a bucket agree on them without a database: a token created or revoked through one
host is read by the others (within their cache time). The keys are under ``.spoold/``,
which neither ``/simple/`` nor ``/packages/`` nor a presigned URL can name and the shipped
nginx configuration refuses.

* token records are immutable (created once, deleted on revocation); ``last used`` is a
  separate small object, rewritten at most once a minute;
* a project's roles are one document changed by compare-and-swap, so creating the first
  owner is decided by the storage: exactly one of two concurrent creators wins;
* events are new objects, never rewritten.

Blocking (storage I/O): call from a thread.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from spoold.access.events import Event
from spoold.access.roles import Roles
from spoold.access.tokens import Token
from spoold.errors import SpooldError, Transient
from spoold.storage.base import Storage
from spoold.storage.keys import ACCESS, EVENTS, event_key, roles_key, token_key, token_used_key

__all__ = ["AccessStore", "RolesContention"]

_MAX_RECORD = 1 << 20


class RolesContention(Transient):
    """A project's roles changed too often at once for this change to land; retried later."""

    code = "contention"


def _dump(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode()


def _load(data: bytes, what: str) -> object:
    if len(data) > _MAX_RECORD:
        raise ValueError(f"{what} is larger than {_MAX_RECORD} bytes")
    return json.loads(data)


class AccessStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    # -- tokens ------------------------------------------------------------------------

    def token(self, token_id: str) -> Token | None:
        data = self.storage.read_bytes(token_key(token_id))
        if data is None:
            return None
        try:
            return Token.from_json(_load(data, "a token record"))
        except (ValueError, TypeError):
            return None  # a damaged record authenticates nobody

    def add_token(self, token: Token) -> None:
        data = _dump(token.to_json())
        self.storage.put_file(token_key(token.id), data, hashlib.sha256(data).hexdigest())

    def revoke_token(self, token_id: str) -> Token | None:
        """Delete the record (the token stops working everywhere); None if unknown."""
        token = self.token(token_id)
        if token is not None:
            self.storage.delete(token_key(token_id))
            self.storage.delete(token_used_key(token_id))
        return token

    def tokens(self, user: str | None = None) -> list[Token]:
        found = []
        for obj in self.storage.list_files(f"{ACCESS}tokens/"):
            token = self.token(obj.key.rsplit("/", 1)[-1].removesuffix(".json"))
            if token is not None and (user is None or token.user == user):
                found.append(token)
        return sorted(found, key=lambda t: (t.user, t.created, t.id))

    def last_used(self, token_id: str) -> datetime | None:
        data = self.storage.read_bytes(token_used_key(token_id))
        try:
            return datetime.fromisoformat(data.decode("ascii").strip()) if data else None
        except (ValueError, UnicodeDecodeError):
            return None

    def mark_used(self, token_id: str, when: datetime) -> None:
        self.storage.replace_file(token_used_key(token_id), when.astimezone(UTC).isoformat().encode())

    # -- roles -------------------------------------------------------------------------

    def roles(self, project: str) -> Roles | None:
        doc = self.storage.read_doc(roles_key(project))
        if doc is None:
            return None
        try:
            return Roles.from_json(_load(doc.data, "a roles record"))
        except (ValueError, TypeError) as exc:
            raise SpooldError(f"the roles of {project} cannot be read ({exc}); set them again "
                              f"with `spoold role set {project} USER owner`") from None

    def change_roles(self, project: str, change: Callable[[Roles | None], Roles | None],
                     attempts: int = 100) -> tuple[Roles | None, bool]:
        """Compare-and-swap the project's roles: ``change`` gets the current value (None:
        no record) and returns the new one (the same object, or None: no change).
        Returns the value now stored and whether this call wrote it."""
        key = roles_key(project)
        for attempt in range(attempts):
            doc = self.storage.read_doc(key)
            current = Roles.from_json(_load(doc.data, "a roles record")) if doc is not None else None
            updated = change(current)
            if updated is None or updated is current:
                return current, False
            generation = (current.generation if current is not None else 0) + 1
            updated = updated.with_generation(generation)
            if self.storage.swap_doc(key, _dump(updated.to_json()), generation, doc):
                return updated, True
            self.storage.backoff(attempt)
        raise RolesContention(f"the roles of {project} changed {attempts} times while this "
                              "change was trying to land; it will be retried")

    # -- events ------------------------------------------------------------------------

    def record(self, event: Event) -> None:
        data = _dump(event.to_json())
        day = event.time.astimezone(UTC).strftime("%Y-%m-%d")
        self.storage.put_file(event_key(day, event.stamp, event.nonce), data,
                              hashlib.sha256(data).hexdigest())

    def events(self, project: str | None = None, since: datetime | None = None) -> Iterator[Event]:
        """Events in time order, optionally of one project and from a moment on."""
        first_day = since.astimezone(UTC).strftime("%Y-%m-%d") if since else ""
        for day in sorted(self.storage.list_dirs(EVENTS)):
            if day < first_day:
                continue
            for obj in self.storage.list_files(f"{EVENTS}{day}/"):
                data = self.storage.read_bytes(obj.key)
                if data is None:
                    continue
                try:
                    event = Event.from_json(_load(data, "an event"))
                except (ValueError, TypeError):
                    continue
                if project is not None and event.project != project:
                    continue
                if since is not None and event.time < since:
                    continue
                yield event
