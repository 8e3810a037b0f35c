"""The per-item decision (spoold.worker.processing): whose fault decides where an item goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from spoold.errors import Transient
from spoold.spool import ItemMeta, Result, Spool
from spoold.spool.names import Owner, host_tag
from spoold.storage.memory import MemoryStorage
from spoold.testing.dists import build_wheel
from spoold.worker.processing import process, process_group


class BuggyStorage(MemoryStorage):
    """Storage with a bug in it: an exception that is nobody's fault but spoold's."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    def put_file(self, key: str, source: bytes | Path, sha256: str) -> bool:
        if self.broken:
            raise KeyError("a bug")
        return super().put_file(key, source, sha256)


def names(spool: Spool, folder: str) -> list[str]:
    return sorted(p.name for p in (spool.root / folder).iterdir())


@pytest.fixture
def wheel() -> tuple[str, bytes]:
    filename, data, _ = build_wheel("demo", "1.0")
    return filename, data


def test_published_item_goes_to_done(spool: Spool, wheel: tuple[str, bytes]) -> None:
    storage = MemoryStorage()
    claim = spool.claim(spool.deliver_bytes(wheel[1], wheel[0]))
    handled = process(spool, storage, claim)
    assert handled.outcome is not None and handled.outcome.result is Result.PUBLISHED
    assert len(names(spool, "done")) == 1 and names(spool, "cur") == []
    assert f"packages/demo/{wheel[0]}" in storage.keys()


def test_rejected_item_goes_to_failed_with_its_code(spool: Spool, wheel: tuple[str, bytes]) -> None:
    meta = ItemMeta(sha256_digest="0" * 64)
    claim = spool.claim(spool.deliver_bytes(wheel[1], wheel[0], meta))
    handled = process(spool, MemoryStorage(), claim)
    assert handled.outcome is not None and handled.outcome.result is Result.REJECTED
    assert handled.outcome.code == "digest-mismatch" and handled.outcome.http_status == 400
    (failure,) = spool.status().failures
    assert failure.code == "digest-mismatch"


def test_storage_outage_defers(spool: Spool, wheel: tuple[str, bytes]) -> None:
    storage = MemoryStorage()
    storage.down = "the bucket is unreachable"
    claim = spool.claim(spool.deliver_bytes(wheel[1], wheel[0]))
    handled = process(spool, storage, claim)
    assert handled.outcome is None and "unreachable" in handled.deferred_reason
    assert len(names(spool, "deferred")) == 1 and spool.status().failures == ()


def test_a_bug_is_not_the_items_fault(tmp_path: Path, wheel: tuple[str, bytes]) -> None:
    # A worker whose process is gone once it has hit the bug (a restart, after a fix).
    root = tmp_path / "spool"
    gone = Spool.create(root, owner=Owner(host_tag(), 2**22 + 7, 1))
    storage = BuggyStorage()
    claim = gone.claim(gone.deliver_bytes(wheel[1], wheel[0]))
    handled = process(gone, storage, claim)
    assert handled.outcome is not None and handled.outcome.result is Result.ERROR
    assert handled.outcome.http_status == 500 and not handled.outcome.ok
    assert "KeyError" in handled.traceback
    # Not failed: still claimed in cur/, for the reaper.
    assert names(gone, "failed") == [] and len(names(gone, "cur")) == 1
    # The fixed release starts: the reaper returns it, and it is published.
    fixed = Spool(root)
    assert fixed.reap() == (1, 0)
    storage.broken = False
    (entry,) = fixed.pending()
    handled = process(fixed, storage, fixed.claim(entry))
    assert handled.outcome is not None and handled.outcome.result is Result.PUBLISHED


