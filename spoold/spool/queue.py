"""The maildir-style spool: every state change of an item is one rename(2).

::

    incoming/ --settled--> new/ --claim--> cur/ --> done/ | failed/ | deferred/ --due--> new/
    tmp/ --(written, fsync'd)--> new/

Everything here is plain synchronous code with no reactor: the worker daemon calls it from
a thread pool, tests call it directly. No locks are taken anywhere; the rename into
``cur/`` is the only arbiter of who owns an item (a failed rename means another worker won),
so any number of processes on any number of hosts can share one spool.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import random
import shutil
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

from spoold.spool import incoming
from spoold.errors import ConfigError, Rejected
from spoold.spool.folders import FOLDERS, META, PAYLOAD, REASON_SUFFIX
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

_CHUNK = 1 << 20
_MAX_META = 1 << 20


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
    incoming: incoming.IncomingPolicy = field(default_factory=incoming.IncomingPolicy)


@dataclass(frozen=True, slots=True)
class Claim:
    """An item this process owns: the rename into ``cur/`` succeeded."""

    name: ItemName
    path: Path
    #: The distribution's bytes: the item itself, or ``data`` inside a directory item.
    payload: Path
    #: What the deliverer recorded (declared digests, uploader, ...); empty for plain files.
    meta: Mapping[str, Any]

    @property
    def filename(self) -> str:
        return self.name.filename


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


@dataclass(frozen=True, slots=True)
class Housekeeping:
    """What one round of :meth:`Spool.housekeep` did, for logs and tests."""

    reaped: int = 0
    poisoned: int = 0
    promoted: int = 0
    taken: int = 0
    incoming_failed: int = 0
    swept: int = 0
    expired: int = 0


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
    def open(cls, root: str | os.PathLike[str], *, writable: bool = True, **kwargs: Any) -> Spool:
        """Open an existing spool; a missing or unwritable one is a :class:`ConfigError`."""
        return cls(root, **kwargs).check(writable=writable)

    def check(self, *, writable: bool) -> Spool:
        if not self.root.is_dir():
            raise ConfigError(
                f"no spool at {self.root}: start `spoold serve` or `spoold worker` once to "
                "create it, or pass --spool DIR"
            )
        for name in FOLDERS:
            folder = self.root / name
            if not folder.is_dir():
                raise ConfigError(f"{folder} is missing: the spool at {self.root} is incomplete")
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
            self._self_owner = Owner(host_tag(), pid, _process_start(pid))
        return self._self_owner

    # -- delivery --------------------------------------------------------------------------

    def deliver_bytes(self, data: bytes, filename: str, meta: Mapping[str, Any] | None = None) -> str:
        """Deliver bytes as one item; returns the item name in ``new/``."""
        with self.delivery(filename, meta) as f:
            f.write(data)
        return f.item

    def deliver_stream(
        self, stream: BinaryIO, filename: str, meta: Mapping[str, Any] | None = None
    ) -> str:
        with self.delivery(filename, meta) as f:
            shutil.copyfileobj(stream, f, _CHUNK)
        return f.item

    def deliver_file(
        self, path: str | os.PathLike[str], filename: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        """Copy a local file in (the original is left alone)."""
        path = Path(path)
        with open(path, "rb") as src:
            return self.deliver_stream(src, filename or path.name, meta)

    @contextlib.contextmanager
    def delivery(self, filename: str, meta: Mapping[str, Any] | None = None) -> Iterator[Delivery]:
        """Write an item through a file object; it appears in ``new/`` only if the block
        completes, and only after its bytes and directory entries are on disk."""
        check_filename(filename)
        delivery = Delivery(self, filename, meta)
        try:
            yield delivery
            delivery.commit()
        except BaseException:
            delivery.abort()
            raise

    # -- claiming and finishing ------------------------------------------------------------

    def pending(self) -> list[str]:
        """Names in ``new/`` a worker may claim, oldest first (by name)."""
        return sorted(n for n in _listdir(self.new) if not is_hidden_or_partial(n))

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
        claim = Claim(claimed, target, target, {})
        if unsafe is not None:
            self.fail(claim, unsafe.code, f"{unsafe.message} (was {display(entry)!r})")
            return None
        return self._open_claim(claim)

    def claims(self, candidates: list[str] | None = None) -> Iterator[Claim]:
        """Claim pending items one by one as the caller asks for them.

        Each caller walks the listing from a random place, so workers sharing a spool
        rarely race for the same item; a lost race costs one failed rename.
        """
        names = self.pending() if candidates is None else candidates
        if not names:
            return
        start = random.randrange(len(names))
        for entry in itertools.chain(names[start:], names[:start]):
            claim = self.claim(entry)
            if claim is not None:
                yield claim

    def claim_next(self, candidates: list[str] | None = None) -> Claim | None:
        """Claim one pending item (see :meth:`claims`), or None if there is none left."""
        return next(self.claims(candidates), None)

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
                meta = _read_meta(claim.path / META)
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

    def finish(self, claim: Claim) -> bool:
        """Published: move to ``done/``. False if the claim was taken from us meanwhile.

        The name in ``done/`` is ``uid,filename`` exactly, so anyone waiting for an item
        (an upload in another process) can find it with one stat: see :meth:`outcome_of`.
        """
        target = self.done / done_name(claim.name)
        if not _move(claim.path, target):
            return False
        with contextlib.suppress(OSError):
            os.utime(target, (self.clock(), self.clock()), follow_symlinks=False)
        return True

    def fail(self, claim: Claim, code: str, message: str, *, http_status: int = 400) -> bool:
        """Rejected: move to ``failed/`` with a machine-readable reason beside it.

        ``http_status`` is how an upload of the item is answered, recorded so that an
        upload waiting in another process answers the same."""
        released = claim.name.released()
        reason = {
            "item": str(released),
            "filename": released.filename,
            "code": code,
            "error": message,
            "time": self.clock(),
            "attempts": released.attempts,
            "http_status": http_status,
            "meta": dict(claim.meta),
        }
        self._write_reason(released, reason)
        return _move(claim.path, self.failed / str(released))

    def defer(self, claim: Claim, message: str = "") -> float:
        """Transient fault: park in ``deferred/`` until the backoff is over; returns the due time."""
        delay = min(self.policy.backoff_max, self.policy.backoff_base * 2 ** claim.name.defers)
        due = self.clock() + delay * random.uniform(0.8, 1.2)
        _move(claim.path, self.deferred / str(claim.name.deferred_until(int(due) + 1)))
        return due

    def release(self, claim: Claim) -> bool:
        """Give a claim back untouched (graceful shutdown before work started)."""
        return _move(claim.path, self.new / str(claim.name.released()))

    def outcome_of(self, name: ItemName) -> tuple[str, dict[str, Any] | None] | None:
        """Where a delivered item ended: ``("done", None)``, ``("failed", reason)`` or None
        while it is still on its way (new, cur, deferred). Two stats; no listing."""
        assert name.uid is not None
        if os.path.lexists(self.done / done_name(name)):
            return ("done", None)
        try:
            return ("failed", _read_meta(self.failed / (name.uid + REASON_SUFFIX)))
        except (OSError, ValueError):
            return None

    # -- housekeeping ----------------------------------------------------------------------

    def housekeep(self) -> Housekeeping:
        """One round of everything periodic; cheap enough to run every few seconds."""
        reaped, poisoned = self.reap()
        taken, incoming_failed = self.take_incoming()
        return Housekeeping(
            reaped=reaped,
            poisoned=poisoned,
            promoted=self.promote_deferred(),
            taken=taken,
            incoming_failed=incoming_failed,
            swept=self.sweep_tmp(),
            expired=self.expire_done(),
        )

    def reap(self) -> tuple[int, int]:
        """Return claims of dead workers to ``new/``; fail items that keep killing workers.

        A worker on this host is dead when its pid is gone (or reused: the start time
        differs). A worker elsewhere is dead when its lease is older than ``policy.lease``.
        A wrongly reaped claim is harmless: publishing is idempotent, and the slow worker's
        final rename simply fails.
        """
        now = self.clock()
        here = self.owner.host
        reaped = poisoned = 0
        for entry in _listdir(self.cur):
            item = ItemName.parse(entry)
            path = self.cur / entry
            if item.owner is not None and item.owner.host == here:
                if _alive(item.owner):
                    continue
            else:
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue
                if now - max(st.st_mtime, st.st_ctime) < self.policy.lease:
                    continue
            attempts = item.attempts + 1
            if item.uid is None:
                item = ItemName(placeholder_filename(entry)).with_uid(new_uid())
            if attempts >= self.policy.max_attempts:
                claim = Claim(item, path, path, {})
                if self.fail(claim, "worker-crash",
                             f"processing this file ended {attempts} workers abnormally; "
                             "it was set aside so it cannot stop the queue"):
                    poisoned += 1
            elif _move(path, self.new / str(item.released(attempts=attempts))):
                reaped += 1
        return reaped, poisoned

    def promote_deferred(self) -> int:
        """Move deferred items whose backoff is over back to ``new/``."""
        now = self.clock()
        promoted = 0
        for entry in _listdir(self.deferred):
            item = ItemName.parse(entry)
            if item.due is not None and item.due > now:
                continue
            if _move(self.deferred / entry, self.new / str(item.released())):
                promoted += 1
        return promoted

    def take_incoming(self) -> tuple[int, int]:
        """Move finished files from ``incoming/`` into ``new/`` (or ``failed/``)."""
        now = self.clock()
        taken = failed = 0
        for entry in _listdir(self.incoming):
            path = self.incoming / entry
            decision = incoming.decide(path, now, self.policy.incoming)
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
                if _move(path, self.new / str(item)):
                    taken += 1
                    _fsync_dir(self.new)
            else:
                self._write_reason(item, {
                    "item": str(item), "filename": item.filename, "code": decision.code,
                    "error": decision.reason, "time": now, "attempts": 0, "meta": {},
                })
                if _move(path, self.failed / str(item)):
                    failed += 1
            with contextlib.suppress(OSError):  # absent, or the name is too long to have one
                os.unlink(path.with_name(entry + incoming.SIDECAR_SUFFIX))
        return taken, failed

    def sweep_tmp(self) -> int:
        """Remove deliveries abandoned in ``tmp/`` (older than ``policy.tmp_max_age``)."""
        return self._expire(self.tmp, self.policy.tmp_max_age)

    def expire_done(self) -> int:
        """Forget published items older than the retention period."""
        return self._expire(self.done, self.policy.done_retention)

    def _expire(self, folder: Path, max_age: float) -> int:
        cutoff = self.clock() - max_age
        removed = 0
        for entry in _listdir(folder):
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

    # -- reporting -------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Queue depths: one listing per folder, no file read (health, metrics, STATUS=)."""
        return {name: len(self._entries(name)) for name in FOLDERS}

    def status(self) -> Status:
        """Queue depths and the reasons of failed items (the ``spoold status`` schema)."""
        counts = self.counts()
        failures = tuple(self._failure(e) for e in sorted(self._entries("failed")))
        return Status(counts, failures)

    def _entries(self, name: str) -> list[str]:
        entries = _listdir(self.root / name)
        if name == "incoming":
            return [e for e in entries if not is_hidden_or_partial(e)
                    and not e.endswith(incoming.SIDECAR_SUFFIX)]
        if name == "failed":
            return [e for e in entries if not e.endswith(REASON_SUFFIX)]
        return entries

    def _failure(self, entry: str) -> Failure:
        item = ItemName.parse(entry)
        reason: dict[str, Any] = {}
        if item.uid is not None:
            with contextlib.suppress(OSError, ValueError):
                reason = _read_meta(self.failed / (item.uid + REASON_SUFFIX))
        return Failure(
            item=display(entry),
            filename=display(item.filename),
            code=str(reason.get("code", "unknown")),
            error=str(reason.get("error", "no reason was recorded")),
            time=reason.get("time") if isinstance(reason.get("time"), (int, float)) else None,
        )

    def _write_reason(self, item: ItemName, reason: Mapping[str, Any]) -> None:
        assert item.uid is not None
        target = self.failed / (item.uid + REASON_SUFFIX)
        tmp = self.tmp / ("." + item.uid + REASON_SUFFIX)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(reason, f, ensure_ascii=True, default=str)
        os.replace(tmp, target)


