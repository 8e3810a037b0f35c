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
from functools import partial

from spoold.config import Settings
from spoold.errors import Rejected, Transient
from spoold.index import publish
from spoold.inspection import inspect_file
from spoold.inspection.archive import Limits
from spoold.spool import Claim, Outcome, Result, Spool
from spoold.storage import Storage

__all__ = ["Handled", "archive_limits", "process"]


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
    #: For bugs: the traceback, for the log (never shown to uploaders).
    traceback: str = ""


def archive_limits(settings: Settings) -> Limits:
    """The archive limits the settings ask for (the rest are Limits' defaults).

    The daemon hands them to :func:`process`:
    ``Worker(..., process_claim=functools.partial(process, limits=archive_limits(settings)))``.
    """
    return Limits(max_uncompressed=settings.max_uncompressed, max_ratio=settings.max_ratio)


def process(spool: Spool, storage: Storage, claim: Claim,
            clock: Callable[[], float] = time.monotonic, *, limits: Limits = Limits()) -> Handled:
    """Inspect and publish a claimed item, then move it to its end state.

    A bug in spoold (any exception that is neither the item's fault nor the
    environment's) is not held against the item: the claim is left in ``cur/``, where the
    reaper returns it to ``new/`` once this process is gone (a restart, after the fix is
    deployed) or, from another host, once its lease runs out -- and the poison limit
    fails it only if it keeps ending workers. The outcome says ``Result.ERROR`` so an
    uploader hears at once, and the worker reports the bug in ``/health``.
    """
    started = clock()
    item = str(claim.name)
    try:
        dist = inspect_file(claim.payload, claim.filename, declared=claim.meta.declared,
                            limits=limits)
        result = publish(storage, dist, claim.payload)
    except Rejected as e:
        outcome = Outcome(item, claim.filename, Result.REJECTED, code=e.code, message=e.message,
                          http_status=e.http_status)
        end: Callable[[], object] = partial(
            spool.fail, claim, e.code, e.message, http_status=e.http_status)
    except (Transient, OSError) as e:
        # Storage down, throttled, or the disk failed under us: never the item's fault.
        return _defer(spool, claim, started, clock, str(e) or type(e).__name__)
    except Exception as e:  # a bug in spoold: keep the item, say so, keep serving
        message = (f"internal error while processing ({type(e).__name__}); the file is kept "
                   "and retried once the server restarts; the operator can see the log")
        outcome = Outcome(item, claim.filename, Result.ERROR, code="internal-error",
                          message=message, http_status=500)
        return Handled(claim, outcome, clock() - started, traceback=traceback.format_exc())
    else:
        outcome = Outcome(
            item, claim.filename, Result.PUBLISHED if result.published else Result.UNCHANGED,
            project=dist.project, version=dist.version,
        )
        end = partial(spool.finish, claim, unchanged=not result.published)
    try:
        end()
    except OSError as e:
        # Decided, but the decision cannot be recorded (disk full, read-only): back to the
        # queue, to be decided again -- publishing is idempotent -- once the disk is fixed.
        return _defer(spool, claim, started, clock,
                      f"cannot record the outcome in the spool ({e.strerror or e}); retried later")
    return Handled(claim, outcome, clock() - started)


def _defer(spool: Spool, claim: Claim, started: float, clock: Callable[[], float],
           reason: str) -> Handled:
    """Park the item in ``deferred/``; if even that rename fails, give it back to ``new/``
    (one of them works on any filesystem that still renames: neither needs space)."""
    try:
        retry_at: float | None = spool.defer(claim, reason)
    except OSError:
        spool.release(claim)
        retry_at = None
    return Handled(claim, None, clock() - started, deferred_reason=reason, retry_at=retry_at)
