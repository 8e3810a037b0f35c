"""Taking one claimed item to its end: inspect, publish, then done, failed or deferred.

Plain synchronous code, run by the worker daemon on a thread pool. The decision rule is
the error hierarchy: :class:`~spoold.errors.Rejected` (the item's fault) fails the item
with its reason, :class:`~spoold.errors.Transient` (the environment's fault) defers it.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spoold.errors import Rejected, Transient
from spoold.inspection.inspect import inspect_file
from spoold.spool.names import ItemName
from spoold.spool.outcome import Outcome, Result
from spoold.index import publish
from spoold.spool.queue import Claim, Spool
from spoold.storage import Storage

#: The upload form fields that carry declared digests (as twine sends them).
DIGEST_FIELDS = ("sha256_digest", "md5_digest", "blake2_256_digest")


@dataclass(frozen=True, slots=True)
class Handled:
    """What :func:`process` did with a claim, for logs, metrics and upload waiters."""

    claim: Claim
    #: None when the item was deferred (it is not finished yet).
    outcome: Outcome | None
    seconds: float
    #: For deferrals: why, and when it will be retried (epoch seconds).
    deferred_reason: str = ""
    retry_at: float | None = None
    #: For internal errors: the traceback, for the log (never shown to uploaders).
    traceback: str = ""


def process(spool: Spool, storage: Storage, claim: Claim,
            clock: Callable[[], float] = time.monotonic) -> Handled:
    """Inspect and publish a claimed item, then move it to its end state."""
    started = clock()
    item = str(claim.name)
    declared = {k: str(claim.meta[k]) for k in DIGEST_FIELDS if claim.meta.get(k)}
    try:
        dist = inspect_file(claim.payload, claim.filename, declared=declared)
        result = publish(storage, dist, claim.payload)
    except Rejected as e:
        spool.fail(claim, e.code, e.message, http_status=e.http_status)
        outcome = Outcome(item, claim.filename, Result.REJECTED, code=e.code, message=e.message,
                          http_status=e.http_status)
        return Handled(claim, outcome, clock() - started)
    except (Transient, OSError) as e:
        # Storage down, throttled, or the disk failed under us: never the item's fault.
        retry_at = spool.defer(claim, str(e))
        return Handled(claim, None, clock() - started, deferred_reason=str(e) or type(e).__name__,
                       retry_at=retry_at)
    except Exception as e:  # a bug in spoold: set the item aside, say so, keep serving
        message = f"internal error while processing ({type(e).__name__}); the operator can see the log"
        spool.fail(claim, "internal-error", message, http_status=500)
        outcome = Outcome(item, claim.filename, Result.REJECTED, code="internal-error",
                          message=message, http_status=500)
        return Handled(claim, outcome, clock() - started, traceback=traceback.format_exc())
    spool.finish(claim)
    outcome = Outcome(
        item, claim.filename, Result.PUBLISHED if result.published else Result.UNCHANGED,
        project=dist.project, version=dist.version,
    )
    return Handled(claim, outcome, clock() - started)


def outcome_from_record(name: ItemName, where: str, reason: dict[str, Any] | None) -> Outcome:
    """Rebuild an outcome from what another process left in ``done/`` or ``failed/``
    (see :meth:`Spool.outcome_of`)."""
    item = str(name)
    if where == "done":
        return Outcome(item, name.filename, Result.PUBLISHED)
    reason = reason or {}
    code = str(reason.get("code", "rejected"))
    status = reason.get("http_status")
    if not isinstance(status, int) or not 400 <= status <= 599:
        status = 400  # a reason written by hand, or by an older spoold
    return Outcome(item, name.filename, Result.REJECTED, code=code,
                   message=str(reason.get("error", "rejected")), http_status=status)
