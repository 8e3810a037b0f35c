"""Taking one claimed item to its end: inspect, publish, then done, failed or deferred.

Plain synchronous code, run by the worker daemon on a thread pool. The decision rule is
the error hierarchy: :class:`~spoold.errors.Rejected` (the item's fault) fails the item
with its reason, :class:`~spoold.errors.Transient` (the environment's fault) defers it.

Who sent the item is in its ``meta.json``: an HTTP upload names its user (whose roles
are decided again at publish time, see :mod:`spoold.index.publish`); anything else came
through the spool's folders, the trusted path. Every publish and every rejection of an
upload is an event in the audit trail.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from spoold.access.events import Event
from spoold.access.principal import TRUSTED, Principal
from spoold.access.store import AccessStore
from spoold.config import Settings
from spoold.errors import Rejected, Transient
from spoold.index import publish
from spoold.inspection import inspect_file
from spoold.inspection.archive import Limits
from spoold.spool import Claim, Outcome, Result, Spool
from spoold.storage import Storage

__all__ = ["Handled", "archive_limits", "process", "uploader_of"]

log = logging.getLogger(__name__)


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


def uploader_of(claim: Claim, admins: frozenset[str]) -> Principal | None:
    """The user an HTTP upload came from (None: the trusted spool's folders)."""
    meta = claim.meta
    if meta.via == "upload" and meta.uploader:
        return Principal.for_user(meta.uploader, admin=meta.uploader in admins)
    return None


def _record(storage: Storage, claim: Claim, action: str, uploader: Principal | None, *,
            project: str | None = None, sha256: str | None = None, detail: str | None = None) -> None:
    meta = claim.meta
    principal = (TRUSTED if uploader is None else uploader).describe()
    if meta.token and uploader is not None:
        principal = f"token {meta.token} of {uploader.user}"
    try:
        AccessStore(storage).record(Event(
            action, principal, project=project, filename=claim.filename, sha256=sha256,
            address=meta.address, user_agent=meta.user_agent, detail=detail))
    except Exception:  # the audit trail must never turn a publish into a failure
        log.exception("cannot record %s of %s in the audit trail", action, claim.filename)


def process(spool: Spool, storage: Storage, claim: Claim,
            clock: Callable[[], float] = time.monotonic, *, limits: Limits = Limits(),
            admins: frozenset[str] = frozenset()) -> Handled:
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
    uploader = uploader_of(claim, admins)
    try:
        # One durability barrier for all the item's writes, shared with the other jobs
        # (Storage.batch), before the item may leave cur/: a crash before it returns the
        # item to new/ as a reaped attempt, whose second pass repairs what the first tore.
        with storage.batch():
            dist = inspect_file(claim.payload, claim.filename, declared=claim.meta.declared,
                                limits=limits)
            result = publish(storage, dist, claim.payload, uploader=uploader,
                             client=claim.meta.user_agent, now=claim.meta.published_at,
                             repair=claim.name.attempts > 0)
            if result.published:
                _record(storage, claim, "upload", uploader, project=dist.project, sha256=dist.sha256)
    except Rejected as e:
        outcome = Outcome(item, claim.filename, Result.REJECTED, code=e.code, message=e.message,
                          http_status=e.http_status)
        if uploader is not None:
            _record(storage, claim, "upload-rejected", uploader, detail=f"{e.code}: {e.message}"[:500])
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
