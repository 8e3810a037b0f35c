"""The spool's periodic work: reap dead claims, promote deferred items, take finished files
from ``incoming/``, sweep abandoned deliveries, expire old published and rejected items,
and forget rejections that a later publish of the same file made moot.

Cheap enough to run every few seconds from any number of workers at once: every step is a
listing and renames, and a rename that loses (ENOENT) just means another worker did it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING

from spoold.errors import Rejected
from spoold.spool import incoming
from spoold.spool.claim import Claim
from spoold.spool.folders import REASON_SUFFIX, listdir, move
from spoold.durable import fsync_dir
from spoold.spool.liveness import alive
from spoold.spool.names import ItemName, check_filename, display, new_uid, placeholder_filename
from spoold.spool.records import Reason

if TYPE_CHECKING:
    from spoold.spool.queue import Spool

__all__ = [
    "Housekeeping",
    "expire_done",
    "expire_failed",
    "forget_superseded",
    "housekeep",
    "promote_deferred",
    "reap",
    "sweep_tmp",
    "take_incoming",
]


@dataclass(frozen=True, slots=True)
class Housekeeping:
    """What one round of :func:`housekeep` did, for logs and tests."""

    reaped: int = 0
    poisoned: int = 0
    promoted: int = 0
    taken: int = 0
    incoming_failed: int = 0
    swept: int = 0
    expired: int = 0
    #: Rejection codes of this round (incoming/ refusals, poison items), for metrics.
    rejected: tuple[str, ...] = ()


def housekeep(spool: Spool) -> Housekeeping:
    """One round of everything periodic."""
    rejected: list[str] = []
    reaped, poisoned = reap(spool, rejected)
    taken, incoming_failed = take_incoming(spool, rejected)
    return Housekeeping(
        reaped=reaped,
        poisoned=poisoned,
        promoted=promote_deferred(spool),
        taken=taken,
        incoming_failed=incoming_failed,
        swept=sweep_tmp(spool),
        expired=expire_done(spool) + expire_failed(spool) + forget_superseded(spool),
        rejected=tuple(rejected),
    )


def reap(spool: Spool, rejected: list[str] | None = None) -> tuple[int, int]:
    """Return claims of dead workers to ``new/``; fail items that keep killing workers.

    A worker on this host is dead when its pid is gone (or reused: the start time
    differs). A worker elsewhere is dead when its lease is older than ``policy.lease``.
    A wrongly reaped claim is harmless: publishing is idempotent, and the slow worker's
    final rename simply fails.
    """
    now = spool.clock()
    here = spool.owner.host
    reaped = poisoned = 0
    for entry in listdir(spool.cur):
        item = ItemName.parse(entry)
        path = spool.cur / entry
        if item.owner is not None and item.owner.host == here:
            if alive(item.owner):
                continue
        else:
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if now - max(st.st_mtime, st.st_ctime) < spool.policy.lease:
                continue
        attempts = item.attempts + 1
        if item.uid is None:
            item = ItemName(placeholder_filename(entry)).with_uid(new_uid())
        if attempts >= spool.policy.max_attempts:
            if spool.fail(Claim(item, path, path), "worker-crash",
                          f"processing this file ended {attempts} workers abnormally; "
                          "it was set aside so it cannot stop the queue"):
                poisoned += 1
                if rejected is not None:
                    rejected.append("worker-crash")
        elif move(path, spool.new / str(item.released(attempts=attempts))):
            reaped += 1
    return reaped, poisoned


def promote_deferred(spool: Spool) -> int:
    """Move deferred items whose backoff is over back to ``new/``."""
    now = spool.clock()
    promoted = 0
    for entry in listdir(spool.deferred):
        item = ItemName.parse(entry)
        if item.due is not None and item.due > now:
            continue
        if move(spool.deferred / entry, spool.new / str(item.released())):
            promoted += 1
    return promoted


def take_incoming(spool: Spool, rejected: list[str] | None = None) -> tuple[int, int]:
    """Move finished files from ``incoming/`` into ``new/`` (or ``failed/``)."""
    now = spool.clock()
    taken = failed = 0
    for entry in listdir(spool.incoming):
        path = spool.incoming / entry
        decision = incoming.decide(path, now, spool.policy.incoming)
        if decision.verdict in (incoming.Verdict.IGNORE, incoming.Verdict.WAIT):
            continue
        try:
            check_filename(entry)
            item = ItemName(entry).with_uid(new_uid())
        except Rejected as e:
            item = ItemName(placeholder_filename(entry)).with_uid(new_uid())
            decision = incoming.Decision(incoming.Verdict.FAIL, e.code,
                                         f"{e.message} (was {display(entry)!r})")
        if decision.verdict is incoming.Verdict.TAKE:
            if move(path, spool.new / str(item)):
                taken += 1
                fsync_dir(spool.new)
        else:
            spool.write_reason(item, Reason(
                item=str(item), filename=item.filename, code=decision.code,
                error=decision.reason, time=now,
            ))
            if move(path, spool.failed / str(item)):
                failed += 1
                if rejected is not None:
                    rejected.append(decision.code)
        with contextlib.suppress(OSError):  # absent, or the name is too long to have one
            os.unlink(path.with_name(entry + incoming.SIDECAR_SUFFIX))
    return taken, failed


def sweep_tmp(spool: Spool) -> int:
    """Remove deliveries abandoned in ``tmp/`` (older than ``policy.tmp_max_age``)."""
    return _expire(spool.tmp, spool.clock() - spool.policy.tmp_max_age)


def expire_done(spool: Spool) -> int:
    """Forget published items older than the retention period."""
    return _expire(spool.done, spool.clock() - spool.policy.done_retention)


def expire_failed(spool: Spool) -> int:
    """Forget rejected items older than their retention, with their reasons.

    An item's age in ``failed/`` is its ctime: the rename that put it there set it."""
    removed = _expire(spool.failed, spool.clock() - spool.policy.failed_retention,
                      keep=lambda name: name.endswith(REASON_SUFFIX), by_ctime=True)
    _drop_orphan_reasons(spool)
    return removed


