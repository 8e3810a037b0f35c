"""The leak table: every read URL for every principal, with its status and body.

A private index answers a project a reader may not see exactly as a project that does not
exist -- same status, same body, same headers -- and lists only what the reader may see.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from passlib.hash import bcrypt

from spoold.access.store import AccessStore
from spoold.access.throttle import LoginThrottle
from spoold.access.tokens import new_token
from spoold.access.htpasswd import Htpasswd
from spoold.index import publish
from spoold.spool import Spool
from spoold.storage.memory import MemoryStorage
from spoold.testing import request
from spoold.testing.dists import make_distribution
from testlib.web_harness import make_site

PASSWORD = "correct horse"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("private")
    storage = MemoryStorage()
    files = {}
    for name in ("demo", "secret"):
        dist, path = make_distribution(name, "1.0", tmp)
        publish(storage, dist, path)
        files[name] = dist.filename
    htpasswd = tmp / "htpasswd"
    entry = bcrypt.using(rounds=4).hash(PASSWORD)
    htpasswd.write_text(f"alice:{entry}\nroot:{entry}\n")
    store = AccessStore(storage)
    now = datetime.now(UTC)
    tokens = {}
    for label, user, projects, expires in [
        ("demo-token", "alice", ["demo"], None),
        ("whole-token", "alice", [], None),
        ("expired", "alice", [], now - timedelta(days=1)),
        ("revoked", "alice", [], None),
        ("orphan", "gone", [], None),
    ]:
        token, secret = new_token(user, ["read"], projects, expires=expires,
                                  now=now - timedelta(days=10))
        store.add_token(token)
        tokens[label] = (token, secret)
    store.revoke_token(tokens["revoked"][0].id)
    return {"tmp": tmp, "storage": storage, "htpasswd": htpasswd, "files": files, "tokens": tokens}


@pytest.fixture
def site(world: dict, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh site (and so a fresh failed-login throttle) per test, over the same data."""
    spool = Spool.create(tmp_path / "spool")
    return make_site(tmp_path, spool, storage=world["storage"], auth=Htpasswd(world["htpasswd"]),
                     read="private", admins=("root",))


def headers_for(world: dict, who: str) -> list[tuple[str, str]]:
    tokens = world["tokens"]
    return {
        "anonymous": [],
        "wrong-password": [("Authorization", basic("alice", "guess"))],
        "user": [("Authorization", basic("alice", PASSWORD))],
        "admin": [("Authorization", basic("root", PASSWORD))],
        "demo-token": [("Authorization", basic("__token__", tokens["demo-token"][1]))],
        "whole-token": [("Authorization", "Bearer " + tokens["whole-token"][1])],
        "expired": [("Authorization", "Bearer " + tokens["expired"][1])],
        "revoked": [("Authorization", basic(tokens["revoked"][1], ""))],
        "orphan": [("Authorization", "Bearer " + tokens["orphan"][1])],
    }[who]


URLS = ["/simple/", "/simple/demo/", "/simple/secret/", "/simple/nothere/",
        "/packages/demo/{demo}", "/packages/secret/{secret}", "/packages/secret/{secret}.metadata",
        "/packages/nothere/nothere-1.0-py3-none-any.whl",
        # the explorer (asked for by a tool: no Accept: text/html) and the JSON API
        "/", "/search/?q=e", "/project/demo/", "/project/secret/", "/project/secret/1.0/", "/project/nothere/",
        "/pypi/demo/json", "/pypi/secret/json", "/pypi/secret/1.0/json", "/pypi/nothere/json",
        "/health"]
