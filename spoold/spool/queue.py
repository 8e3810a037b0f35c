"""The maildir-style spool: every state change of an item is one rename(2).

::

    incoming/ --settled--> new/ --claim--> cur/ --> done/ | failed/ | deferred/ --due--> new/
    tmp/ --(written, fsync'd)--> new/

Everything here is plain synchronous code with no reactor: the worker daemon calls it from
a thread pool, tests call it directly. No locks are taken anywhere; the rename into
``cur/`` is the only arbiter of who owns an item (a failed rename means another worker won),
so any number of processes on any number of hosts can share one spool.

This module holds the queue itself (open, deliver, claim, finish, fail, defer);
:mod:`spoold.spool.housekeeping` the periodic work and :mod:`spoold.spool.status` the
reporting, both reached through :class:`Spool`'s methods.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from spoold.durable import read_only
from spoold.errors import ConfigError, Rejected
from spoold.spool import housekeeping, status
from spoold.spool.delivery import Delivery
from spoold.spool.claim import Claim
from spoold.spool.folders import FOLDERS, META, PAYLOAD, REASON_SUFFIX, listdir, move
from spoold.spool.incoming import IncomingPolicy
from spoold.spool.liveness import process_start
from spoold.spool.names import (
    ItemName,
    Owner,
    check_filename,
    display,
    host_tag,
    is_hidden_or_partial,
    new_uid,
    placeholder_filename,
)
from spoold.spool.outcome import Outcome, Result
from spoold.spool.records import ItemMeta, Reason, read_record, write_record

__all__ = ["Claim", "Spool", "SpoolPolicy", "done_name"]

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class SpoolPolicy:
    """Timings and bounds; the defaults follow the contract."""

    #: A claim whose worker is on another host is presumed dead after this many seconds
    #: without a heartbeat (the worker refreshes the item's mtime while it works).
    lease: float = 300.0
    #: Reaped claims (dead workers) an item may cause before it is failed as a poison item.
    max_attempts: int = 5
    #: Deferral backoff: ``base * 2**defers`` seconds, capped, with +-20% jitter.
    backoff_base: float = 5.0
    backoff_max: float = 3600.0
    tmp_max_age: float = 36 * 3600.0
    done_retention: float = 7 * 86400.0
    #: Rejected items (and their reasons) are forgotten after this long.
    failed_retention: float = 30 * 86400.0
    incoming: IncomingPolicy = field(default_factory=IncomingPolicy)


class Spool:
    """One spool directory.

    ``clock`` and ``owner`` are injectable so tests can move time and play other workers.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        policy: SpoolPolicy | None = None,
        clock: Callable[[], float] = time.time,
        owner: Owner | None = None,
    ) -> None:
        self.root = Path(root)
        self.policy = policy or SpoolPolicy()
        self.clock = clock
        self._owner = owner
        self._self_owner: Owner | None = None
        for name in FOLDERS:
            setattr(self, name, self.root / name)

    incoming: Path
    tmp: Path
    new: Path
    cur: Path
    deferred: Path
    done: Path
    failed: Path

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def create(cls, root: str | os.PathLike[str], **kwargs: Any) -> Spool:
        """Open a spool, creating its folders (daemons; ``spoold drop`` does not create)."""
        spool = cls(root, **kwargs)
        try:
            for name in FOLDERS:
                (spool.root / name).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create the spool at {spool.root}: {e.strerror}") from None
        return spool.check(writable=True)

    @classmethod
    def open(cls, root: str | os.PathLike[str], *, writable: bool = True,
             create_if_empty: bool = False, **kwargs: Any) -> Spool:
        """Open an existing spool; a missing or unwritable one is a :class:`ConfigError`.

        ``create_if_empty``: an existing, empty directory gets the spool's folders (an
        administrator made the directory, with the right group, for ``spoold drop``).
        """
        spool = cls(root, **kwargs)
        if create_if_empty and spool.root.is_dir() and not any(spool.root.iterdir()):
            return cls.create(root, **kwargs)
        return spool.check(writable=writable)

    def check(self, *, writable: bool) -> Spool:
        if not self.root.is_dir():
            raise ConfigError(
                f"no spool at {self.root}: start `spoold serve` or `spoold worker` once to "
                "create it, or pass --spool DIR"
            )
        if not any((self.root / name).is_dir() for name in FOLDERS):
            raise ConfigError(
                f"{self.root} is not a spool (it has none of the folders {', '.join(FOLDERS)}); "
                "pass --spool DIR of a spool, or an empty directory to make one"
            )
        for name in FOLDERS:
            folder = self.root / name
            if not folder.is_dir():
                raise ConfigError(f"{folder} is missing: the spool at {self.root} is incomplete")
            if writable and read_only(folder):
                raise ConfigError(
                    f"the spool at {self.root} is on a read-only filesystem; remount it "
                    "read-write (spoold moves items between its folders)"
                )
            if writable and not os.access(folder, os.W_OK | os.X_OK):
                raise ConfigError(
                    f"{folder} is not writable by this user (uid {os.getuid()}); "
                    "add the user to the spool's group or run as the spool's owner"
                )
        return self

    @property
    def owner(self) -> Owner:
        """This process as a claim owner (recomputed after fork), unless one was injected."""
        if self._owner is not None:
            return self._owner
        pid = os.getpid()
        if self._self_owner is None or self._self_owner.pid != pid:
            self._self_owner = Owner(host_tag(), pid, process_start(pid))
        return self._self_owner

    # -- delivery --------------------------------------------------------------------------

    def deliver_bytes(self, data: bytes, filename: str, meta: ItemMeta | None = None) -> str:
        """Deliver bytes as one item; returns the item name in ``new/``."""
        with self.delivery(filename, meta) as f:
            f.write(data)
        return f.item

    def deliver_stream(self, stream: BinaryIO, filename: str, meta: ItemMeta | None = None) -> str:
        with self.delivery(filename, meta) as f:
            shutil.copyfileobj(stream, f, _CHUNK)
        return f.item

    def deliver_file(
        self, path: str | os.PathLike[str], filename: str | None = None,
        meta: ItemMeta | None = None,
    ) -> str:
        """Copy a local file in (the original is left alone)."""
        path = Path(path)
        with open(path, "rb") as src:
            return self.deliver_stream(src, filename or path.name, meta)

    @contextlib.contextmanager
    def delivery(self, filename: str, meta: ItemMeta | None = None) -> Iterator[Delivery]:
        """Write an item through a file object; it appears in ``new/`` only if the block
        completes, and only after its bytes and directory entries are on disk.

        With ``meta`` the item is a directory holding the bytes and ``meta.json``."""
        check_filename(filename)
        delivery = Delivery(self.tmp, self.new, filename, meta)
        try:
            yield delivery
            delivery.commit()
        except BaseException:
            delivery.abort()
            raise

    # -- claiming and finishing ------------------------------------------------------------

    def pending(self) -> list[str]:
        """Names in ``new/`` a worker may claim, oldest first (by name)."""
        return sorted(n for n in listdir(self.new) if not is_hidden_or_partial(n))

    def claim(self, entry: str) -> Claim | None:
        """Try to own ``new/<entry>``; None if another worker won it (or it is gone)."""
        if is_hidden_or_partial(entry):
            return None
        item = ItemName.parse(entry)
        unsafe = None
        try:
            check_filename(item.filename)
        except Rejected as e:
            unsafe = e
            item = ItemName(placeholder_filename(item.filename))
        if item.uid is None:
            item = item.with_uid(new_uid())
        claimed = item.claimed_by(self.owner)
        target = self.cur / str(claimed)
        try:
            os.rename(self.new / entry, target)
        except FileNotFoundError:
            return None
        claim = Claim(claimed, target, target)
        if unsafe is not None:
            self.fail(claim, unsafe.code, f"{unsafe.message} (was {display(entry)!r})")
            return None
        return self._open_claim(claim)

    def _open_claim(self, claim: Claim) -> Claim | None:
        """Resolve a claimed entry into payload and meta; hostile shapes are failed here."""
        try:
            st = os.lstat(claim.path)
        except FileNotFoundError:
            return None
        if stat.S_ISREG(st.st_mode):
            return claim
        if stat.S_ISDIR(st.st_mode):
            payload = claim.path / PAYLOAD
            try:
                pst = os.lstat(payload)
                meta = ItemMeta.from_json(read_record(claim.path / META))
            except (OSError, ValueError) as e:
                self.fail(claim, "invalid-item", f"a directory item needs {PAYLOAD} and {META}: {e}")
                return None
            if not stat.S_ISREG(pst.st_mode):
                self.fail(claim, "not-a-file", f"{PAYLOAD} in the item is not a regular file")
                return None
            return Claim(claim.name, claim.path, payload, meta)
        self.fail(claim, "not-a-file",
                  "only regular files are accepted (not links, devices or pipes); copy the file itself")
        return None

    def heartbeat(self, claim: Claim) -> None:
        """Renew the lease on a claim (workers on other hosts judge it by age).

        A file another user delivered without group write cannot be touched; its lease
        then runs from the claim's rename (ctime), which is all a reaper needs on one host.
        """
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.utime(claim.path, follow_symlinks=False)

    def finish(self, claim: Claim, *, unchanged: bool = False) -> bool:
        """Published, or (``unchanged``) found already published with the same bytes: move
        to ``done/``. False if the claim was taken from us meanwhile.

        The name in ``done/`` is ``uid,filename``, or ``uid;u=1,filename`` when unchanged,
        so anyone waiting for an item (an upload in another process) can find it, and which
        of the two it was, with a stat or two: see :meth:`outcome_of`.
        """
        target = self.done / done_name(claim.name, unchanged=unchanged)
        if not move(claim.path, target):
            return False
        with contextlib.suppress(OSError):
            os.utime(target, (self.clock(), self.clock()), follow_symlinks=False)
        return True

    def fail(self, claim: Claim, code: str, message: str, *, http_status: int = 400) -> bool:
        """Rejected: move to ``failed/`` with a machine-readable reason beside it.

        ``http_status`` is how an upload of the item is answered, recorded so that an
        upload waiting in another process answers the same."""
        released = claim.name.released()
        self.write_reason(released, Reason(
            item=str(released), filename=released.filename, code=code, error=message,
            time=self.clock(), attempts=released.attempts, http_status=http_status,
            meta=claim.meta,
        ))
        return move(claim.path, self.failed / str(released))

    def defer(self, claim: Claim, message: str = "") -> float:
        """Transient fault: park in ``deferred/`` until the backoff is over; returns the due time."""
        delay = min(self.policy.backoff_max, self.policy.backoff_base * 2 ** claim.name.defers)
        due = self.clock() + delay * random.uniform(0.8, 1.2)
        move(claim.path, self.deferred / str(claim.name.deferred_until(int(due) + 1)))
        return due

    def release(self, claim: Claim) -> bool:
        """Give a claim back untouched (graceful shutdown before work started)."""
        return move(claim.path, self.new / str(claim.name.released()))

    def outcome_of(self, name: ItemName) -> Outcome | None:
        """What became of a delivered item, whichever process handled it; None while it is
        still on its way (new, cur, deferred). Three stats at most; no listing."""
        assert name.uid is not None
        if os.path.lexists(self.done / done_name(name)):
            return Outcome(str(name), name.filename, Result.PUBLISHED)
        if os.path.lexists(self.done / done_name(name, unchanged=True)):
            return Outcome(str(name), name.filename, Result.UNCHANGED)
        try:
            reason = Reason.from_json(read_record(self.failed / (name.uid + REASON_SUFFIX)))
        except (OSError, ValueError):
            return None
        return Outcome.rejected(name, reason)

    def retry(self, entry: str) -> str | None:
        """Give a failed item another go: back to ``new/`` with a clean slate (no reason,
        no attempts). Returns its name in ``new/``, or None if it is not in ``failed/``."""
        item = ItemName.parse(entry)
        if entry.endswith(REASON_SUFFIX) or "/" in entry or entry.startswith("."):
            return None
        if item.uid is None:
            item = item.with_uid(new_uid())
        fresh = str(item.released(attempts=0))
        if not move(self.failed / entry, self.new / fresh):
            return None
        if item.uid is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.failed / (item.uid + REASON_SUFFIX))
        return fresh

    def write_reason(self, item: ItemName, reason: Reason) -> None:
        """Write ``failed/<uid>.reason.json`` durably, before the item itself moves there."""
        assert item.uid is not None
        write_record(self.failed / (item.uid + REASON_SUFFIX), reason.to_json(),
                     tmp=self.tmp / ("." + item.uid + REASON_SUFFIX))

    # -- housekeeping and reporting (see the modules of those names) -------------------------

    def housekeep(self) -> housekeeping.Housekeeping:
        return housekeeping.housekeep(self)

    def reap(self) -> tuple[int, int]:
        return housekeeping.reap(self)

    def promote_deferred(self) -> int:
        return housekeeping.promote_deferred(self)

    def take_incoming(self) -> tuple[int, int]:
        return housekeeping.take_incoming(self)

    def sweep_tmp(self) -> int:
        return housekeeping.sweep_tmp(self)

    def expire_done(self) -> int:
        return housekeeping.expire_done(self)

    def expire_failed(self) -> int:
        return housekeeping.expire_failed(self)

    def counts(self) -> dict[str, int]:
        return status.counts(self)

    def status(self) -> status.Status:
        return status.status(self)


#: The info field that marks an item in ``done/`` as found already published, unchanged
#: (``ItemName.parse`` reads past unknown fields, so the filename and uid still parse).
UNCHANGED_INFO = ";u=1"


def done_name(name: ItemName, *, unchanged: bool = False) -> str:
    """An item's name in ``done/``: ``uid,filename`` (``uid;u=1,filename`` if it was
    already published unchanged), findable by anyone who knows the uid."""
    published = str(ItemName(name.filename, uid=name.uid))
    if not unchanged or name.uid is None:
        return published
    return f"{name.uid}{UNCHANGED_INFO},{name.filename}"