#: A failure is kept at least this long, superseded or not: an upload waiting for its
#: outcome (up to 15 minutes) reads it from ``failed/``.
SUPERSEDED_GRACE = 3600.0


def forget_superseded(spool: Spool) -> int:
    """Drop failures whose file was published afterwards (a fixed upload of the same
    name): ``spoold status`` lists what is still wrong, not what was wrong once. Only
    failures older than :data:`SUPERSEDED_GRACE` go, so no waiting upload loses its answer."""
    published: dict[str, float] = {}
    for entry in listdir(spool.done):
        name = ItemName.parse(entry)
        if name.uid is not None:
            when = _uid_time(name.uid)
            published[name.filename] = max(published.get(name.filename, 0.0), when)
    forgotten = 0
    for entry in listdir(spool.failed):
        if entry.endswith(REASON_SUFFIX):
            continue
        name = ItemName.parse(entry)
        if name.uid is None or published.get(name.filename, 0.0) <= _uid_time(name.uid):
            continue
        try:
            st = os.lstat(spool.failed / entry)
        except FileNotFoundError:
            continue
        if spool.clock() - max(st.st_mtime, st.st_ctime) < SUPERSEDED_GRACE:
            continue
        with contextlib.suppress(FileNotFoundError):
            if os.path.isdir(spool.failed / entry) and not os.path.islink(spool.failed / entry):
                shutil.rmtree(spool.failed / entry)
            else:
                os.unlink(spool.failed / entry)
            forgotten += 1
        with contextlib.suppress(FileNotFoundError):
            os.unlink(spool.failed / (name.uid + REASON_SUFFIX))
    return forgotten


def _uid_time(uid: str) -> float:
    """When an item was delivered: the uid starts with seconds.microseconds."""
    try:
        seconds, micros = uid.split(".", 2)[:2]
        return int(seconds) + int(micros) / 1e6
    except ValueError:
        return 0.0


def _drop_orphan_reasons(spool: Spool) -> None:
    """Reasons whose item is gone (expired, retried by hand with mv) go too."""
    entries = listdir(spool.failed)
    uids = {ItemName.parse(e).uid for e in entries if not e.endswith(REASON_SUFFIX)}
    for entry in entries:
        if entry.endswith(REASON_SUFFIX) and entry[: -len(REASON_SUFFIX)] not in uids:
            path = spool.failed / entry
            with contextlib.suppress(FileNotFoundError):
                if spool.clock() - os.lstat(path).st_mtime > 60:  # not one being written now
                    os.unlink(path)


def _expire(folder: Path, cutoff: float, *, keep: Callable[[str], bool] | None = None,
            by_ctime: bool = False) -> int:
    removed = 0
    for entry in listdir(folder):
        if keep is not None and keep(entry):
            continue
        path = folder / entry
        try:
            st = os.lstat(path)
            if (max(st.st_mtime, st.st_ctime) if by_ctime else st.st_mtime) >= cutoff:
                continue
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed += 1
        except FileNotFoundError:
            continue
    return removed