class Delivery:
    """An item being written in ``tmp/``; see :meth:`Spool.delivery`."""

    def __init__(self, spool: Spool, filename: str, meta: Mapping[str, Any] | None) -> None:
        self.spool = spool
        self.name = ItemName(filename).with_uid(new_uid())
        self.item = str(self.name)
        self._tmp = spool.tmp / self.item
        self._meta = dict(meta) if meta is not None else None
        if self._meta is None:
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        else:
            os.mkdir(self._tmp, 0o755)
            fd = os.open(self._tmp / PAYLOAD, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self._file: IO[bytes] = os.fdopen(fd, "wb", buffering=_CHUNK)
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return self._file.write(data)

    def commit(self) -> None:
        """fsync the bytes, rename into ``new/``, fsync ``new/``: after this, it survives a crash."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if self._meta is not None:
            with open(self._tmp / META, "w", encoding="utf-8") as f:
                json.dump(self._meta, f, ensure_ascii=True, default=str)
                f.flush()
                os.fsync(f.fileno())
            _fsync_dir(self._tmp)
        os.rename(self._tmp, self.spool.new / self.item)
        _fsync_dir(self.spool.new)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            if self._tmp.is_dir():
                shutil.rmtree(self._tmp)
            else:
                os.unlink(self._tmp)


def done_name(name: ItemName) -> str:
    return str(ItemName(name.filename, uid=name.uid))


# -- small filesystem helpers --------------------------------------------------------------


def _listdir(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def _move(source: Path, target: Path) -> bool:
    """rename(2); False when the source is gone (another worker got there first)."""
    try:
        os.rename(source, target)
    except FileNotFoundError:
        return False
    return True


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_meta(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        raw = f.read(_MAX_META + 1)
    if len(raw) > _MAX_META:
        raise ValueError(f"{path.name} is larger than {_MAX_META} bytes")
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return value


def _process_start(pid: int) -> int:
    """Start time of a process in clock ticks since boot (Linux); 0 if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    fields = data[data.rfind(b")") + 2:].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return 0


def _alive(owner: Owner) -> bool:
    """Whether a worker on this host still runs (zombies and reused pids count as dead)."""
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # It exists but belongs to another user; under systemd's ProtectProc=invisible its
        # /proc entry is hidden too, so this is all we will learn: alive.
        if not os.path.exists(f"/proc/{owner.pid}"):
            return True
    except OSError as e:
        return e.errno != errno.ESRCH
    try:
        with open(f"/proc/{owner.pid}/stat", "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    fields = data[data.rfind(b")") + 2:].split()
    if fields and fields[0] in (b"Z", b"X"):
        return False
    if owner.start and len(fields) > 19 and fields[19].isdigit():
        return int(fields[19]) == owner.start
    return True
