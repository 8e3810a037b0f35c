"""Spool item names: unique across processes and hosts, and self-describing.

A spool item's name carries everything the spool needs to know about it, so that every
state change is a single rename(2) and no side file has to be kept in step::

    1732300000.123456.4242_7.9f3a2b1c.build-01;a=1;o=build-01.4243.88123,foo-1.0-py3-none-any.whl
    \\_____________ uid ________________________/\\________ info _______/ \\____ filename _____/

* ``uid`` is maildir-style: seconds, microseconds, pid and a per-process counter, 32 random
  bits and the (sanitised) host name. It never contains ``;`` or ``,``.
* ``info`` is zero or more ``;k=v`` pairs: ``a`` how many times a claim on the item was
  reaped because its worker died, ``d`` how many times it was deferred, ``t`` (deferred
  only) the epoch second it is due again, ``o`` (``cur/`` only) the owning worker.
* ``filename`` is the original distribution filename, always recoverable.

A plain file renamed into ``new/`` by rsync or mv has no uid; it gets one when it is
claimed. Names that do not match the pattern are plain names.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import secrets
import socket
import time
from dataclasses import dataclass, replace

from spoold.inspection.filenames import MAX_FILENAME_LENGTH, check_filename

__all__ = [
    "MAX_FILENAME_LENGTH",
    "PARTIAL_SUFFIXES",
    "ItemName",
    "Owner",
    "check_filename",
    "display",
    "host_tag",
    "is_hidden_or_partial",
    "new_uid",
    "placeholder_filename",
]

_HOST_CHARS = re.compile(r"[^A-Za-z0-9-]")
_UID = r"\d{1,12}\.\d{6}\.\d{1,10}_[0-9a-f]{1,16}\.[0-9a-f]{6}\.[A-Za-z0-9-]{1,16}"
_ITEM = re.compile(rf"^(?P<uid>{_UID})(?P<info>(?:;[a-z]=[A-Za-z0-9.-]{{1,40}})*),(?P<filename>.+)$", re.S)
_OWNER = re.compile(r"^(?P<host>[A-Za-z0-9-]{1,16})\.(?P<pid>\d{1,10})\.(?P<start>\d{1,20})$")
_counter = itertools.count()

#: Suffixes of partial transfers (scp/sftp clients, browsers, editors) that are never taken.
PARTIAL_SUFFIXES = (".part", ".filepart", ".partial", ".crdownload", ".tmp", "~")


@functools.lru_cache(maxsize=64)
def host_tag(hostname: str | None = None) -> str:
    """The host part of names: the first label of the host name, filesystem-safe.

    Cached: the host name is read once per process (a renamed host keeps its old tag
    until restart, which only matters for telling its claims apart).
    """
    name = (hostname or socket.gethostname() or "localhost").split(".")[0]
    return (_HOST_CHARS.sub("-", name)[:16]) or "localhost"


def new_uid(*, now: float | None = None, pid: int | None = None, host: str | None = None) -> str:
    """A name no other delivery, on any process or host, will ever produce."""
    t = time.time() if now is None else now
    sec = int(t)
    usec = int((t - sec) * 1_000_000)
    return (
        f"{sec}.{usec:06d}.{os.getpid() if pid is None else pid}_{next(_counter):x}"
        f".{secrets.token_hex(3)}.{host_tag(host)}"
    )


def is_hidden_or_partial(name: str) -> bool:
    """Names a transfer tool is still writing (rsync ``.name.XXXXXX``, ``x.part``, ``x~``)."""
    return name.startswith(".") or name.endswith(PARTIAL_SUFFIXES)


def display(name: str) -> str:
    """A printable, JSON-safe rendering of any name read from disk (even non-UTF-8)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def placeholder_filename(name: str) -> str:
    """A safe stand-in for an unsafe name, so the item can still be moved to ``failed/``."""
    safe = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._+-]", "_", display(name))).lstrip(".")
    return (safe[:100] or "unnamed") + ".invalid-name"


@dataclass(frozen=True, slots=True)
class Owner:
    """The worker process that holds a claim: enough to tell, on its host, if it died."""

    host: str
    pid: int
    #: Process start time (clock ticks since boot, from /proc), guarding against pid reuse;
    #: 0 where the platform does not say.
    start: int = 0

    def __str__(self) -> str:
        return f"{self.host}.{self.pid}.{self.start}"

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        m = _OWNER.match(text)
        if not m:
            return None
        return cls(m["host"], int(m["pid"]), int(m["start"]))


@dataclass(frozen=True, slots=True)
class ItemName:
    """A parsed spool item name; ``str()`` gives back the name on disk."""

    filename: str
    uid: str | None = None
    attempts: int = 0
    defers: int = 0
    due: int | None = None
    owner: Owner | None = None

    @classmethod
    def parse(cls, name: str) -> ItemName:
        """Parse a directory entry; anything that is not a spool name is a plain filename."""
        m = _ITEM.match(name)
        if not m:
            return cls(filename=name)
        fields: dict[str, str] = {}
        for pair in m["info"].split(";")[1:]:
            key, _, value = pair.partition("=")
            fields[key] = value
        owner = Owner.parse(fields["o"]) if "o" in fields else None
        return cls(
            filename=m["filename"],
            uid=m["uid"],
            attempts=_int(fields.get("a"), 0),
            defers=_int(fields.get("d"), 0),
            due=_int(fields.get("t"), None),
            owner=owner,
        )

    def __str__(self) -> str:
        if self.uid is None:
            return self.filename
        info = ""
        if self.attempts:
            info += f";a={self.attempts}"
        if self.defers:
            info += f";d={self.defers}"
        if self.due is not None:
            info += f";t={self.due}"
        if self.owner is not None:
            info += f";o={self.owner}"
        return f"{self.uid}{info},{self.filename}"

    def with_uid(self, uid: str) -> ItemName:
        return self if self.uid is not None else replace(self, uid=uid)

    def claimed_by(self, owner: Owner) -> ItemName:
        return replace(self, owner=owner, due=None)

    def released(self, *, attempts: int | None = None) -> ItemName:
        """The name it goes back to ``new/`` (or on to ``done/``/``failed/``) under."""
        return replace(
            self, owner=None, due=None, attempts=self.attempts if attempts is None else attempts
        )

    def deferred_until(self, due: int) -> ItemName:
        return replace(self, owner=None, due=due, defers=self.defers + 1)


def _int(text: str | None, default: int | None) -> int | None:
    if text is None or not text.isdigit():
        return default
    return int(text)
