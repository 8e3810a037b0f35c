"""The explorer's read pages and the JSON API through the whole HTTP stack (in memory)."""

from __future__ import annotations

from markupsafe import escape
import json
from pathlib import Path

import pytest

from spoold.access.principal import Principal
from spoold.access.store import AccessStore
from spoold.access.tokens import new_token
from spoold.index import yank
from spoold.index.manifest import Manifest
from spoold.index.pages import parse_project_json
from spoold.storage.keys import project_json_key
from spoold.testing import basic_auth, request
from testlib.explorer_harness import BROWSER, Browser, explorer_site, publish_rich
from testlib.explorerdists import HOSTILE_README, rich_metadata


def manifest_of(storage, project: str) -> Manifest:  # type: ignore[no-untyped-def]
    return parse_project_json(storage.read_page(project_json_key(project)).data)


@pytest.fixture
def public(tmp_path: Path):  # type: ignore[no-untyped-def]
    site, storage = explorer_site(tmp_path)
    publish_rich(storage, tmp_path, "Demo.Pkg", "1.0", summary="first")
    publish_rich(storage, tmp_path, "Demo.Pkg", "2.0", summary="a demo for the explorer")
    publish_rich(storage, tmp_path, "Demo.Pkg", "3.0b1", summary="beta")
    publish_rich(storage, tmp_path, "other", "0.1", summary="something else")
    yank(storage, "demo-pkg", "1.0", "broken <b>build</b>")
    return site, storage


def test_home_search_and_the_project_page(public) -> None:  # type: ignore[no-untyped-def]
    site, storage = public
    home = request(site, "GET", "/", {"Accept": BROWSER})
    assert home.status == 200 and ">2 projects<" in home.text
    assert "Demo.Pkg" in home.text and "/simple/" in home.text
    found = request(site, "GET", "/search/?q=explorer")  # a summary word
    assert found.status == 200 and "/project/demo-pkg/" in found.text and "/project/other/" not in found.text
    page = request(site, "GET", "/project/demo-pkg/")
    text = page.text
    assert page.status == 200
    assert "<h1>Demo.Pkg <span class=\"version\">2.0</span></h1>" in text  # not the beta, not yanked
    assert "a demo for the explorer" in text
    assert '<h1 id="user-content-title">Title' in text  # the description, rendered
    assert "pip install --index-url http://index.test/simple/ Demo.Pkg" in text
    assert "uv pip install --index-url http://index.test/simple/ Demo.Pkg" in text
    entry = manifest_of(storage, "demo-pkg").files_of("2.0")[0]
    assert f'<code class="sha256">{entry.sha256}</code>' in text
    assert f'href="/packages/demo-pkg/{entry.filename}"' in text
    assert f'href="/packages/demo-pkg/{entry.filename}.metadata"' in text
    assert "twine/6.0" in text and "Requires Python" in text and "MIT" in text
    assert "Ada Lovelace" in text and "packaging&gt;=20" in text and "Topic :: Software Development" in text
    for version in ("1.0", "2.0", "3.0b1"):
        assert f'href="/project/demo-pkg/{version}/"' in text
    assert "pre-release" in text
    assert "yanked: broken &lt;b&gt;build&lt;/b&gt;" in text  # the reason, escaped
    assert 'href="javascript' not in text and "Tracker: <code>javascript:alert(1)</code>" in text


def test_release_pages(public) -> None:  # type: ignore[no-untyped-def]
    site, _ = public
    old = request(site, "GET", "/project/demo-pkg/1.0/")
    assert old.status == 200 and "<strong>Yanked</strong>: broken &lt;b&gt;build&lt;/b&gt;" in old.text
    assert "Demo.Pkg==1.0" in old.text and "first" in old.text
    assert "This is a pre-release." in request(site, "GET", "/project/demo-pkg/3.0b1/").text
    for path, location in [("/project/Demo.Pkg/", "/project/demo-pkg/"),
                           ("/project/demo-pkg", "/project/demo-pkg/"),
                           ("/project/demo-pkg/2.0.0/", "/project/demo-pkg/2.0.0/"),
                           ("/project/demo-pkg/3.0.beta1/", "/project/demo-pkg/3.0b1/"),
                           ("/project/demo_pkg/1.0", "/project/demo-pkg/1.0/")]:
        r = request(site, "GET", path)
        if path == "/project/demo-pkg/2.0.0/":
            assert r.status == 404  # 2.0.0 normalizes to itself; there is no such release
            continue
        assert (r.status, r.header("location")) == (301, location), path
    huge = "9" * 5000  # more digits than int() converts: not a version, not a 500
    for path in ("/project/nope/", "/project/demo-pkg/9.9/", "/project/demo-pkg/not-a-version/",
                 "/project/", "/project/demo-pkg/2.0/extra", f"/project/demo-pkg/{huge}/",
                 f"/pypi/demo-pkg/{huge}/json"):
        assert request(site, "GET", path).status == 404, path


