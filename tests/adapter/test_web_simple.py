"""GET /simple/...: stored pages, PEP 691 negotiation, redirects, ETags."""

from __future__ import annotations

from pathlib import Path

import pytest
from testlib.web_harness import make_site
from twisted.internet.testing import MemoryReactorClock

from spoold.http.negotiation import HTML_V1, JSON_V1
from spoold.spool.queue import Spool
from spoold.testing import MemoryStorage, request

ROOT_HTML = b"<!DOCTYPE html><html><body><a href=\"foo-bar/\">Foo_Bar</a></body></html>\n"
ROOT_JSON = b'{"meta":{"api-version":"1.1"},"projects":[{"name":"Foo_Bar"}]}\n'
PAGE_HTML = b"<!DOCTYPE html><html><body>links for foo-bar</body></html>\n"
PAGE_JSON = b'{"meta":{"api-version":"1.1"},"name":"foo-bar","files":[]}\n'
PIP = f"{JSON_V1}, {HTML_V1}; q=0.1, text/html; q=0.01"


@pytest.fixture
def storage() -> MemoryStorage:
    s = MemoryStorage()
    for key, page in {
        "simple/index.html": ROOT_HTML,
        "simple/index.v1.json": ROOT_JSON,
        "simple/foo-bar/index.html": PAGE_HTML,
        "simple/foo-bar/index.v1.json": PAGE_JSON,
    }.items():
        s.put_page(key, page, 1)
    return s


@pytest.fixture
def site(tmp_path: Path, spool: Spool, storage: MemoryStorage):  # type: ignore[no-untyped-def]
    return make_site(tmp_path, spool, storage=storage)


@pytest.mark.parametrize(
    ("path", "accept", "body", "content_type"),
    [
        ("/simple/", None, ROOT_HTML, "text/html; charset=utf-8"),
        ("/simple/", PIP, ROOT_JSON, JSON_V1),
        ("/simple/", HTML_V1, ROOT_HTML, HTML_V1),
        ("/simple/foo-bar/", None, PAGE_HTML, "text/html; charset=utf-8"),
        ("/simple/foo-bar/", "*/*", PAGE_HTML, "text/html; charset=utf-8"),
        ("/simple/foo-bar/", PIP, PAGE_JSON, JSON_V1),
        ("/simple/foo-bar/", "application/vnd.pypi.simple.latest+json", PAGE_JSON, JSON_V1),
        ("/simple/foo-bar/?format=application/vnd.pypi.simple.v1%2Bjson", "text/html", PAGE_JSON, JSON_V1),
        ("/simple/foo-bar/?format=application/vnd.pypi.simple.v1+json", None, PAGE_JSON, JSON_V1),
        ("/simple/foo-bar/?format=text/html", PIP, PAGE_HTML, "text/html; charset=utf-8"),
    ],
)
def test_pages(site, path: str, accept: str | None, body: bytes, content_type: str) -> None:  # type: ignore[no-untyped-def]
    headers = {"Accept": accept} if accept else {}
    r = request(site, "GET", path, headers)
    assert r.status == 200
    assert r.body == body
    assert r.header("content-type") == content_type
    assert r.header("vary") == "Accept"
    assert r.header("content-length") == str(len(body))
    assert r.header("etag", ) and r.header("etag").startswith('"')  # type: ignore[union-attr]
    assert r.header("cache-control")


def test_html_and_json_have_different_etags(site) -> None:  # type: ignore[no-untyped-def]
    html = request(site, "GET", "/simple/foo-bar/")
    json = request(site, "GET", "/simple/foo-bar/", {"Accept": JSON_V1})
    assert html.header("etag") != json.header("etag")


def test_if_none_match(site) -> None:  # type: ignore[no-untyped-def]
    etag = request(site, "GET", "/simple/foo-bar/", {"Accept": JSON_V1}).header("etag")
    for value in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        r = request(site, "GET", "/simple/foo-bar/", {"Accept": JSON_V1, "If-None-Match": value})
        assert r.status == 304, value
        assert r.body == b""
        assert r.header("etag") == etag and r.header("vary") == "Accept"
    # the other representation does not match
    r = request(site, "GET", "/simple/foo-bar/", {"If-None-Match": etag})
    assert r.status == 200 and r.body == PAGE_HTML


def test_head(site) -> None:  # type: ignore[no-untyped-def]
    r = request(site, "HEAD", "/simple/foo-bar/", {"Accept": JSON_V1})
    assert r.status == 200 and r.body == b""
    assert r.header("content-length") == str(len(PAGE_JSON))


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/simple", "simple/"),
        ("/simple/Foo_Bar/", "../foo-bar/"),
        ("/simple/FOO.bar/", "../foo-bar/"),
        ("/simple/foo-bar", "foo-bar/"),
        ("/simple/Foo__Bar", "foo-bar/"),
        ("/simple/Foo_Bar/?format=application/vnd.pypi.simple.v1%2Bjson", "../foo-bar/?format=application/vnd.pypi.simple.v1%2Bjson"),
    ],
)
def test_redirects_to_the_normalized_url(site, path: str, location: str) -> None:  # type: ignore[no-untyped-def]
    r = request(site, "GET", path, {"Accept": JSON_V1})
    assert r.status == 301
    assert r.header("location") == location
    assert r.header("vary") == "Accept"


