"""What ``GET /health`` reports: a value with one schema, and how it is measured.

Kept apart from the resource (:mod:`spoold.web.health`) because it is the contract load
balancers and people read, and needs no Twisted: :func:`health_report` measures (blocking:
a directory listing per spool folder and a storage ``ping``, so the web layer runs it in a
thread), :meth:`HealthReport.as_json` is the body, byte for byte what ``/health`` has
always answered. ``ok`` and ``reachable`` are derived from the storage error, so a report
cannot say "ok" and carry an error at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from spoold import __version__

__all__ = ["HealthReport", "StorageHealth", "health_report"]


@dataclass(frozen=True, slots=True)
class StorageHealth:
    """Whether the storage answered its ``ping``; ``error`` says why not."""

    error: str | None = None

    @property
    def reachable(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Queue depths, the storage's reachability and the running version."""

    #: Items per spool folder (``incoming``, ``tmp``, ``new``, ``cur``, ...).
    queues: Mapping[str, int]
    storage: StorageHealth = field(default_factory=StorageHealth)
    version: str = __version__

    def __post_init__(self) -> None:
        # A read-only copy: the report is a value, not a view of the caller's dict.
        object.__setattr__(self, "queues", MappingProxyType(dict(self.queues)))

    @property
    def ok(self) -> bool:
        """Everything spoold depends on answers (today: the storage)."""
        return self.storage.reachable

    def as_json(self) -> str:
        """The ``/health`` body: sorted keys, one line, a final newline."""
        document = {
            "ok": self.ok,
            "version": self.version,
            "queues": dict(self.queues),
            "storage": {"reachable": self.storage.reachable, "error": self.storage.error},
        }
        return json.dumps(document, sort_keys=True) + "\n"


class _Counts(Protocol):
    def counts(self) -> Mapping[str, int]: ...


def health_report(spool: _Counts, ping: Callable[[], None]) -> HealthReport:
    """Queue depths and storage reachability; blocking (run it in a thread).

    Any exception from ``ping`` means "not reachable", with its message (or, for an
    exception without one, its type name) as the error.
    """
    counts = spool.counts()
    try:
        ping()
    except Exception as e:  # any failure means "not reachable"; the message says why
        return HealthReport(counts, StorageHealth(str(e) or type(e).__name__))
    return HealthReport(counts)
