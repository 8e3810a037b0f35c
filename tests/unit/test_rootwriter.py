"""The root writer: new projects listed in batches, from a kept rendering, never lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from spoold.index.documents import update_root
from spoold.index.manifest import RootIndex, canonical_name
from spoold.index.pages import parse_root_json, render_root_html, render_root_json
from spoold.index.rootwriter import RootWriter, _Rendered, root_writer
from spoold.storage import Storage, StorageUnavailable
from spoold.storage.keys import ROOT_HTML, ROOT_JSON
from spoold.storage.local import LocalStorage
from spoold.storage.memory import MemoryStorage
from testlib.pages import parse_html_page


@pytest.fixture(params=["memory", "local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "memory":
        return MemoryStorage()
    return LocalStorage(tmp_path, fsync=False)


def both_formats(storage: Storage) -> tuple[set[str], set[str]]:
    """The projects of the JSON root and of the HTML root, which must be the same bytes a
    fresh rendering of the JSON gives."""
    data, html = storage.read_bytes(ROOT_JSON), storage.read_bytes(ROOT_HTML)
    assert data is not None and html is not None
    root = parse_root_json(data)
    assert render_root_json(root) == data
    assert render_root_html(root) == html
    return {e.project for e in root.projects}, {a.attrs["href"].rstrip("/") for a in parse_html_page(html).links}


def spin_until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the other threads never got there"
        time.sleep(0)


def test_lists_projects_in_both_formats_sorted(storage: Storage) -> None:
    writer = RootWriter(storage)
    writer.list({"zeta": "Zeta"})
    writer.list({"alpha": "Alpha", "mid-dle": "Mid_Dle"})
    writer.list({"alpha": "Alpha"})  # listed already: nothing written
    assert writer.writes == 2
    json_projects, html_projects = both_formats(storage)
    assert json_projects == html_projects == {"alpha", "mid-dle", "zeta"}
    root = parse_root_json(storage.read_bytes(ROOT_JSON) or b"")
    assert [e.name for e in root.projects] == ["Alpha", "Mid_Dle", "Zeta"]
    assert storage.generation_of(ROOT_HTML) == root.generation == 2


def test_waiting_publishes_are_listed_in_one_write(storage: Storage) -> None:
    """While one write is under way, everyone arriving waits and goes into the next one."""
    writer = RootWriter(storage)
    release = threading.Event()
    first = True

    def hold(event: str, key: str) -> None:
        nonlocal first
        if event == "doc-read" and key == ROOT_JSON and first:
            first = False
            release.wait(10)

    storage.checkpoint = hold
    threads = [threading.Thread(target=writer.list, args=({f"p{i}": f"P{i}"},)) for i in range(9)]
    threads[0].start()
    spin_until(lambda: writer._writing)
    for t in threads[1:]:
        t.start()
    spin_until(lambda: len(writer._waiting) == 8)
    release.set()
    for t in threads:
        t.join(10)
    assert writer.writes == 2  # the first project alone, then the eight that waited
    assert both_formats(storage)[0] == {f"p{i}" for i in range(9)}


def test_another_client_writing_in_between_loses_nothing(storage: Storage) -> None:
    """A lost compare-and-swap re-reads, merges and retries; the kept rendering is
    dropped when someone else wrote the root."""
    other = storage.another_client() if isinstance(storage, MemoryStorage) else LocalStorage(
        storage.root, fsync=False)  # type: ignore[attr-defined]
    mine, theirs = RootWriter(storage), RootWriter(other)
    mine.list({"old": "Old"})
    interfered = False

    def interleave(event: str, key: str) -> None:
        nonlocal interfered
        if event == "doc-read" and key == ROOT_JSON and not interfered:
            interfered = True
            theirs.list({"theirs": "Theirs"})

    storage.checkpoint = interleave
    mine.list({"mine": "Mine"})
    assert mine.lost == 1
    assert both_formats(storage)[0] == {"old", "mine", "theirs"}
    # A root written by other code (reindex, check --repair) is read again, not overwritten.
    update_root(storage, lambda root: (root or RootIndex()).with_project("reindexed", "Reindexed"))
    mine.list({"later": "Later"})
    assert both_formats(storage)[0] == {"old", "mine", "theirs", "reindexed", "later"}


def test_the_kept_rendering_spares_reading_the_root(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = RootWriter(storage)
    writer.list({"a": "A"})
    parsed = []
    real = _Rendered.parse
    monkeypatch.setattr(_Rendered, "parse", classmethod(lambda cls, doc: parsed.append(1) or real(doc)))
    for i in range(5):
        writer.list({f"b{i}": f"B{i}"})
    assert parsed == []
    assert both_formats(storage)[0] == {"a", *(f"b{i}" for i in range(5))}


def test_a_failed_write_fails_its_whole_batch_and_the_next_one_recovers() -> None:
    storage = MemoryStorage()
    writer = root_writer(storage)
    assert root_writer(storage) is writer
    storage.down = "the storage is down"
    with pytest.raises(StorageUnavailable):
        writer.list({"a": "A"})
    storage.down = None
    writer.list({"a": "A"})
    assert both_formats(storage)[0] == {"a"}


def test_a_page_left_behind_is_repaired_by_the_next_listing(tmp_path: Path) -> None:
    """A writer that died between the swap and the HTML page: the next listing of any
    project (even one listed already) brings the page up to the document."""
    storage = LocalStorage(tmp_path, fsync=False)
    RootWriter(storage).list({"a": "A"})
    root = parse_root_json(storage.read_bytes(ROOT_JSON) or b"").with_project("b", "B")
    doc = storage.read_doc(ROOT_JSON)
    assert storage.swap_doc(ROOT_JSON, render_root_json(root.with_generation(root.generation + 1)),
                            root.generation + 1, doc)
    RootWriter(storage).list({"a": "A"})
    assert both_formats(storage) == ({"a", "b"}, {"a", "b"})


def test_names_that_need_escaping_render_as_before() -> None:
    storage = MemoryStorage()
    odd = 'O"d<d>&\u00e9'
    RootWriter(storage).list({canonical_name(odd): odd, "plain": "Plain"})
    json_projects, html_projects = both_formats(storage)
    assert json_projects == {canonical_name(odd), "plain"}
    assert html_projects == {quote(canonical_name(odd), safe=""), "plain"}
