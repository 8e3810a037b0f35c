"""The small JSON records kept beside spool items, each with one schema.

* :class:`ItemMeta` -- ``meta.json`` inside a directory item: what the deliverer knew
  (declared digests, who uploaded it and through what). Plain files renamed into ``new/``
  by rsync or mv have none: an empty :class:`ItemMeta`.
* :class:`Reason` -- ``failed/<uid>.reason.json``: why an item was rejected, for
  ``spoold status``, for an upload waiting in another process, and for people.

Both are read from disk that other users of the spool group can write, so reading is
bounded, never follows a link, never blocks on a FIFO, and a malformed record is a
``ValueError`` for the caller to turn into a rejection -- never a crash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spoold.durable import write_atomic
from spoold.safeopen import NotRegularFile, read_regular

__all__ = ["MAX_RECORD", "DIGEST_FIELDS", "ItemMeta", "Reason", "read_record", "write_record"]

#: Largest record read (a meta.json is a few hundred bytes; anything big is hostile).
MAX_RECORD = 1 << 20
#: The upload form fields that carry declared digests (as twine sends them).
DIGEST_FIELDS = ("sha256_digest", "md5_digest", "blake2_256_digest")


def _text(doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, not {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class ItemMeta:
    """``meta.json``: what the deliverer recorded about an item (all optional)."""

    #: How it came in: ``upload`` (HTTP), or empty for a file placed in the spool.
    via: str | None = None
    #: The authenticated user who uploaded it, and the token used (its id), if any.
    uploader: str | None = None
    token: str | None = None
    #: The uploader's address and client (User-Agent), for the audit trail.
    address: str | None = None
    user_agent: str | None = None
    #: The upload form's ``name``, ``version`` and ``filetype`` fields.
    name: str | None = None
    version: str | None = None
    filetype: str | None = None
    #: Declared digests (lowercase hex), checked against the bytes by inspection.
    sha256_digest: str | None = None
    md5_digest: str | None = None
    blake2_256_digest: str | None = None
    #: When the file was first uploaded, where it was (ISO 8601; ``spoold import`` sets it
    #: from the source's own record or the file's mtime). Only items of the trusted spool
    #: are believed: an HTTP upload is published at the time it is published.
    upload_time: str | None = None

    @property
    def published_at(self) -> datetime | None:
        """:attr:`upload_time` as a UTC time, for trusted items that carry a valid one."""
        if self.via == "upload" or not self.upload_time:
            return None
        try:
            moment = datetime.fromisoformat(self.upload_time.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    @property
    def declared(self) -> dict[str, str]:
        """The declared digests, keyed by their upload form field names."""
        return {k: v for k in DIGEST_FIELDS if (v := getattr(self, k))}

    def to_json(self) -> dict[str, str]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}

    @classmethod
    def from_json(cls, doc: object) -> ItemMeta:
        """Read a ``meta.json`` object; unknown keys are ignored (a newer spoold wrote it)."""
        if not isinstance(doc, Mapping):
            raise ValueError("meta.json is not a JSON object")
        return cls(**{f.name: _text(doc, f.name) for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class Reason:
    """``<uid>.reason.json``: why an item is in ``failed/``."""

    item: str
    filename: str
    #: Machine-readable, stable (``digest-mismatch``, ``file-exists``, ...).
    code: str
    #: The message for the uploader: what is wrong and what to do.
    error: str
    time: float | None = None
    #: How many workers died on the item before it was set aside.
    attempts: int = 0
    #: How an upload of the item is answered (so a waiter in another process agrees).
    http_status: int = 400
    meta: ItemMeta = ItemMeta()

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "filename": self.filename,
            "code": self.code,
            "error": self.error,
            "time": self.time,
            "attempts": self.attempts,
            "http_status": self.http_status,
            "meta": self.meta.to_json(),
        }

    @classmethod
    def from_json(cls, doc: object, *, item: str = "", filename: str = "") -> Reason:
        """Read a reason; tolerant of hand-written and older ones (defaults fill gaps)."""
        if not isinstance(doc, Mapping):
            raise ValueError("the reason is not a JSON object")
        when = doc.get("time")
        status = doc.get("http_status")
        attempts = doc.get("attempts")
        try:
            meta = ItemMeta.from_json(doc.get("meta") or {})
        except ValueError:
            meta = ItemMeta()
        return cls(
            item=str(doc.get("item") or item),
            filename=str(doc.get("filename") or filename),
            code=str(doc.get("code") or "unknown"),
            error=str(doc.get("error") or "no reason was recorded"),
            time=float(when) if isinstance(when, (int, float)) and not isinstance(when, bool) else None,
            attempts=attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else 0,
            http_status=status if isinstance(status, int) and 400 <= status <= 599 else 400,
            meta=meta,
        )


def read_record(path: Path) -> object:
    """The JSON value in ``path``: bounded, not through a link, not from a FIFO.

    Raises OSError when it cannot be opened (missing: FileNotFoundError) and ValueError
    when it is not a regular file of valid JSON no larger than :data:`MAX_RECORD`.
    """
    try:
        raw = read_regular(path, MAX_RECORD)
    except NotRegularFile as exc:
        raise ValueError(f"{path.name} is {exc.strerror}") from None
    if len(raw) > MAX_RECORD:
        raise ValueError(f"{path.name} is larger than {MAX_RECORD} bytes")
    return json.loads(raw)


def write_record(path: Path, doc: Mapping[str, Any], *, tmp: Path) -> None:
    """Write a record durably (fsync, rename, fsync the folder); ``tmp`` is the temporary
    name to write first, on the same filesystem (the spool's ``tmp/``)."""
    data = json.dumps(doc, ensure_ascii=True, default=str).encode("ascii")
    write_atomic(path, data, tmp=tmp)
