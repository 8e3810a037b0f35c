"""The audit trail: one immutable record per upload, rejection, yank, role or token change.

Events are append-only: each is a new object in the storage (``.spoold/events/<day>/...``),
never a rewrite, so S3 needs no compare-and-swap for them and hosts sharing a bucket never
contend. ``spoold events`` reads them back; the schema is the contract's.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["ACTIONS", "Event"]

ACTIONS = frozenset({
    "upload", "upload-rejected", "yank", "unyank", "remove", "role-set", "role-unset",
    "token-create", "token-revoke",
})


def _text(doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Event:
    action: str
    #: Who: a user, ``token ID of USER``, or ``spool (drop)`` for the trusted folders.
    principal: str
    project: str | None = None
    filename: str | None = None
    sha256: str | None = None
    address: str | None = None
    user_agent: str | None = None
    #: Extra facts of the action (a yank reason, the role set, a rejection's code).
    detail: str | None = None
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Makes the storage key unique however many hosts record at the same microsecond.
    nonce: str = field(default_factory=lambda: secrets.token_hex(6))

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown event action {self.action!r}")

    @property
    def stamp(self) -> str:
        return self.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.stamp,
            "action": self.action,
            "principal": self.principal,
            "project": self.project,
            "filename": self.filename,
            "sha256": self.sha256,
            "address": self.address,
            "user_agent": self.user_agent,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, doc: object, *, nonce: str = "") -> Event:
        if not isinstance(doc, Mapping):
            raise ValueError("an event is a JSON object")
        when = doc.get("time")
        if not isinstance(when, str):
            raise ValueError("an event needs a time")
        return cls(
            action=str(doc.get("action")),
            principal=str(doc.get("principal")),
            project=_text(doc, "project"),
            filename=_text(doc, "filename"),
            sha256=_text(doc, "sha256"),
            address=_text(doc, "address"),
            user_agent=_text(doc, "user_agent"),
            detail=_text(doc, "detail"),
            time=datetime.fromisoformat(when.replace("Z", "+00:00")),
            nonce=nonce,
        )
