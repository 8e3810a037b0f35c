"""Logging in, the account page (tokens), the manage page (yanks, roles), CSRF, first run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spoold.access.first_start import PASSWORD_FILE
from spoold.access.principal import Principal
from spoold.access.store import AccessStore
from spoold.explorer.session import SESSION_COOKIE
from spoold.index.pages import parse_project_json
from spoold.storage.keys import SESSION_SECRET, project_json_key
from spoold.testing import basic_auth, request
from testlib.explorer_harness import Browser, csrf_of, explorer_site, publish_rich


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    site, storage = explorer_site(tmp_path, read="private",
                                  users={"alice": "alice-pw", "bob": "bob-pw", "admin": "admin-pw"},
                                  admins=("admin",))
    publish_rich(storage, tmp_path, "alpha", "1.0", uploader=Principal.for_user("alice"))
    publish_rich(storage, tmp_path, "alpha", "2.0", uploader=Principal.for_user("alice"))
    return site, storage


def events(storage, action: str) -> list:  # type: ignore[no-untyped-def]
    return [e for e in AccessStore(storage).events() if e.action == action]


def test_login_sets_a_safe_session_cookie_and_logout_clears_it(served) -> None:  # type: ignore[no-untyped-def]
    site, storage = served
    browser = Browser(site)
    r = browser.login("bob", "bob-pw", "/project/alpha/")
    assert r.status == 303 and r.header("location") == "/project/alpha/"
    [cookie] = [v for v in r.header_values("set-cookie") if v.startswith(SESSION_COOKIE + "=")]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # plain http here
    page = browser.get("/project/alpha/")
    assert page.status == 200 and '<a href="/account/">bob</a>' in page.text
    assert storage.read_doc(SESSION_SECRET) is not None  # made once, in the storage
    out = browser.post("/logout", {"csrf": csrf_of(page.text)})
    assert out.status == 303 and SESSION_COOKIE not in browser.cookies
    assert browser.get("/project/alpha/").status == 303  # to the login page again


def test_secure_cookies_behind_https_and_no_open_redirects(served) -> None:  # type: ignore[no-untyped-def]
    site, _ = served
    browser = Browser(site, origin="https://index.test")
    tls = {"X-Forwarded-Proto": "https"}
    form = browser.get("/login", tls)
    r = browser.post("/login", {"user": "bob", "password": "bob-pw", "next": "//evil.example/x",
                                "csrf": csrf_of(form.text)}, tls)
    assert r.status == 303 and r.header("location") == "/"
    assert all("Secure" in v for v in r.header_values("set-cookie"))


def test_failed_logins_are_refused_then_throttled(served) -> None:  # type: ignore[no-untyped-def]
    site, _ = served
    browser = Browser(site)
    form = browser.get("/login")
    token = csrf_of(form.text)
    statuses = [browser.post("/login", {"user": "bob", "password": f"wrong{i}", "csrf": token}).status
                for i in range(12)]
    assert statuses[:10] == [403] * 10 and statuses[-1] == 429
    throttled = browser.post("/login", {"user": "bob", "password": "bob-pw", "csrf": token})
    assert throttled.status == 429 and throttled.header("retry-after") is not None
    assert SESSION_COOKIE not in browser.cookies
    tokens = browser.post("/login", {"user": "__token__", "password": "spoold_x", "csrf": token})
    assert tokens.status == 400


def test_forged_logins_are_refused(served) -> None:  # type: ignore[no-untyped-def]
    site, _ = served
    browser = Browser(site)
    token = csrf_of(browser.get("/login").text)
    other = Browser(site)  # no login cookie: the token alone is not enough
    assert other.post("/login", {"user": "bob", "password": "bob-pw", "csrf": token}).status == 403
    evil = Browser(site, cookies=dict(browser.cookies), origin="https://evil.example")
    assert evil.post("/login", {"user": "bob", "password": "bob-pw", "csrf": token}).status == 403
    assert SESSION_COOKIE not in evil.cookies
    # Any bytes in the token and its cookie: refused, never a 500.
    hostile = Browser(site, cookies={"spoold_login": "é" * 30})
    assert hostile.post("/login", {"user": "bob", "password": "bob-pw", "csrf": "é" * 30}).status == 403


def test_tokens_are_created_shown_once_and_revoked(served) -> None:  # type: ignore[no-untyped-def]
    site, storage = served
    browser = Browser(site)
    browser.login("bob", "bob-pw")
    account = browser.get("/account/")
    assert account.status == 200 and "No tokens yet." in account.text
    assert account.header("cache-control") == "no-store"
    made = browser.post("/account/tokens", {"csrf": csrf_of(account.text), "description": "ci <job>",
                                            "scope": "read", "projects": "alpha", "expires": "30"})
    assert made.status == 201
    secret = re.search(r'<code class="token" id="new-token">([^<]+)</code>', made.text)[1]  # type: ignore[index]
    [token] = AccessStore(storage).tokens("bob")
    assert token.projects == {"alpha"} and token.description == "ci <job>" and token.expires is not None
    assert secret.startswith(f"spoold_{token.id}_")
    listing = browser.get("/account/")
    assert token.id in listing.text and secret not in listing.text and "ci &lt;job&gt;" in listing.text
    # the new token works for tools
    assert request(site, "GET", "/simple/alpha/", {"Authorization": basic_auth("__token__", secret)}).status == 200
    [event] = events(storage, "token-create")
    assert event.principal == "bob" and event.address == "127.0.0.1" and event.user_agent == "Mozilla/5.0 (test)"
    revoked = browser.post("/account/tokens/revoke", {"csrf": csrf_of(listing.text), "token": token.id})
    assert revoked.status == 303 and AccessStore(storage).tokens("bob") == []
    assert request(site, "GET", "/simple/alpha/", {"Authorization": basic_auth("__token__", secret)}).status == 401
    assert [e.principal for e in events(storage, "token-revoke")] == ["bob"]
    bad = browser.post("/account/tokens", {"csrf": csrf_of(listing.text), "scope": "root"})
    assert bad.status == 400 and AccessStore(storage).tokens("bob") == []


def test_a_forged_cross_site_post_changes_nothing(served) -> None:  # type: ignore[no-untyped-def]
    site, storage = served
    browser = Browser(site)
    browser.login("alice", "alice-pw")
    csrf = csrf_of(browser.get("/account/").text)
    # Another site's form: the browser sends the cookie (say, SameSite ignored) and its Origin.
    evil = Browser(site, cookies=dict(browser.cookies), origin="https://evil.example")
    assert evil.post("/account/tokens", {"csrf": csrf, "scope": "upload"}).status == 403
    assert evil.post("/project/alpha/manage/yank", {"csrf": csrf, "target": "2.0"}).status == 403
    # Same site, but no token (or another session's)
    assert browser.post("/account/tokens", {"scope": "upload"}).status == 403
    assert browser.post("/account/tokens", {"csrf": "x" * 43, "scope": "upload"}).status == 403
    assert browser.post("/account/tokens", {"csrf": "ü" * 43, "scope": "upload"}).status == 403
    referer_only = Browser(site, cookies=dict(browser.cookies), origin=None)
    assert referer_only.post("/account/tokens", {"csrf": csrf},
                             {"Referer": "https://evil.example/page"}).status == 403
    assert AccessStore(storage).tokens("alice") == []
    manifest = parse_project_json(storage.read_page(project_json_key("alpha")).data)
    assert all(e.yanked is None for e in manifest.files)
    # Basic credentials without a session cannot post forms either (no CSRF token exists).
    assert request(site, "POST", "/account/tokens", {"Authorization": basic_auth("alice", "alice-pw"),
                                                     "Content-Type": "application/x-www-form-urlencoded"},
                   b"scope=upload").status == 403


def test_owners_yank_and_unyank_through_the_manage_page(served) -> None:  # type: ignore[no-untyped-def]
    site, storage = served
    browser = Browser(site)
    browser.login("alice", "alice-pw")
    project = browser.get("/project/alpha/")
    assert 'href="/project/alpha/manage/"' in project.text  # alice owns it
    manage = browser.get("/project/alpha/manage/")
    assert manage.status == 200 and "Yank 2.0" in manage.text
    done = browser.post("/project/alpha/manage/yank", {"csrf": csrf_of(manage.text), "target": "2.0",
                                                       "reason": "security  issue\n"})
    assert done.status == 303 and done.header("location").startswith("/project/alpha/manage/?done=")
    manifest = parse_project_json(storage.read_page(project_json_key("alpha")).data)
    assert [e.yanked for e in manifest.files_of("2.0")] == ["security issue"]
    page = browser.get("/project/alpha/")  # the cache was dropped: 1.0 is shown now
    assert '<span class="version">1.0</span></h1>' in page.text and "yanked: security issue" in page.text
    [event] = events(storage, "yank")
    assert (event.principal, event.project, event.detail) == ("alice", "alpha", "security issue")
    manage = browser.get("/project/alpha/manage/")
    assert "Unyank 2.0" in manage.text
    browser.post("/project/alpha/manage/unyank", {"csrf": csrf_of(manage.text), "target": "2.0"})
    manifest = parse_project_json(storage.read_page(project_json_key("alpha")).data)
    assert all(e.yanked is None for e in manifest.files) and len(events(storage, "unyank")) == 1


def test_only_owners_and_admins_manage(served) -> None:  # type: ignore[no-untyped-def]
    site, storage = served
    bob = Browser(site)
    bob.login("bob", "bob-pw")
    assert 'href="/project/alpha/manage/"' not in bob.get("/project/alpha/").text
    assert bob.get("/project/alpha/manage/").status == 403
    csrf = csrf_of(bob.get("/account/").text)
    assert bob.post("/project/alpha/manage/yank", {"csrf": csrf, "target": "2.0"}).status == 403
    assert bob.get("/project/nope/manage/").status == 404
    admin = Browser(site)
    admin.login("admin", "admin-pw")
    assert admin.get("/project/alpha/manage/").status == 200


def test_owners_add_and_remove_maintainers(served) -> None:  # type: ignore[no-untyped-def]
    site, storage = served
    browser = Browser(site)
    browser.login("alice", "alice-pw")
    csrf = csrf_of(browser.get("/project/alpha/manage/").text)
    assert browser.post("/project/alpha/manage/roles", {"csrf": csrf, "user": "bob", "role": "maintainer"}).status == 303
    assert AccessStore(storage).roles("alpha").maintainers == {"bob"}
    nobody = browser.post("/project/alpha/manage/roles", {"csrf": csrf, "user": "mallory", "role": "owner"})
    assert nobody.status == 200 and "there is no user" in nobody.text
    last = browser.post("/project/alpha/manage/roles", {"csrf": csrf, "user": "alice", "role": "none"})
    assert "last owner" in last.text and AccessStore(storage).roles("alpha").owners == {"alice"}
    browser.post("/project/alpha/manage/roles", {"csrf": csrf, "user": "bob", "role": "none"})
    assert AccessStore(storage).roles("alpha").maintainers == frozenset()
    assert [e.detail for e in events(storage, "role-set")] == ["bob maintainer"]
    assert [e.detail for e in events(storage, "role-unset")] == ["bob"]


def test_the_first_run_page_names_the_password_file_until_admin_logs_in(tmp_path: Path) -> None:
    site, _ = explorer_site(tmp_path, read="private", users={"admin": "generated-secret"})
    password_file = tmp_path / "data" / PASSWORD_FILE
    password_file.parent.mkdir(parents=True)
    password_file.write_text("generated-secret\n")
    anonymous = Browser(site)
    home = anonymous.get("/")
    assert home.status == 200 and str(password_file) in home.text
    assert "generated-secret" not in home.text
    assert re.findall(r'<form action="([^"]+)" method="post"', home.text) == []  # nothing to claim
    assert anonymous.login("admin", "generated-secret").status == 303
    site.explorer.cache.invalidate(None)
    assert str(password_file) not in anonymous.get("/").text
    assert Browser(site).get("/").status == 303  # a private index again: log in first