def test_pages_carry_the_safety_headers(public) -> None:  # type: ignore[no-untyped-def]
    site, _ = public
    for path in ("/", "/search/?q=x", "/project/demo-pkg/", "/login", "/project/nope/"):
        r = request(site, "GET", path)
        csp = r.header("content-security-policy") or ""
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "img-src 'self' data:" in csp
        assert "unsafe-inline" not in csp
        assert r.header("x-content-type-options") == "nosniff" and r.header("x-frame-options") == "DENY"
    css = request(site, "GET", "/static/style.css")
    assert css.status == 200 and css.header("content-type") == "text/css; charset=utf-8"
    assert request(site, "GET", "/static/copy.js").header("content-type").startswith("text/javascript")
    assert request(site, "GET", "/static/../pages.py").status == 404


def test_search_pages(tmp_path: Path) -> None:
    site, storage = explorer_site(tmp_path)
    for i in range(25):
        publish_rich(storage, tmp_path, f"widget-{i:02d}", "1.0", summary="a widget")
    first = request(site, "GET", "/search/?q=widget")
    assert "25 results" in first.text and first.text.count('<li><a href="/project/widget-') == 20
    assert 'rel="next" href="/search/?q=widget&amp;page=2"' in first.text
    second = request(site, "GET", "/search/?q=widget&page=2")
    assert second.text.count('<li><a href="/project/widget-') == 5 and 'rel="prev"' in second.text


def test_hostile_names_and_metadata_render_harmlessly(tmp_path: Path) -> None:
    site, storage = explorer_site(tmp_path)
    metadata = rich_metadata("evil", "1.0", summary='"><script>alert(1)</script>', readme=HOSTILE_README,
                             extra=(("Author", "<img src=x onerror=alert(1)>"),
                                    ("Project-URL", 'Docs"><script>, https://example.org/"onmouseover="x'),
                                    ("Classifier", "<b>bold</b>")))
    publish_rich(storage, tmp_path, "evil", "1.0", metadata=metadata)
    for path in ("/project/evil/", "/search/?q=evil", "/"):
        text = request(site, "GET", path).text
        assert "<script>alert" not in text and "<img src=x" not in text and "<b>bold" not in text, path
    text = request(site, "GET", "/project/evil/").text
    assert str(escape('"><script>alert(1)</script>')) in text
    assert "onerror=" not in text.replace("onerror=alert(1)&gt;", "")  # only as escaped text
    assert "<iframe" not in text and "<form action=\"https://evil" not in text
    assert 'href="https://example.org/&#34;onmouseover=&#34;x"' in text


def test_json_api(public) -> None:  # type: ignore[no-untyped-def]
    site, storage = public
    r = request(site, "GET", "/pypi/demo-pkg/json", {"Host": "pypi.internal:8080"})
    assert r.status == 200 and r.header("content-type") == "application/json"
    doc = json.loads(r.body)
    generation = manifest_of(storage, "demo-pkg").generation
    assert r.header("x-pypi-last-serial") == str(generation) == str(doc["last_serial"])
    assert doc["info"]["version"] == "2.0" and doc["info"]["project_url"] == "http://pypi.internal:8080/project/demo-pkg/"
    assert doc["urls"][0]["url"].startswith("http://pypi.internal:8080/packages/demo-pkg/")
    assert doc["releases"]["1.0"][0]["yanked_reason"] == "broken <b>build</b>"
    again = request(site, "GET", "/pypi/demo-pkg/json", {"Host": "pypi.internal:8080",
                                                        "If-None-Match": r.header("etag") or ""})
    assert again.status == 304
    other_host = request(site, "GET", "/pypi/demo-pkg/json", {"If-None-Match": r.header("etag") or ""})
    assert other_host.status == 200  # other bytes (other absolute URLs), so another tag
    release = request(site, "GET", "/pypi/demo-pkg/1.0/json")
    assert release.status == 200 and "releases" not in json.loads(release.body)
    assert json.loads(release.body)["info"]["yanked"] is True
    assert request(site, "GET", "/pypi/demo-pkg/json/").status == 200
    for path, location in [("/pypi/Demo.Pkg/json", "/pypi/demo-pkg/json"),
                           ("/pypi/demo-pkg/3.0.beta1/json", "/pypi/demo-pkg/3.0b1/json")]:
        moved = request(site, "GET", path)
        assert (moved.status, moved.header("location")) == (301, location)
    for path in ("/pypi/nope/json", "/pypi/demo-pkg/9.0/json", "/pypi/demo-pkg/x.y.z/json", "/pypi/demo-pkg/"):
        assert request(site, "GET", path).status == 404, path


