"""What is in the spool: queue depths and the failed items with their reasons.

:func:`counts` only lists folders (cheap: ``/health``, ``/metrics`` and systemd's STATUS=
call it often); :func:`status` also reads every reason (``spoold status``). The JSON form
is a contract (``status --json``): the counts by folder name and a list ``failures``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spoold.spool import incoming
from spoold.spool.folders import FOLDERS, REASON_SUFFIX, listdir
from spoold.spool.names import ItemName, display, is_hidden_or_partial
from spoold.spool.records import Reason, read_record

if TYPE_CHECKING:
    from spoold.spool.queue import Spool

__all__ = ["Failure", "Status", "counts", "status"]


@dataclass(frozen=True, slots=True)
class Failure:
    """One entry of ``failed/`` as ``spoold status`` reports it."""

    item: str
    filename: str
    code: str
    error: str
    time: float | None

    def as_json(self) -> dict[str, Any]:
        return {"item": self.item, "filename": self.filename, "code": self.code,
                "error": self.error, "time": self.time}


@dataclass(frozen=True, slots=True)
class Status:
    counts: Mapping[str, int]
    failures: tuple[Failure, ...]

    def as_json(self) -> dict[str, Any]:
        return {**self.counts, "failures": [f.as_json() for f in self.failures]}


def counts(spool: Spool) -> dict[str, int]:
    """Queue depths: one listing per folder, no file read."""
    return {name: len(_entries(spool, name)) for name in FOLDERS}


def status(spool: Spool) -> Status:
    """Queue depths and the reasons of failed items (the ``spoold status`` schema)."""
    failures = tuple(_failure(spool, e) for e in sorted(_entries(spool, "failed")))
    return Status(counts(spool), failures)


def _entries(spool: Spool, name: str) -> list[str]:
    entries = listdir(spool.root / name)
    if name == "incoming":
        return [e for e in entries if not is_hidden_or_partial(e)
                and not e.endswith(incoming.SIDECAR_SUFFIX)]
    if name == "failed":
        return [e for e in entries if not e.endswith(REASON_SUFFIX)]
    return entries


def _failure(spool: Spool, entry: str) -> Failure:
    item = ItemName.parse(entry)
    reason = Reason.from_json({}, item=entry, filename=item.filename)
    if item.uid is not None:
        with contextlib.suppress(OSError, ValueError):
            reason = Reason.from_json(read_record(spool.failed / (item.uid + REASON_SUFFIX)))
    return Failure(
        item=display(entry),
        filename=display(item.filename),
        code=reason.code,
        error=reason.error,
        time=reason.time,
    )
