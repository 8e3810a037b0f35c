"""Batched durability on local storage (spoold.storage.barrier): what a batch defers, the
barrier that ends it, and how a second pass repairs what a crash inside a batch tore."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from spoold.errors import FileExists
from spoold.index import publish
from spoold.index.rootwriter import root_writer
from spoold.spool import Result, Spool
from spoold.storage import barrier
from spoold.storage.barrier import Batching
from spoold.storage.keys import ROOT_HTML, ROOT_JSON, project_html_key
from spoold.storage.local import HISTORY, LocalStorage
from spoold.testing.dists import make_distribution
from spoold.worker.processing import process



def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Counted:
    """Counts os.fsync calls and syncfs barriers while installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fsyncs = 0
        real = os.fsync

        def fsync(fd: int) -> None:
            self.fsyncs += 1
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)


def test_a_batch_defers_derived_writes_to_one_barrier(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path)
    counted = Counted(monkeypatch)
    storage.put_page("simple/a/index.html", b"one", 1)
    unbatched = counted.fsyncs
    assert unbatched >= 3  # the slot's bytes, its folder, the visible file's folder
    counted.fsyncs = 0
    with storage.batch():
        storage.put_page("simple/a/index.html", b"two", 2)
        with storage.batch():  # nested: joins the outer one
            storage.put_page("simple/b/index.html", b"b", 1)
        assert counted.fsyncs == 0 and storage._batching.barriers == 0
        # a compare-and-swap document keeps the fsync of its bytes (not of its folder)
        assert storage.swap_doc("simple/a/index.v1.json", b"{}", 1, None)
        assert counted.fsyncs == 1
    assert storage._batching.barriers == 1
    assert (tmp_path / "simple/a/index.html").read_bytes() == b"two"


def test_a_batch_that_raised_still_ends_with_its_barrier(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(KeyError), storage.batch():
        storage.put_page("simple/a/index.html", b"one", 1)
        raise KeyError("a bug")
    assert storage._batching.barriers == 1


def test_a_barrier_waits_for_a_syncfs_that_started_after_it(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread arriving while a syncfs runs does not take that one as its own."""
    batching = Batching(tmp_path)
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []
    real = barrier._SYNCFS

    def syncfs(fd: int) -> int:
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            started.set()
            release.wait(10)
        return real(fd)  # type: ignore[operator,no-any-return]

    monkeypatch.setattr(barrier, "_SYNCFS", syncfs)
    first = threading.Thread(target=batching.sync, name="first")
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=batching.sync, name="second")
    second.start()
    release.set()
    first.join(10)
    second.join(10)
    assert calls == ["first", "second"] or calls == ["first", "first"]
    assert batching.barriers == 2


def test_a_failed_barrier_fails_every_later_one(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    batching = Batching(tmp_path)
    monkeypatch.setattr(barrier, "_SYNCFS", lambda fd: -1)
    with pytest.raises(OSError, match="syncfs"):
        batching.sync()
    monkeypatch.setattr(barrier, "_SYNCFS", lambda fd: 0)
    with pytest.raises(OSError, match="restart"):
        batching.sync()


def tear(path: Path) -> None:
    """What a crash does to a file written without fsync: its name survives, its bytes
    do not (ext4's delayed allocation). Visible file and slot are one inode."""
    os.truncate(path, 0)


def test_a_page_torn_by_a_crash_is_repaired_by_the_next_writer_of_its_generation(
        tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    key = "simple/a/index.html"
    with storage.batch():
        storage.put_page(key, b"page 7", 7)
    tear(tmp_path / key)
    assert (tmp_path / HISTORY / key / f"{7:020d}").read_bytes() == b""
    storage.put_page(key, b"page 7", 7)
    assert (tmp_path / key).read_bytes() == b"page 7"


def test_an_item_reaped_after_a_crash_repairs_its_pages_and_root(tmp_path: Path,
                                                                 spool: Spool) -> None:
    storage = LocalStorage(tmp_path / "store")
    dist, path = make_distribution("torn", "1.0", tmp_path)
    claim = spool.claim(spool.deliver_bytes(path.read_bytes(), dist.filename))
    assert claim is not None
    # The first pass publishes, then the machine stops before the item leaves cur/.
    with storage.batch():
        publish(storage, dist, path)
    for key in (ROOT_HTML, project_html_key("torn")):
        tear(storage.root / key)
    # The reaper gives it back as an attempt; the second pass finds it published.
    retry = str(claim.name.released(attempts=1))
    os.rename(claim.path, spool.new / retry)
    again = spool.claim(retry)
    assert again is not None and again.name.attempts == 1
    handled = process(spool, storage, again)
    assert handled.outcome is not None and handled.outcome.result is Result.UNCHANGED
    assert b"torn" in (storage.root / ROOT_HTML).read_bytes()
    assert b"torn-1.0" in (storage.root / project_html_key("torn")).read_bytes()
    assert b'"torn"' in (storage.root / ROOT_JSON).read_bytes()


def test_a_root_listing_outside_a_batch_still_ends_durable(tmp_path: Path) -> None:
    """The root writer writes for every waiting thread; a caller outside a batch may be
    answered by a writer that deferred its fsyncs, so its call ends with a barrier."""
    storage = LocalStorage(tmp_path)
    root_writer(storage).list({"alpha": "Alpha"})
    assert storage._batching.barriers == 1
    assert b"Alpha" in (tmp_path / ROOT_HTML).read_bytes()
    with storage.batch():
        root_writer(storage).list({"beta": "Beta"})
        assert storage._batching.barriers == 1  # inside a batch: the batch's barrier
    assert storage._batching.barriers == 2


def test_staged_files_get_their_names_only_after_a_barrier(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path)
    counted = Counted(monkeypatch)
    other = LocalStorage(tmp_path)  # another process storing the second name meanwhile
    with storage.batch():
        first = storage.stage_file("packages/a/a.whl", b"a", sha(b"a"))
        second = storage.stage_file("packages/a/b.whl", b"b", sha(b"b"))
        assert not (tmp_path / "packages/a/a.whl").exists() and counted.fsyncs == 0
        other.put_file("packages/a/b.whl", b"B", sha(b"B"))
        before = storage._batching.barriers
        results = storage.settle_files([first, second])
        assert storage._batching.barriers == before + 1
    assert results[0] is True and isinstance(results[1], FileExists)
    assert (tmp_path / "packages/a/a.whl").read_bytes() == b"a"
    assert (tmp_path / "packages/a/b.whl").read_bytes() == b"B"
    assert sorted(p.name for p in (tmp_path / "packages/a").iterdir()) == ["a.whl", "b.whl"]  # no
    # temporaries left


def test_an_item_whose_barrier_failed_is_deferred_not_finished(tmp_path: Path, spool: Spool,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    storage = LocalStorage(tmp_path / "store")
    dist, path = make_distribution("unsynced", "1.0", tmp_path)
    claim = spool.claim(spool.deliver_bytes(path.read_bytes(), dist.filename))
    assert claim is not None
    monkeypatch.setattr(barrier, "_SYNCFS", lambda fd: -1)
    handled = process(spool, storage, claim)
    assert handled.outcome is None and "syncfs" in handled.deferred_reason
    assert os.listdir(spool.done) == [] and len(os.listdir(spool.deferred)) == 1
