"""A full disk never leaves an item stuck: it goes back to the queue and is decided later."""

from __future__ import annotations

from pathlib import Path

from spoold.spool import Result, Spool
from spoold.storage.memory import MemoryStorage
from spoold.worker.processing import process
from testlib.smallfs import fill, small_filesystem


def entries(spool: Spool, folder: str) -> list[str]:
    return sorted(p.name for p in (spool.root / folder).iterdir())


def test_a_rejection_that_cannot_write_its_reason_is_retried_when_space_comes_back(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "fs") as fs:
        spool = Spool.create(fs / "spool")
        claim = spool.claim(spool.deliver_bytes(b"not a gzip file", "broken-1.0.tar.gz"))
        assert claim is not None
        fillers = fill(fs)
        handled = process(spool, MemoryStorage(), claim)
        # Not rejected without a reason, not stuck in cur/: deferred, with why.
        assert handled.outcome is None and "No space left" in handled.deferred_reason
        assert entries(spool, "cur") == [] and entries(spool, "failed") == []
        assert len(entries(spool, "deferred")) == 1
        assert [p.name for p in (spool.root / "tmp").iterdir()] == []  # no half-written reason
        # Space comes back: the next round decides it, with its reason.
        for filler in fillers:
            filler.unlink()
        spool.clock = lambda: 4e9  # the backoff is over
        assert spool.promote_deferred() == 1
        (entry,) = spool.pending()
        handled = process(spool, MemoryStorage(), spool.claim(entry))
        assert handled.outcome is not None and handled.outcome.result is Result.REJECTED
        (failure,) = spool.status().failures
        assert failure.code == "invalid-archive"


def test_local_storage_writes_that_fail_on_a_full_disk_leave_no_temporary_files(tmp_path: Path) -> None:
    import hashlib

    import pytest

    from spoold.storage import StorageUnavailable
    from spoold.storage.local import LocalStorage

    with small_filesystem(tmp_path / "fs", size="1m") as fs:
        storage = LocalStorage(fs / "store")
        (fs / "store").mkdir()
        storage.put_file("packages/a/small.whl", b"a", hashlib.sha256(b"a").hexdigest())
        big = bytes(2 << 20)
        for attempt in range(5):
            with pytest.raises(StorageUnavailable, match="No space left"):
                storage.put_file(f"packages/a/big{attempt}.whl", big, hashlib.sha256(big).hexdigest())
        assert [p for p in (fs / "store").rglob("*") if p.name.endswith(".tmp")] == []