#: Expected status per principal and URL (same order as URLS).
_REFUSED = [401] * 18 + [200]  # /health says {"ok": ...} to anyone
TABLE = {
    "anonymous":      _REFUSED,
    "wrong-password": _REFUSED,
    "user":           [200, 200, 200, 404, 200, 200, 200, 404, 200, 200, 200, 200, 200, 404, 200, 200, 200, 404, 200],
    "admin":          [200, 200, 200, 404, 200, 200, 200, 404, 200, 200, 200, 200, 200, 404, 200, 200, 200, 404, 200],
    "demo-token":     [200, 200, 404, 404, 200, 404, 404, 404, 200, 200, 200, 404, 404, 404, 200, 404, 404, 404, 200],
    "whole-token":    [200, 200, 200, 404, 200, 200, 200, 404, 200, 200, 200, 200, 200, 404, 200, 200, 200, 404, 200],
    "expired":        _REFUSED,
    "revoked":        _REFUSED,
    "orphan":         _REFUSED,
}


@pytest.mark.parametrize("who", sorted(TABLE))
def test_the_leak_table(world: dict, site, who: str) -> None:
    got = []
    for url in URLS:
        # A fresh failed-login count for each URL: throttling has its own tests, and here
        # every URL must answer as it would the first time.
        site.authenticator.throttle = LoginThrottle(clock=site.authenticator.clock)
        response = request(site, "GET", url.format(**world["files"]), headers_for(world, who))
        got.append(response.status)
        if response.status == 401:
            assert response.header("www-authenticate") == 'Basic realm="spoold", charset="UTF-8"'
            assert b"secret" not in response.body and b"demo" not in response.body
        if who == "demo-token" and response.status == 200 and not url.startswith("/packages/"):
            assert b"secret" not in response.body, url  # not in the root, search, home, JSON
        if url == "/health" and who in ("anonymous", "wrong-password", "expired", "revoked", "orphan"):
            assert set(json.loads(response.body)) == {"ok"}
    assert got == TABLE[who], dict(zip(URLS, got))


def test_a_hidden_project_looks_exactly_like_an_absent_one(world: dict, site) -> None:
    files = world["files"]
    auth = headers_for(world, "demo-token")
    # An absent name of the same length, so even Content-Length has nothing to say.
    for hidden, absent in [("/simple/secret/", "/simple/secrex/"),
                           (f"/packages/secret/{files['secret']}", "/packages/secrex/" + files["secret"].replace("secret", "secrex"))]:
        a, b = request(site, "GET", hidden, auth), request(site, "GET", absent, auth)
        assert (a.status, a.reason) == (b.status, b.reason) == (404, "Not Found")
        same = lambda r: sorted((k, v) for k, v in r.headers if k != "date")  # noqa: E731
        assert same(a) == same(b)
        assert a.body.replace(b"secret", b"X") == b.body.replace(b"secrex", b"X")


def test_the_root_lists_only_what_the_reader_may_see(world: dict, site) -> None:
    for who, expected in [("demo-token", ["demo"]), ("user", ["demo", "secret"])]:
        json_root = request(site, "GET", "/simple/", [*headers_for(world, who),
                                                       ("Accept", "application/vnd.pypi.simple.v1+json")])
        assert [p["name"] for p in json.loads(json_root.body)["projects"]] == expected
        html_root = request(site, "GET", "/simple/", headers_for(world, who))
        assert (b"secret" in html_root.body) == ("secret" in expected)
        assert "Authorization" in (json_root.header("vary") or "")
        assert json_root.header("cache-control", ).startswith("private")


def test_an_expired_token_says_when(world: dict, site) -> None:
    response = request(site, "GET", "/simple/demo/", headers_for(world, "expired"))
    token = world["tokens"]["expired"][0]
    assert response.status == 401 and f"token {token.id} expired on" in response.text


def test_redirects_of_other_spellings_tell_nothing(world: dict, site) -> None:
    for url in ("/simple/Secret/", "/simple/No_There/"):
        response = request(site, "GET", url)
        assert response.status == 301  # answered before any lookup: the same for all names