def test_forwarded_headers_count_only_from_trusted_peers(public) -> None:  # type: ignore[no-untyped-def]
    site, _ = public
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "pypi.example.com"}
    page = request(site, "GET", "/project/demo-pkg/", headers)  # the test peer is 127.0.0.1
    assert "https://pypi.example.com/simple/" in page.text
    site.explorer.settings = type(site.explorer.settings)(**{**site.explorer.settings.__dict__,
                                                             "forwarded_allow": ()})
    site.explorer.cache.invalidate(None)
    page = request(site, "GET", "/project/demo-pkg/", headers)
    assert "http://index.test/simple/" in page.text and "pypi.example.com" not in page.text
    bad = request(site, "GET", "/project/demo-pkg/", {"Host": "evil\"><script>"})
    assert "<script>" not in bad.text


# -- private reads ----------------------------------------------------------------------------------


@pytest.fixture
def private(tmp_path: Path):  # type: ignore[no-untyped-def]
    site, storage = explorer_site(tmp_path, read="private", users={"alice": "pw", "bob": "pw2"})
    alice = Principal.for_user("alice")
    publish_rich(storage, tmp_path, "alpha", "1.0", summary="first project", uploader=alice)
    publish_rich(storage, tmp_path, "beta", "1.0", summary="second project", uploader=alice)
    return site, storage


def test_private_reads_send_browsers_to_login_and_tools_get_the_challenge(private) -> None:  # type: ignore[no-untyped-def]
    site, _ = private
    for path in ("/", "/search/?q=alpha", "/project/alpha/", "/account/"):
        browser = request(site, "GET", path, {"Accept": BROWSER})
        assert browser.status == 303, path
        assert browser.header("location") == "/login?next=" + path.replace("?", "%3F").replace("=", "%3D")
        tool = request(site, "GET", path, {"Accept": "*/*"})
        assert tool.status == 401 and tool.header("www-authenticate", ) is not None, path
    # The index and the files never redirect: pip asks with Accept text/html too.
    for path in ("/simple/", "/simple/alpha/", "/pypi/alpha/json", "/packages/alpha/x.whl"):
        r = request(site, "GET", path, {"Accept": BROWSER})
        assert r.status == 401 and r.header("www-authenticate", ).startswith("Basic"), path
    pip_like = request(site, "GET", "/simple/alpha/", {"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.01"})
    assert pip_like.status == 401
    ok = request(site, "GET", "/project/alpha/", {"Authorization": basic_auth("bob", "pw2")})
    assert ok.status == 200 and "first project" in ok.text
    assert request(site, "GET", "/project/alpha/", {"Authorization": basic_auth("bob", "bad")}).status == 401


def test_a_project_limited_token_sees_only_its_projects(private, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    site, storage = private
    token, secret = new_token("alice", ["read"], ["alpha"])
    AccessStore(storage).add_token(token)
    auth = {"Authorization": basic_auth("__token__", secret)}
    home = request(site, "GET", "/", auth)
    assert ">1 project<" in home.text and "/project/alpha/" in home.text and "/project/beta/" not in home.text
    found = request(site, "GET", "/search/?q=project", auth)
    assert "/project/alpha/" in found.text and "/project/beta/" not in found.text
    assert request(site, "GET", "/project/alpha/", auth).status == 200
    hidden, absent = request(site, "GET", "/project/beta/", auth), request(site, "GET", "/project/nope/", auth)
    assert hidden.status == absent.status == 404 and hidden.body == absent.body
    assert request(site, "GET", "/pypi/alpha/json", auth).status == 200
    hidden, absent = request(site, "GET", "/pypi/beta/json", auth), request(site, "GET", "/pypi/nope/json", auth)
    assert hidden.status == absent.status == 404
    assert hidden.body.replace(b"beta", b"nope") == absent.body
    everything = {"Authorization": basic_auth("bob", "pw2")}
    assert ">2 projects<" in request(site, "GET", "/", everything).text


def test_a_session_reads_the_index_and_files_without_a_prompt(private) -> None:  # type: ignore[no-untyped-def]
    site, storage = private
    browser = Browser(site)
    assert browser.login("bob", "pw2", "/project/alpha/").status == 303
    page = browser.get("/project/alpha/")
    assert page.status == 200 and "bob" in page.text
    entry = manifest_of(storage, "alpha").files[0]
    assert browser.get(f"/packages/alpha/{entry.filename}").status == 200
    assert browser.get("/simple/alpha/").status == 200
