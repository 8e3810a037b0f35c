"""An item's outcome read back from the spool, as an upload in another process reads it:
published, unchanged (already published with the same bytes), rejected, or not yet."""

from __future__ import annotations

import pytest
from testlib.clock import FakeClock

from spoold.spool import Result, Spool
from spoold.spool.names import ItemName
from spoold.storage.memory import MemoryStorage
from spoold.testing.dists import build_wheel
from spoold.worker.processing import process


def other_process(spool: Spool) -> Spool:
    """The same spool as a second process sees it: nothing shared but the folders."""
    return Spool(spool.root)


@pytest.mark.parametrize(("unchanged", "result"), [(False, Result.PUBLISHED), (True, Result.UNCHANGED)])
def test_finish_records_published_or_unchanged(spool: Spool, unchanged: bool, result: Result) -> None:
    item = spool.deliver_bytes(b"x", "demo-1.0.tar.gz")
    name = ItemName.parse(item)
    assert other_process(spool).outcome_of(name) is None  # still on its way
    claim = spool.claim(item)
    assert claim is not None and spool.finish(claim, unchanged=unchanged)
    outcome = other_process(spool).outcome_of(name)
    assert outcome is not None and outcome.result is result and outcome.ok
    assert outcome.filename == "demo-1.0.tar.gz"
    [entry] = [p.name for p in spool.done.iterdir()]
    # whatever the marker, the entry names the item's uid and filename for the watcher
    assert ItemName.parse(entry).uid == name.uid and ItemName.parse(entry).filename == "demo-1.0.tar.gz"


def test_an_identical_reupload_handled_elsewhere_reads_back_unchanged(spool: Spool) -> None:
    """The worker's decision, recorded by process() and read by another process's waiter."""
    storage = MemoryStorage()
    filename, data, _ = build_wheel("demo", "1.0")
    first = spool.deliver_bytes(data, filename)
    again = spool.deliver_bytes(data, filename)
    for item in (first, again):
        claim = spool.claim(item)
        assert claim is not None
        process(spool, storage, claim)
    reader = other_process(spool)
    assert reader.outcome_of(ItemName.parse(first)).result is Result.PUBLISHED  # type: ignore[union-attr]
    assert reader.outcome_of(ItemName.parse(again)).result is Result.UNCHANGED  # type: ignore[union-attr]


def test_unchanged_items_expire_like_published_ones(tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    spool = Spool.create(tmp_path / "spool", clock=clock)
    claim = spool.claim(spool.deliver_bytes(b"x", "demo-1.0.tar.gz"))
    assert claim is not None and spool.finish(claim, unchanged=True)
    clock.advance(spool.policy.done_retention + 1)
    assert spool.expire_done() == 1
