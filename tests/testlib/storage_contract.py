"""The storage contract: one suite that every backend passes.

Imported by ``tests/unit/test_storage.py`` (in-memory and local backends) and
``tests/adapter/test_storage_s3.py`` (S3 on moto's server); each defines the ``storage``
fixture for its backends. Backend-specific tests live in those modules.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from spoold.errors import FileExists
from spoold.storage import InvalidKey, Storage, StorageUnavailable
from spoold.storage.local import LocalStorage
from spoold.testing.dists import Pause
from testlib.backends import broken_handle, second_handle


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- immutable files --------------------------------------------------------------------------


def test_put_file_creates_then_noop_then_conflict(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "a.whl"
    source.write_bytes(b"one")
    assert storage.put_file("packages/a/a.whl", source, sha(b"one")) is True
    assert storage.put_file("packages/a/a.whl", b"one", sha(b"one")) is False
    with pytest.raises(FileExists, match="File already exists") as info:
        storage.put_file("packages/a/a.whl", b"two", sha(b"two"))
    assert info.value.http_status == 409
    assert storage.read_bytes("packages/a/a.whl") == b"one"


def test_put_file_concurrent_identical_writers(storage: Storage) -> None:
    """Many threads storing the same bytes: one creates, all succeed, none conflicts."""
    results: list[bool] = []
    errors: list[BaseException] = []

    def put() -> None:
        try:
            results.append(storage.put_file("packages/a/same.whl", b"same", sha(b"same")))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results.count(True) == 1 and len(results) == 8


def test_read_stat_list_delete(storage: Storage) -> None:
    assert storage.read_bytes("packages/a/missing") is None
    assert storage.stat("packages/a/missing") is None
    storage.put_file("packages/a/x.whl", b"xx", sha(b"xx"))
    storage.put_file("packages/a/x.whl.metadata", b"m", sha(b"m"))
    storage.put_file("packages/b/y.whl", b"y", sha(b"y"))
    stat = storage.stat("packages/a/x.whl")
    assert stat is not None and stat.size == 2 and stat.modified.tzinfo is not None
    assert [o.key for o in storage.list_files("packages/a/")] == [
        "packages/a/x.whl",
        "packages/a/x.whl.metadata",
    ]
    assert sorted(storage.list_dirs("packages/")) == ["a", "b"]
    with storage.open_read("packages/a/x.whl") as stream:
        assert stream.read() == b"xx"
    storage.delete("packages/a/x.whl")
    storage.delete("packages/a/x.whl")  # missing is fine
    assert storage.read_bytes("packages/a/x.whl") is None
    with pytest.raises(FileNotFoundError):
        storage.open_read("packages/a/x.whl").__enter__()


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/./b", "a/\x00"])
def test_unsafe_keys_refused(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidKey):
        storage.put_file(key, b"x", sha(b"x"))


# -- documents ------------------------------------------------------------------------------


def test_swap_doc_is_compare_and_swap(storage: Storage) -> None:
    key = "simple/p/index.v1.json"
    assert storage.read_doc(key) is None
    assert storage.swap_doc(key, b"gen1", 1, None) is True
    assert storage.swap_doc(key, b"other gen1", 1, None) is False  # lost the create
    first = storage.read_doc(key)
    assert first is not None and first.data == b"gen1"
    assert storage.swap_doc(key, b"gen2", 2, first) is True
    assert storage.swap_doc(key, b"stale gen2", 2, first) is False  # based on gen1: lost
    now = storage.read_doc(key)
    assert now is not None and now.data == b"gen2"
    assert storage.read_bytes(key) == b"gen2"  # the visible copy follows
    assert storage.generation_of(key) == 2


def test_swap_doc_one_winner_among_threads(storage: Storage) -> None:
    key = "simple/p/index.v1.json"
    storage.swap_doc(key, b"base", 1, None)
    base = storage.read_doc(key)
    wins: list[int] = []
    barrier = threading.Barrier(6)

    def attempt(i: int) -> None:
        handle = second_handle(storage)
        barrier.wait()
        if handle.swap_doc(key, f"writer {i}".encode(), 2, base):
            wins.append(i)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert storage.read_bytes(key) == f"writer {wins[0]}".encode()


def test_many_generations_are_pruned_and_still_readable(storage: Storage) -> None:
    key = "simple/p/index.v1.json"
    doc = None
    for gen in range(1, 80):
        assert storage.swap_doc(key, f"g{gen}".encode(), gen, doc)
        doc = storage.read_doc(key)
    assert doc is not None and doc.data == b"g79"
    if isinstance(storage, LocalStorage):
        history = storage.root / ".spoold/generations" / key
        assert len(list(history.iterdir())) <= 32


def test_local_stale_slot_after_pruning_is_lost(tmp_path: Path) -> None:
    """A writer so slow that its generation was pruned must not win with it."""
    storage = LocalStorage(tmp_path)
    key = "simple/p/index.v1.json"
    doc = None
    for gen in range(1, 60):
        storage.swap_doc(key, f"g{gen}".encode(), gen, doc)
        doc = storage.read_doc(key)
    assert not (storage.root / ".spoold/generations" / key / f"{2:020d}").exists()
    assert storage.swap_doc(key, b"ancient", 2, None) is False
    assert storage.read_bytes(key) == b"g59"
    assert storage.read_doc(key).data == b"g59"  # type: ignore[union-attr]


def test_local_writers_that_built_on_a_swap_do_not_make_it_lost(tmp_path: Path) -> None:
    """Between our link and our check, others may already have built on our generation:
    that is a win (reporting it lost would make publish say 'unchanged')."""
    storage = LocalStorage(tmp_path)
    key = "simple/p/index.v1.json"
    storage.swap_doc(key, b"g1", 1, None)
    other = LocalStorage(tmp_path)
    # Simulate: after we link g2, two other writers add g3 and g4 before our check.
    original = storage._link_generation

    def link_then_others(k: str, data: bytes, generation: int) -> bool:
        won = original(k, data, generation)
        if won and generation == 2:
            other.swap_doc(k, b"g3", 3, other.read_doc(k))
            other.swap_doc(k, b"g4", 4, other.read_doc(k))
        return won

    storage._link_generation = link_then_others  # type: ignore[method-assign]
    assert storage.swap_doc(key, b"g2", 2, storage.read_doc(key)) is True
    assert storage.read_bytes(key) == b"g4"


# -- pages ------------------------------------------------------------------------------------


def test_put_page_only_moves_forward(storage: Storage) -> None:
    key = "simple/p/index.html"
    assert storage.put_page(key, b"five", 5) is True
    assert storage.put_page(key, b"seven", 7) is True
    assert storage.put_page(key, b"six", 6) is False
    assert storage.put_page(key, b"seven", 7) is False
    assert storage.read_bytes(key) == b"seven"
    assert storage.generation_of(key) == 7


def test_stale_page_writer_paused_after_its_check(storage: Storage) -> None:
    """A writer that checked while the page was old and writes after a newer one landed
    ends with the newer page (S3: its IfMatch fails; local: it repairs before returning)."""
    key = "simple/p/index.html"
    storage.put_page(key, b"five", 5)
    slow = second_handle(storage)
    pause = Pause("page-checked", key)
    slow.checkpoint = pause
    thread = threading.Thread(target=slow.put_page, args=(key, b"six", 6))
    thread.start()
    assert pause.reached.wait(10)
    assert storage.put_page(key, b"seven", 7) is True
    pause.release()
    thread.join()
    assert storage.read_bytes(key) == b"seven"
    assert storage.generation_of(key) == 7


def test_read_page_etag_changes_with_content(storage: Storage) -> None:
    key = "simple/p/index.html"
    assert storage.read_page(key) is None
    storage.put_page(key, b"one", 1)
    first = storage.read_page(key)
    assert first is not None and first.data == b"one" and first.etag.startswith('"')
    assert storage.read_page(key) == first
    storage.put_page(key, b"two", 2)
    second = storage.read_page(key)
    assert second is not None and second.etag != first.etag


def test_ping(storage: Storage) -> None:
    assert storage.ping() is None  # reachable: no error
    with pytest.raises(StorageUnavailable):
        broken_handle(storage).ping()
