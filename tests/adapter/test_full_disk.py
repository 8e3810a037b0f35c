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
