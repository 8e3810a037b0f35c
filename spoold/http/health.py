"""What ``GET /health`` reports: a value with one schema, and how it is measured.

Kept apart from the resource (:mod:`spoold.web.health`) because it is the contract load
balancers and people read, and needs no Twisted: :func:`health_report` measures (blocking:
a directory listing per spool folder and a storage ``ping``, so the web layer runs it in a
thread), :meth:`HealthReport.as_json` is the body, byte for byte what ``/health`` has
always answered. ``ok`` and ``reachable`` are derived from the storage error, so a report
cannot say "ok" and carry an error at once.

A bug is reported as a bug: an unexpected exception from the storage check, or items the
worker could not process because of an error in spoold (kept in ``cur/``, see
:mod:`spoold.worker.processing`), show under ``bugs`` -- never as "storage unreachable",
which would send the operator to the wrong place.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from spoold import __version__
from spoold.errors import Transient

__all__ = ["Bugs", "HealthReport", "StorageHealth", "health_report"]


@dataclass(frozen=True, slots=True)
class StorageHealth:
    """Whether the storage answered its ``ping``; ``error`` says why not."""

    error: str | None = None

    @property
    def reachable(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class Bugs:
    """Errors in spoold itself since the process started: how many, and the last one."""

    count: int = 0
    last: str | None = None


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Queue depths, the storage's reachability and the running version."""

    #: Items per spool folder (``incoming``, ``tmp``, ``new``, ``cur``, ...).
    queues: Mapping[str, int]
    storage: StorageHealth = field(default_factory=StorageHealth)
    version: str = __version__
    bugs: Bugs = field(default_factory=Bugs)

    def __post_init__(self) -> None:
        # A read-only copy: the report is a value, not a view of the caller's dict.
        object.__setattr__(self, "queues", MappingProxyType(dict(self.queues)))

    @property
    def ok(self) -> bool:
        """Everything spoold depends on answers, and spoold itself has hit no bug."""
        return self.storage.reachable and self.bugs.count == 0

    def as_json(self) -> str:
        """The ``/health`` body: sorted keys, one line, a final newline."""
        document = {
            "ok": self.ok,
            "version": self.version,
            "queues": dict(self.queues),
            "storage": {"reachable": self.storage.reachable, "error": self.storage.error},
            "bugs": {"count": self.bugs.count, "last": self.bugs.last},
        }
        return json.dumps(document, sort_keys=True) + "\n"


class _Counts(Protocol):
    def counts(self) -> Mapping[str, int]: ...


def health_report(spool: _Counts, ping: Callable[[], None], bugs: Bugs = Bugs()) -> HealthReport:
    """Queue depths and storage reachability; blocking (run it in a thread).

    ``ping`` raising :class:`~spoold.errors.Transient` (or an OSError) means "not
    reachable", with its message as the error; any other exception is a bug in the check
    and is counted under ``bugs``. ``bugs`` are the worker's own since start.
    """
    counts = spool.counts()
    try:
        ping()
    except (Transient, OSError) as e:
        return HealthReport(counts, StorageHealth(str(e) or type(e).__name__), bugs=bugs)
    except Exception as e:  # a bug in the check itself: say so, do not blame the storage
        text = f"the storage check failed with {type(e).__name__}: {e}".rstrip(": ")
        return HealthReport(counts, bugs=Bugs(bugs.count + 1, text))
    return HealthReport(counts, bugs=bugs)
