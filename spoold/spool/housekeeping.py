"""The spool's periodic work: reap dead claims, promote deferred items, take finished files
from ``incoming/``, sweep abandoned deliveries, expire old published items.

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
from typing import TYPE_CHECKING

from spoold.errors import Rejected
from spoold.spool import incoming
from spoold.spool.claim import Claim
from spoold.spool.folders import listdir, move
from spoold.durable import fsync_dir
from spoold.spool.liveness import alive
from spoold.spool.names import ItemName, check_filename, display, new_uid, placeholder_filename
from spoold.spool.records import Reason

if TYPE_CHECKING:
    from spoold.spool.queue import Spool

__all__ = [
    "Housekeeping",
    "expire_done",
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


def housekeep(spool: Spool) -> Housekeeping:
    """One round of everything periodic."""
    reaped, poisoned = reap(spool)
    taken, incoming_failed = take_incoming(spool)
    return Housekeeping(
        reaped=reaped,
        poisoned=poisoned,
        promoted=promote_deferred(spool),
        taken=taken,
        incoming_failed=incoming_failed,
        swept=sweep_tmp(spool),
        expired=expire_done(spool),
    )


def reap(spool: Spool) -> tuple[int, int]:
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


def take_incoming(spool: Spool) -> tuple[int, int]:
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
        with contextlib.suppress(OSError):  # absent, or the name is too long to have one
            os.unlink(path.with_name(entry + incoming.SIDECAR_SUFFIX))
    return taken, failed


def sweep_tmp(spool: Spool) -> int:
    """Remove deliveries abandoned in ``tmp/`` (older than ``policy.tmp_max_age``)."""
    return _expire(spool.tmp, spool.clock() - spool.policy.tmp_max_age)


def expire_done(spool: Spool) -> int:
    """Forget published items older than the retention period."""
    return _expire(spool.done, spool.clock() - spool.policy.done_retention)


def _expire(folder: Path, cutoff: float) -> int:
    removed = 0
    for entry in listdir(folder):
        path = folder / entry
        try:
            st = os.lstat(path)
            if st.st_mtime >= cutoff:
                continue
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed += 1
        except FileNotFoundError:
            continue
    return removed
