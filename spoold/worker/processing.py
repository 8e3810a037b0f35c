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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from spoold.access.events import Event
from spoold.access.principal import TRUSTED, Principal
from spoold.access.store import AccessStore
from spoold.config import Settings
from spoold.errors import Rejected, Transient
from spoold.index.publish import PublishResult, Upload, publish_many
from spoold.inspection import inspect_file
from spoold.inspection.archive import Limits
from spoold.inspection.distribution import Distribution
from spoold.spool import Claim, Outcome, Result, Spool
from spoold.storage import Storage

__all__ = ["Handled", "archive_limits", "process", "process_group", "uploader_of"]

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
    """:func:`process_group` of one claim."""
    (handled,) = process_group(spool, storage, [claim], clock, limits=limits, admins=admins)
    return handled


@dataclass(frozen=True, slots=True)
class _Fault:
    """Why an item did not publish: its own fault, the environment's, or spoold's."""

    rejected: Rejected | None = None
    deferred: str | None = None
    #: A bug: the exception's type and the traceback.
    bug: tuple[str, str] | None = None


@dataclass(slots=True)
class _Step:
    """What became of one claim of a group so far (internal, one thread)."""

    claim: Claim
    uploader: Principal | None
    dist: Distribution | None = None
    result: PublishResult | None = None
    fault: _Fault | None = None


def process_group(spool: Spool, storage: Storage, claims: Sequence[Claim],
                  clock: Callable[[], float] = time.monotonic, *, limits: Limits = Limits(),
                  admins: frozenset[str] = frozenset()) -> list[Handled]:
    """Inspect and publish claimed items, then move each to its end state.

    The items of one project are published together (:func:`~spoold.index.publish.
    publish_many`: one manifest change for all), and all the group's writes end with one
    durability barrier (:meth:`~spoold.storage.base.Storage.batch`, shared with the other
    jobs) before any item leaves ``cur/``: a crash before it returns the items to
    ``new/`` as reaped attempts, whose second pass repairs what the first tore.

    A bug in spoold (any exception that is neither the item's fault nor the
    environment's) is not held against the item: the claim is left in ``cur/``, where the
    reaper returns it to ``new/`` once this process is gone (a restart, after the fix is
    deployed) or, from another host, once its lease runs out -- and the poison limit
    fails it only if it keeps ending workers. The outcome says ``Result.ERROR`` so an
    uploader hears at once, and the worker reports the bug in ``/health``.
    """
    started = clock()
    steps = [_Step(claim, uploader_of(claim, admins)) for claim in claims]
    try:
        with storage.batch():
            projects: dict[str, list[_Step]] = {}
            for step in steps:
                step.fault = _run(partial(_inspect, step, limits))
                if step.dist is not None and step.fault is None:
                    projects.setdefault(step.dist.project, []).append(step)
            for group in projects.values():
                _publish(storage, group)
    except (Transient, OSError) as e:  # no batch, or its barrier failed: nothing it
        # covers may be acknowledged
        for step in steps:
            if step.fault is None:
                step.fault = _Fault(deferred=str(e) or type(e).__name__)
    return [_end(spool, storage, step, started, clock) for step in steps]


def _run(work: Callable[[], object]) -> _Fault | None:
    """Run ``work``; what it raised decides where the item goes."""
    try:
        work()
    except Rejected as e:
        return _Fault(rejected=e)
    except (Transient, OSError) as e:
        # Storage down, throttled, or the disk failed under us: never the item's fault.
        return _Fault(deferred=str(e) or type(e).__name__)
    except Exception as e:  # a bug in spoold: keep the item, say so, keep serving
        return _Fault(bug=(type(e).__name__, traceback.format_exc()))
    return None


def _inspect(step: _Step, limits: Limits) -> None:
    claim = step.claim
    step.dist = inspect_file(claim.payload, claim.filename, declared=claim.meta.declared,
                             limits=limits)


def _publish(storage: Storage, group: list[_Step]) -> None:
    """Publish the inspected items of one project; a failure of the shared part is every
    item's (each would have met it alone)."""
    uploads = [Upload(s.dist, s.claim.payload, now=s.claim.meta.published_at, uploader=s.uploader,
                      client=s.claim.meta.user_agent) for s in group if s.dist is not None]
    answers: list[PublishResult | Rejected] = []
    repair = any(s.claim.name.attempts > 0 for s in group)
    fault = _run(lambda: answers.extend(publish_many(storage, uploads, repair=repair)))
    if fault is not None:
        for step in group:
            step.fault = fault
        return
    for step, answer in zip(group, answers, strict=True):
        if isinstance(answer, Rejected):
            step.fault = _Fault(rejected=answer)
            continue
        step.result = answer
        if answer.published and step.dist is not None:
            _record(storage, step.claim, "upload", step.uploader, project=step.dist.project,
                    sha256=step.dist.sha256)


def _end(spool: Spool, storage: Storage, step: _Step, started: float,
         clock: Callable[[], float]) -> Handled:
    claim, fault = step.claim, step.fault
    item = str(claim.name)
    if fault is not None and fault.deferred is not None:
        return _defer(spool, claim, started, clock, fault.deferred)
    if fault is not None and fault.bug is not None:
        message = (f"internal error while processing ({fault.bug[0]}); the file is kept "
                   "and retried once the server restarts; the operator can see the log")
        outcome = Outcome(item, claim.filename, Result.ERROR, code="internal-error",
                          message=message, http_status=500)
        return Handled(claim, outcome, clock() - started, traceback=fault.bug[1])
    end: Callable[[], object]
    if fault is not None and fault.rejected is not None:
        e = fault.rejected
        outcome = Outcome(item, claim.filename, Result.REJECTED, code=e.code, message=e.message,
                          http_status=e.http_status)
        if step.uploader is not None:
            _record(storage, claim, "upload-rejected", step.uploader,
                    detail=f"{e.code}: {e.message}"[:500])
        end = partial(spool.fail, claim, e.code, e.message, http_status=e.http_status)
    else:
        assert step.result is not None and step.dist is not None
        published = step.result.published
        outcome = Outcome(item, claim.filename, Result.PUBLISHED if published else Result.UNCHANGED,
                          project=step.dist.project, version=step.dist.version)
        end = partial(spool.finish, claim, unchanged=not published)
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
