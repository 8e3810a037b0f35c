"""Descriptions rendered and sanitized, release views, the catalog and the search index."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from spoold.explorer.catalog import SHARDS, CatalogEntry, CatalogReader, set_entry, shard_of
from spoold.explorer.readme import MARKUP_LIMIT, content_type_of, render_description
from spoold.explorer.release import release_view, safe_url, shown_version
from spoold.explorer.search import SearchIndex, normalize_query
from spoold.storage import Storage
from spoold.storage.keys import catalog_key
from testlib.backends import make_storage
from testlib.explorerdists import HOSTILE_README, rich_metadata

# -- descriptions --------------------------------------------------------------------------


def test_markdown_rst_and_plain_are_rendered() -> None:
    md = render_description("# Title\n\nSome *emphasis* and `code`.\n", "text/markdown")
    assert "<h1" in md and "<em>emphasis</em>" in md and "<code>code</code>" in md
    rst = render_description("Title\n=====\n\nSome *emphasis*.\n", "text/x-rst; charset=UTF-8")
    assert "<em>emphasis</em>" in rst and "Title" in rst
    assert "<em>" in render_description("Some *emphasis*.\n", None)  # reST is the default
    plain = render_description("a < b\n*not emphasis*", "text/plain")
    assert plain.startswith('<pre class="plain">') and "&lt;" in plain and "<em>" not in plain
    # reST with errors falls back to text, as on PyPI
    broken = render_description("Title\n===\n\n.. raw:: html\n\n   <b>x</b>\n", "text/x-rst")
    assert broken.startswith('<pre class="plain">') and "<b>" not in broken
    assert render_description("", "text/markdown") == ""
    assert content_type_of("text/markdown; variant=CommonMark") == ("text/markdown", {"variant": "CommonMark"})


def test_a_hostile_readme_keeps_nothing_that_runs_or_loads() -> None:
    html = render_description(HOSTILE_README, "text/markdown")
    lowered = html.lower()
    for banned in ("<script", "onerror", "javascript:", "<iframe", "<form", "<input name",
                   "style=", "<img"):
        assert banned not in lowered, banned
    # the remote image became a link the reader may follow
    assert ('<a class="image-link" href="https://tracker.example/pixel.png" '
            'rel="nofollow noopener noreferrer">[image: tracker]</a>') in html
    assert "<table>" in html  # kept: the stylesheet makes it scroll, not the page


def test_an_image_in_rst_becomes_a_link() -> None:
    html = render_description(".. image:: https://x.example/a.png\n   :alt: a \"logo\"\n", "text/x-rst")
    assert "<img" not in html and 'href="https://x.example/a.png"' in html
    assert "[image: a &quot;logo&quot;]" in html


def test_a_huge_description_is_shown_as_text() -> None:
    html = render_description("*x* " * (MARKUP_LIMIT // 4 + 1), "text/markdown")
    assert html.startswith('<pre class="plain">') and "<em>" not in html


def test_release_view_from_metadata() -> None:
    view = release_view("demo", "1.0", "demo-1.0.tar.gz", rich_metadata("demo", "1.0"))
    assert view.summary == "A rich package" and "<h1" in view.description_html
    assert view.info["project_urls"]["Tracker"] == "javascript:alert(1)"
    assert safe_url(view.info["project_urls"]["Tracker"]) is None
    assert safe_url(" https://example.org/x ") == "https://example.org/x"
    empty = release_view("demo", "2.0", "demo-2.0.tar.gz", None)
    assert empty.summary is None and empty.info["version"] == "2.0"
    assert view.from_json(view.to_json()) == view


@pytest.mark.parametrize(("files", "shown"), [
    ([("1.0", False), ("2.0", False), ("3.0a1", False)], "2.0"),
    ([("1.0", False), ("2.0", True), ("3.0a1", False)], "1.0"),
    ([("1.0", True), ("3.0a1", False)], "3.0a1"),
    ([("1.0", True), ("2.0", True)], "2.0"),
    ([("2.0", True), ("2.0", False)], "2.0"),  # one file left: not a yanked release
    ([], None),
])
def test_shown_version(files: list[tuple[str, bool]], shown: str | None) -> None:
    assert shown_version(files) == shown


# -- the catalog -------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return make_storage(request.param, tmp_path)


def entry(project: str, summary: str = "", updated: str = "2024-01-01T00:00:00.000000Z") -> CatalogEntry:
    return CatalogEntry(project, project, summary, "1.0", updated)


def test_catalog_entries_are_set_and_read_back(storage: Storage) -> None:
    reader = CatalogReader(storage)
    reader.refresh()
    assert list(reader.entries()) == []
    assert set_entry(storage, "alpha", entry("alpha", "first")) is True
    assert set_entry(storage, "alpha", entry("alpha", "first")) is False  # unchanged: no write
    set_entry(storage, "beta", entry("beta"))
    assert reader.refresh() is True
    assert sorted(e.project for e in reader.entries()) == ["alpha", "beta"]
    assert reader.refresh() is False  # nothing changed: nothing re-read
    set_entry(storage, "alpha", None)
    assert reader.refresh() is True and [e.project for e in reader.entries()] == ["beta"]


def test_concurrent_writers_of_one_shard_lose_nothing(storage: Storage) -> None:
    names = [f"p{i}" for i in range(400)]
    same = [n for n in names if shard_of(n) == shard_of(names[0])][:8]
    threads = [threading.Thread(target=set_entry, args=(storage, n, entry(n))) for n in same]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reader = CatalogReader(storage)
    reader.refresh()
    assert sorted(e.project for e in reader.entries()) == sorted(same)
    assert storage.read_doc(catalog_key(shard_of(same[0]))) is not None
    assert 0 <= shard_of("x") < SHARDS


# -- search ---------------------------------------------------------------------------------------


@pytest.fixture
def index() -> SearchIndex:
    return SearchIndex([
        entry("requests", "HTTP for Humans", "2024-03-01T00:00:00Z"),
        entry("requests-oauthlib", "OAuthlib authentication support", "2024-01-01T00:00:00Z"),
        entry("types-requests", "Typing stubs for requests", "2024-05-01T00:00:00Z"),
        entry("httpx", "The next generation HTTP client", "2024-04-01T00:00:00Z"),
        entry("zope-interface", "Interfaces for Python", "2023-01-01T00:00:00Z"),
    ])


def names(results: object) -> list[str]:
    return [e.project for e in results.entries]  # type: ignore[attr-defined]


def test_search_orders_exact_prefix_contains_then_words(index: SearchIndex) -> None:
    assert names(index.search("Requests")) == ["requests", "requests-oauthlib", "types-requests"]
    assert names(index.search("http")) == ["httpx", "requests"]  # name prefix, then summary word
    assert names(index.search("http client")) == ["httpx"]  # every word must match
    assert names(index.search("zope.interface")) == ["zope-interface"]
    assert names(index.search("authent")) == ["requests-oauthlib"]
    assert names(index.search("")) == [] and names(index.search("nothing-like-it")) == []
    assert normalize_query("  Zope_Interface ") == "zope-interface"


def test_search_pages_and_visibility(index: SearchIndex) -> None:
    first = index.search("requests", page=1, size=2)
    assert first.total == 3 and first.pages == 2 and names(first) == ["requests", "requests-oauthlib"]
    assert names(index.search("requests", page=2, size=2)) == ["types-requests"]
    assert names(index.search("requests", page=99, size=2)) == ["types-requests"]
    only = index.search("requests", visible=lambda p: p == "types-requests")
    assert only.total == 1 and names(only) == ["types-requests"]
    assert [e.project for e in index.recent(2)] == ["types-requests", "httpx"]
    assert [e.project for e in index.recent(5, visible=lambda p: p.startswith("z"))] == ["zope-interface"]
    assert index.count() == 5 and index.count(lambda p: "requests" in p) == 3


def test_hostile_queries_are_plain_text(index: SearchIndex) -> None:
    for query in ("<script>", ".*", "\\", "(", "\x00", "a" * 10_000, "[]"):
        assert index.search(query).total >= 0
