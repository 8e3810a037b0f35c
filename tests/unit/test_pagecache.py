"""The in-memory page cache: expiry, invalidation, the read/publish race, its bound."""

from __future__ import annotations

from conftest import FakeClock

from spoold.http.pagecache import PageCache
from spoold.storage import Page


def page(text: str) -> Page:
    return Page(text.encode(), f'"{text}"')


def test_pages_expire_ttl_after_the_read_started():
    clock = FakeClock()
    cache = PageCache(1.0, clock)
    ticket = cache.ticket()
    clock.advance(0.4)  # the read took a while
    cache.put("simple/a/index.html", page("a1"), ticket)
    assert cache.get("simple/a/index.html") == page("a1")
    clock.advance(0.59)
    assert cache.get("simple/a/index.html") == page("a1")
    clock.advance(0.02)
    assert cache.get("simple/a/index.html") is None


def test_publish_invalidates_project_and_root_pages():
    cache = PageCache(10, FakeClock())
    for key in ["simple/a/index.html", "simple/a/index.v1.json", "simple/b/index.html",
                "simple/index.html", "simple/index.v1.json"]:
        cache.put(key, page(key), cache.ticket())
    cache.invalidate("a")
    assert cache.get("simple/a/index.html") is None and cache.get("simple/a/index.v1.json") is None
    assert cache.get("simple/index.html") is None and cache.get("simple/index.v1.json") is None
    assert cache.get("simple/b/index.html") == page("simple/b/index.html")


def test_a_read_that_raced_a_publish_is_not_remembered():
    cache = PageCache(10, FakeClock())
    ticket = cache.ticket()  # read of the old page starts
    cache.invalidate("a")  # this process publishes into a
    cache.put("simple/a/index.html", page("old"), ticket)  # the old page arrives
    assert cache.get("simple/a/index.html") is None
    cache.put("simple/a/index.html", page("new"), cache.ticket())
    assert cache.get("simple/a/index.html") == page("new")


def test_zero_ttl_caches_nothing():
    cache = PageCache(0, FakeClock())
    cache.put("simple/a/index.html", page("a"), cache.ticket())
    assert cache.get("simple/a/index.html") is None


def test_bounded_by_bytes_least_recently_used_first():
    cache = PageCache(10, FakeClock(), max_bytes=40)
    for name in "abcd":
        cache.put(name, page(name * 10), cache.ticket())
    cache.get("a")  # a is now the most recently used
    cache.put("e", page("e" * 10), cache.ticket())
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("e") is not None
    cache.put("huge", page("x" * 11), cache.ticket())  # over a quarter of the budget
    assert cache.get("huge") is None


def test_invalidate_file_finds_the_project_of_a_filename():
    cache = PageCache(10, FakeClock())
    cache.put("simple/demo-pkg/index.html", page("x"), cache.ticket())
    cache.put("simple/other/index.html", page("y"), cache.ticket())
    cache.invalidate_file("demo_pkg-1.0-py3-none-any.whl")
    assert cache.get("simple/demo-pkg/index.html") is None
    assert cache.get("simple/other/index.html") is not None
    cache.invalidate_file("not a distribution")  # still drops the root index, never raises