def test_a_bug_that_keeps_ending_workers_is_set_aside(tmp_path: Path, wheel: tuple[str, bytes]) -> None:
    root = tmp_path / "spool"
    reaper = Spool.create(root)
    reaper.deliver_bytes(wheel[1], wheel[0])
    storage = BuggyStorage()
    for attempt in range(reaper.policy.max_attempts):
        dead = Spool(root, owner=Owner(reaper.owner.host, 2**22 + attempt, 1))
        (entry,) = dead.pending()
        assert process(dead, storage, dead.claim(entry)).outcome.result is Result.ERROR
        reaped, poisoned = reaper.reap()
        assert (reaped, poisoned) == ((1, 0) if attempt + 1 < reaper.policy.max_attempts else (0, 1))
    (failure,) = reaper.status().failures
    assert failure.code == "worker-crash"


def test_transient_inside_inspection_defers(spool: Spool, monkeypatch: pytest.MonkeyPatch,
                                            wheel: tuple[str, bytes]) -> None:
    import spoold.worker.processing as processing

    def unreadable(*args: object, **kwargs: object) -> None:
        raise Transient("the disk went away")

    monkeypatch.setattr(processing, "inspect_file", unreadable)
    claim = spool.claim(spool.deliver_bytes(wheel[1], wheel[0]))
    assert process(spool, MemoryStorage(), claim).outcome is None
    assert len(names(spool, "deferred")) == 1


def test_a_publish_that_cannot_be_recorded_is_retried_and_published_once(
    spool: Spool, wheel: tuple[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = MemoryStorage()
    claim = spool.claim(spool.deliver_bytes(wheel[1], wheel[0]))

    def cannot_finish(claim: object, **_: object) -> bool:
        raise OSError(30, "Read-only file system")

    with monkeypatch.context() as patch:
        patch.setattr(spool, "finish", cannot_finish)
        handled = process(spool, storage, claim)
    assert handled.outcome is None and "Read-only file system" in handled.deferred_reason
    assert len(names(spool, "deferred")) == 1 and names(spool, "cur") == []
    spool.clock = lambda: 4e9
    spool.promote_deferred()
    (entry,) = spool.pending()
    again = process(spool, storage, spool.claim(entry))
    assert again.outcome is not None and again.outcome.result is Result.UNCHANGED
    assert len(names(spool, "done")) == 1


@pytest.mark.parametrize(("meta", "kept"), [
    (ItemMeta(via="import", upload_time="2020-09-13T12:26:40.000000Z"), True),
    (ItemMeta(upload_time="2020-09-13T12:26:40+00:00"), True),
    (ItemMeta(via="upload", uploader="alice", upload_time="2020-09-13T12:26:40Z"), False),  # never believed
    (ItemMeta(via="import", upload_time="last tuesday"), False),
])
def test_the_trusted_spool_keeps_the_recorded_upload_time(spool: Spool, wheel: tuple[str, bytes],
                                                          meta: ItemMeta, kept: bool) -> None:
    from spoold.index.pages import parse_project_json

    storage = MemoryStorage()
    claim = spool.claim(spool.deliver_bytes(wheel[1], wheel[0], meta))
    assert process(spool, storage, claim, admins=frozenset({"alice"})).outcome.ok  # type: ignore[union-attr]
    (entry,) = parse_project_json(storage.read_bytes("simple/demo/index.v1.json") or b"").files
    assert (entry.upload_time.isoformat() == "2020-09-13T12:26:40+00:00") is kept


def test_a_group_publishes_each_project_once_and_answers_each_item(spool: Spool) -> None:
    storage = MemoryStorage()
    items = [spool.deliver_bytes(build_wheel(name, version)[1], build_wheel(name, version)[0])
             for name, version in (("demo", "1.0"), ("demo", "2.0"), ("other", "1.0"))]
    items.append(spool.deliver_bytes(b"not a zip", "demo-3.0-py3-none-any.whl"))
    claims = [spool.claim(item) for item in items]
    handled = process_group(spool, storage, [c for c in claims if c is not None])
    assert [h.outcome.result for h in handled if h.outcome is not None] == [
        Result.PUBLISHED, Result.PUBLISHED, Result.PUBLISHED, Result.REJECTED]
    assert len(names(spool, "done")) == 3 and names(spool, "cur") == []
    assert storage.generation_of("simple/demo/index.v1.json") == 2  # both files, then listed
