"""The in-memory page cache: expiry, invalidation, the read/publish race, its bound."""

from __future__ import annotations

from conftest import FakeClock

from spoold.http.pagecache import COMPRESS_BELOW, ENTRY_OVERHEAD, PageCache
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
    size = COMPRESS_BELOW  # kept as they are: each entry costs exactly this much more
    cost = 2 + len('"a"') + size + ENTRY_OVERHEAD
    cache = PageCache(10, FakeClock(), max_bytes=4 * cost)
    for name in "abcd":
        cache.put(name, Page(name.encode() * size, f'"{name}"'), cache.ticket())
    assert cache.held_bytes == 4 * cost
    cache.get("a")  # a is now the most recently used
    cache.put("e", Page(b"e" * size, '"e"'), cache.ticket())
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("e") is not None
    cache.put("huge", Page(b"x" * (size + 1), '"x"'), cache.ticket())  # over a quarter of the budget
    assert cache.get("huge") is None


def test_invalidate_file_finds_the_project_of_a_filename():
    cache = PageCache(10, FakeClock())
    cache.put("simple/demo-pkg/index.html", page("x"), cache.ticket())
    cache.put("simple/other/index.html", page("y"), cache.ticket())
    cache.invalidate_file("demo_pkg-1.0-py3-none-any.whl")
    assert cache.get("simple/demo-pkg/index.html") is None
    assert cache.get("simple/other/index.html") is not None
    cache.invalidate_file("not a distribution")  # still drops the root index, never raises


def test_lasting_pages_stay_until_their_file_changes():
    """A page read after a watch on its folder was in place never expires; a change the
    watch reports drops it, and a read that started before that change is not kept."""
    clock = FakeClock()
    cache = PageCache(1.0, clock)
    cache.put("simple/a/index.html", page("a1"), cache.ticket(), lasting=True)
    cache.put("simple/b/index.html", page("b1"), cache.ticket())
    clock.advance(3600)
    assert cache.get("simple/a/index.html") == page("a1")
    assert cache.get("simple/b/index.html") is None  # not watched: ttl as before
    ticket = cache.ticket()  # a read of a's new page starts...
    cache.changed(["simple/a/index.html"])  # ...and the file changes again meanwhile
    assert cache.get("simple/a/index.html") is None
    cache.put("simple/a/index.html", page("a2"), ticket, lasting=True)
    assert cache.get("simple/a/index.html") is None
    cache.put("simple/a/index.html", page("a3"), cache.ticket(), lasting=True)
    assert cache.get("simple/a/index.html") == page("a3")


def test_lasting_pages_are_kept_even_with_a_zero_ttl():
    cache = PageCache(0, FakeClock())
    cache.put("simple/a/index.html", page("a"), cache.ticket(), lasting=True)
    assert cache.get("simple/a/index.html") == page("a")


def test_losing_track_forgets_pages_and_reads_under_way():
    cache = PageCache(10, FakeClock())
    cache.put("simple/a/index.html", page("a"), cache.ticket(), lasting=True)
    under_way = cache.ticket()
    cache.forget_reads()  # a watch cannot tell which folder an event was about
    assert cache.get("simple/a/index.html") == page("a")
    cache.put("simple/b/index.html", page("b"), under_way, lasting=True)
    assert cache.get("simple/b/index.html") is None
    under_way = cache.ticket()
    cache.forget_all()  # the event queue overflowed
    assert len(cache) == 0 and cache.held_bytes == 0
    cache.put("simple/c/index.html", page("c"), under_way)
    assert cache.get("simple/c/index.html") is None
    cache.put("simple/c/index.html", page("c"), cache.ticket())
    assert cache.get("simple/c/index.html") == page("c")


def test_similar_pages_are_held_compressed_and_come_back_whole():
    cache = PageCache(10, FakeClock())
    pages = {}
    for i in range(200):
        name = f"project-{i:04d}"
        data = (f'<!DOCTYPE html><html><head><title>Links for {name}</title></head><body>'
                + "".join(f'<a href="../../packages/{name}/{name}-{v}.tar.gz#sha256={i * v:064x}">'
                          f'{name}-{v}.tar.gz</a><br />' for v in range(5)) + "</body></html>").encode()
        pages[f"simple/{name}/index.html"] = Page(data, f'"{i:032x}"')
    for key, p in pages.items():
        cache.put(key, p, cache.ticket())
    raw = sum(len(p.data) for p in pages.values())
    assert cache.held_bytes - len(pages) * ENTRY_OVERHEAD < raw / 4
    assert all(cache.get(key) == p for key, p in pages.items())
    big = Page(b"x" * COMPRESS_BELOW, '"big"')  # kept as it is
    cache.put("simple/index.html", big, cache.ticket())
    assert cache.get("simple/index.html") == big


def test_hits_and_misses_are_counted():
    cache = PageCache(10, FakeClock())
    cache.put("simple/a/index.html", page("a"), cache.ticket())
    cache.get("simple/a/index.html")
    cache.get("simple/b/index.html")
    cache.get("simple/b/index.html", count_miss=False)
    assert (cache.hits, cache.misses) == (1, 1)


def test_etags_come_back_exactly():
    cache = PageCache(10, FakeClock())
    for i, etag in enumerate(['"' + "0123456789abcdef" * 2 + '"', '"ABC"', 'W/"x"', '"' + "f" * 32 + '"']):
        cache.put(f"simple/p{i}/index.html", Page(b"<html></html>", etag), cache.ticket())
        assert cache.get(f"simple/p{i}/index.html") == Page(b"<html></html>", etag)