@pytest.mark.parametrize(
    "path",
    [
        "/simple/unknown/",
        "/simple/-bad-/",
        "/simple/%3Cscript%3Ealert(1)%3C%2Fscript%3E/",
        "/simple/a%2Fb/",
        "/simple/%FF/",
        "/simple/foo-bar/index.html",
        "/simple/foo-bar/x/",
        "/simple/..%2F..%2Fetc/",
        "/simple/" + "a" * 300 + "/",
    ],
)
def test_not_found(site, path: str) -> None:  # type: ignore[no-untyped-def]
    r = request(site, "GET", path)
    assert r.status == 404
    assert r.header("content-type") == "text/plain; charset=utf-8"
    assert b"<script>" not in r.body or r.header("x-content-type-options") == "nosniff"


def test_only_normalized_keys_are_read(site, storage: MemoryStorage) -> None:  # type: ignore[no-untyped-def]
    request(site, "GET", "/simple/foo-bar/")
    request(site, "GET", "/simple/%3Cx%3E/")
    request(site, "GET", "/simple/a%2Fb/")
    assert storage.reads == ["simple/foo-bar/index.html"]


def test_not_acceptable(site) -> None:  # type: ignore[no-untyped-def]
    r = request(site, "GET", "/simple/foo-bar/", {"Accept": "application/json"})
    assert r.status == 406
    assert JSON_V1 in r.text and r.header("vary") == "Accept"
    r = request(site, "GET", "/simple/foo-bar/?format=json")
    assert r.status == 406


def test_empty_index_before_the_first_upload(tmp_path: Path, spool: Spool) -> None:
    site = make_site(tmp_path, spool, storage=MemoryStorage())
    r = request(site, "GET", "/simple/")
    assert r.status == 200 and b"Simple index" in r.body
    r = request(site, "GET", "/simple/", {"Accept": JSON_V1})
    assert r.status == 200 and b'"projects":[]' in r.body
    assert request(site, "GET", "/simple/foo/").status == 404


def test_storage_down_is_503(site, storage: MemoryStorage) -> None:  # type: ignore[no-untyped-def]
    storage.down = "the bucket is unreachable"
    r = request(site, "GET", "/simple/foo-bar/")
    assert r.status == 503
    assert "unreachable" in r.text and r.header("retry-after")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_wrong_methods(site, method: str) -> None:  # type: ignore[no-untyped-def]
    r = request(site, method, "/simple/foo-bar/")
    assert r.status == 405
    assert r.header("allow") == "GET, HEAD"


def test_site_serves_hot_pages_without_a_storage_read(tmp_path: Path, spool: Spool) -> None:
    storage = MemoryStorage()
    storage.put_page("simple/demo/index.html", b"<html>v1</html>", 1)
    reactor = MemoryReactorClock()
    site = make_site(tmp_path, spool, storage=storage, reactor=reactor)
    assert request(site, "GET", "/simple/demo/").body == b"<html>v1</html>"
    assert request(site, "GET", "/simple/demo/").body == b"<html>v1</html>"
    assert storage.reads == ["simple/demo/index.html"]
    storage.put_page("simple/demo/index.html", b"<html>v2</html>", 2)
    site.page_cache.invalidate("demo")  # what the worker does after publishing into demo
    assert request(site, "GET", "/simple/demo/").body == b"<html>v2</html>"
    storage.put_page("simple/demo/index.html", b"<html>v3</html>", 3)  # yank, or another host
    assert request(site, "GET", "/simple/demo/").body == b"<html>v2</html>"
    reactor.advance(site.page_cache.ttl)
    assert request(site, "GET", "/simple/demo/").body == b"<html>v3</html>"
    assert len(storage.reads) == 3


def test_page_reads_share_trips_to_the_thread_pool() -> None:
    """While the allowed trips are under way, reads wait and all go in the next one; an
    error reading one page is that page's answer alone."""
    from spoold.storage import Page
    from spoold.testing import ManualRun
    from spoold.web.batched_reads import BatchedReads

    pages = {"a": Page(b"A", '"a"'), "b": Page(b"B", '"b"')}

    def read_page(key: str) -> Page | None:
        if key == "bad":
            raise OSError("disk on fire")
        return pages.get(key)

    run = ManualRun()
    reads = BatchedReads(read_page, run, in_flight=1)
    got: list[object] = []
    first = reads.read("a")
    rest = [reads.read(k) for k in ("b", "missing", "bad")]
    for d in (first, *rest):
        d.addCallbacks(got.append, lambda f: got.append(f.value))
    assert len(run) == 1  # one trip under way; the other three wait for the next
    run.step()
    assert got == [pages["a"]] and len(run) == 1
    run.step()
    assert got[1:3] == [pages["b"], None] and isinstance(got[3], OSError)
    assert len(run) == 0