def test_health_says_ok_to_anyone_and_details_to_readers(world: dict, site) -> None:
    anonymous = request(site, "GET", "/health")
    assert anonymous.status == 200 and set(json.loads(anonymous.body)) == {"ok"}
    reader = request(site, "GET", "/health", headers_for(world, "demo-token"))
    assert {"ok", "queues", "storage", "version"} <= set(json.loads(reader.body))


@pytest.mark.parametrize(("who", "uri", "status", "denied"), [
    ("anonymous", "/simple/demo/", 401, None),
    ("wrong-password", "/simple/demo/", 401, None),
    ("user", "/simple/secret/", 200, None),
    ("admin", "/simple/secret/", 200, None),
    ("user", "/simple/index.v1.json", 200, None),
    # A limited token's every read is "ask spoold", whatever the URI: the answer must hold
    # for any project, since nginx caches it by the credentials alone.
    ("demo-token", "/packages/demo/x.whl", 403, "limited"),
    ("demo-token", "/simple/secret/", 403, "limited"),
    ("demo-token", "/simple/", 403, "limited"),
    ("whole-token", "/simple/secret/", 200, None),
    ("orphan", "/simple/demo/", 401, None),
    ("revoked", "/simple/demo/", 401, None),
    ("expired", "/simple/demo/", 401, None),
])
def test_the_auth_request_endpoint_for_nginx(world: dict, site, who: str, uri: str, status: int,
                                             denied: str | None) -> None:
    response = request(site, "GET", "/_auth", [*headers_for(world, who), ("X-Original-URI", uri)])
    assert response.status == status
    assert response.header("x-spoold-denied") == denied
    if status == 401:
        assert response.header("www-authenticate", ).startswith("Basic")


def test_pages_in_memory_leak_nothing(world: dict, site) -> None:
    """Once a reader who may see everything has brought every page into the cache, the
    others still get exactly their table: served from memory only what they may see, a
    hidden project still answered as an absent one (the same storage read as before)."""
    for url in ("/simple/", "/simple/demo/", "/simple/secret/"):
        assert request(site, "GET", url, headers_for(world, "admin")).status == 200
    assert len(site.page_cache) >= 3
    for who in sorted(TABLE):
        site.authenticator.throttle = LoginThrottle(clock=site.authenticator.clock)
        got = [request(site, "GET", url, headers_for(world, who)).status
               for url in ("/simple/", "/simple/demo/", "/simple/secret/")]
        assert got == TABLE[who][:3], who
    demo = headers_for(world, "demo-token")
    hidden, absent = request(site, "GET", "/simple/secret/", demo), request(site, "GET", "/simple/secrex/", demo)
    same = lambda r: sorted((k, v) for k, v in r.headers if k != "date")  # noqa: E731
    assert hidden.status == absent.status == 404 and same(hidden) == same(absent)
    page = request(site, "GET", "/simple/demo/", demo)
    assert page.header("vary") == "Accept, Authorization"
    assert (page.header("cache-control") or "").startswith("private")
    root = request(site, "GET", "/simple/", demo)
    assert b"secret" not in root.body
    assert site.page_cache.hits >= 3  # the readers above were answered from memory


@pytest.mark.parametrize("who", ["revoked", "orphan", "wrong-password"])
def test_a_refusal_from_memory_counts_once(world: dict, site, who: str) -> None:
    """A credential refused on a page held in memory is one failed login, as on the
    general path: the throttle's 429 comes once more than ``limit`` were refused, not
    sooner."""
    assert request(site, "GET", "/simple/demo/", headers_for(world, "admin")).status == 200
    limit = site.authenticator.throttle.limit
    got = [request(site, "GET", "/simple/demo/", headers_for(world, who)) for _ in range(limit + 2)]
    assert [r.status for r in got] == [401] * (limit + 1) + [429], (who, str([r.status for r in got]))
    assert got[0].header("www-authenticate") == 'Basic realm="spoold", charset="UTF-8"'
    assert got[0].header("vary") == "Accept, Authorization"
