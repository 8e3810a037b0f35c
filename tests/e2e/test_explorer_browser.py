"""The explorer in a real headless Chromium against a running ``spoold serve``.

One server and one browser for the module; the tests run in order, as a person would:
the private index sends the anonymous browser to the login page (pip gets 401), alice
logs in, searches, reads the project pages of real packages built by setuptools,
hatchling and poetry-core, sees that a hostile README runs and breaks nothing, makes and
revokes a token, yanks and unyanks a release, and a forged cross-site form changes
nothing. Screenshots of the main pages are kept (``$SPOOLD_ARTIFACTS`` or
/tmp/spoold-screenshots) and their paths printed.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from spoold.access.accounts import add_user
from testlib.explorerbuild import SPECS, build_all, chromium_available, keep, start_chromium
from testlib.explorerdists import HOSTILE_README, rich_distribution
from testlib.serveproc import Server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not chromium_available(),
                       reason="Debian's chromium and chromium-driver are not installed (.ci/run installs them)"),
]

ALICE = ("alice", "alice-password")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("explorer")
    built = build_all(root / "builds")
    htpasswd = root / "htpasswd"
    add_user(htpasswd, *ALICE, rounds=4)
    add_user(htpasswd, "bob", "bob-password", rounds=4)
    server = Server(root, str(root / "storage"), htpasswd=htpasswd,
                    extra={"read": "private", "admins": []})
    hashes: dict[str, str] = {}
    try:
        files = [path for paths in built.values() for path in paths]
        hashes.update({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files})
        _, hostile = rich_distribution("hostile-readme", "1.0", root, readme=HOSTILE_README,
                                       summary="A README that tries everything")
        twine = subprocess.run(
            [sys.executable, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar",
             "--repository-url", server.upload, "-u", ALICE[0], "-p", ALICE[1], *map(str, files),
             str(hostile)], capture_output=True, text=True, timeout=300)
        assert twine.returncode == 0, twine.stdout + twine.stderr
        driver = start_chromium(root / "profile")
    except BaseException:
        server.stop()
        raise
    try:
        yield {"server": server, "driver": driver, "hashes": hashes, "shots": root / "shots"}
    finally:
        driver.quit()
        server.stop()


def shot(world, name: str) -> None:  # type: ignore[no-untyped-def]
    world["shots"].mkdir(exist_ok=True)
    path = world["shots"] / f"{name}.png"
    world["driver"].save_screenshot(str(path))
    print(f"screenshot: {keep(path)}")


def fetch(url: str, auth: tuple[str, str] | None = None, accept: str = "*/*") -> tuple[int, bytes]:
    headers = {"Accept": accept}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(driver, condition, timeout: float = 20):  # type: ignore[no-untyped-def]
    """Wait until ``condition(driver)`` holds (a click's navigation may still be loading)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, ignored_exceptions=(NoSuchElementException,
                                                              StaleElementReferenceException)).until(condition)


def text_of(css: str, wanted: str):  # type: ignore[no-untyped-def]
    return lambda d: wanted in d.find_element("css selector", css).text


def no_overflow(driver) -> bool:  # type: ignore[no-untyped-def]
    return bool(driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_anonymous_browser_goes_to_login_and_pip_gets_401(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, driver = world["server"], world["driver"]
    driver.get(f"{server.url}/project/explorer-setuptools/")
    assert driver.current_url == f"{server.url}/login?next=/project/explorer-setuptools/"
    assert driver.find_element("css selector", "form input[name=password]").is_displayed()
    shot(world, "login")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input", "--no-cache-dir",
         "--disable-pip-version-check", "--index-url", server.index, "--dest", str(tmp_path),
         "explorer-setuptools"], capture_output=True, text=True, timeout=120, env=env)
    assert pip.returncode != 0, pip.stdout + pip.stderr
    log = server.log.read_text()
    assert re.search(r'"GET /simple/explorer-setuptools/" 401 \d+ "pip/', log), log[-2000:]
    status, _ = fetch(f"{server.url}/project/explorer-setuptools/")  # a tool asking for the page
    assert status == 401


def test_login_and_search(world) -> None:  # type: ignore[no-untyped-def]
    server, driver = world["server"], world["driver"]
    driver.find_element("name", "user").send_keys(ALICE[0])
    driver.find_element("name", "password").send_keys(ALICE[1])
    driver.find_element("css selector", "form.stack button[type=submit]").click()
    wait_for(driver, lambda d: d.current_url == f"{server.url}/project/explorer-setuptools/")
    driver.get(f"{server.url}/")
    assert "4 projects" in driver.find_element("tag name", "h1").text
    shot(world, "home")
    search = driver.find_element("css selector", "form.search.big input[name=q]")
    search.send_keys("explorer")
    search.submit()
    wait_for(driver, lambda d: "/search/" in d.current_url)
    links = [a.get_attribute("href") for a in driver.find_elements("css selector", "ul.projects a")]
    assert links == [f"{server.url}/project/{n}/" for n in ("explorer-hatchling", "explorer-poetry",
                                                             "explorer-setuptools")]
    driver.get(f"{server.url}/search/?q=reST")  # a word of a summary
    assert [a.text for a in driver.find_elements("css selector", "ul.projects a")] == ["explorer-hatchling"]
    shot(world, "search")


@pytest.mark.parametrize("spec", SPECS[1:], ids=lambda s: f"{s.backend_label}-{s.version}")
def test_project_pages_of_real_packages(world, spec) -> None:  # type: ignore[no-untyped-def]
    server, driver = world["server"], world["driver"]
    driver.get(f"{server.url}/project/{spec.name}/")
    assert driver.find_element("css selector", "header.title h1").text == f"{spec.name} {spec.version}"
    description = driver.find_element("css selector", "section.description")
    assert description.find_element("css selector", "h1").text.startswith(spec.title)
    if spec.readme.endswith(".md"):
        assert description.find_element("css selector", "strong").text == "bold"
        assert description.find_element("css selector", "table").is_displayed()
    else:
        assert description.find_element("css selector", "em").text == "emphasis"
        assert "first item of" in description.find_element("css selector", "li").text
    install = driver.find_element("id", "install-pip").text
    assert install == f"pip install --index-url {server.url}/simple/ {spec.name}"
    copy = driver.find_element("css selector", ".install button.copy")
    assert copy.is_displayed()  # /static/copy.js ran under the CSP
    rows = driver.find_elements("css selector", "section.files tbody tr")
    shown = {r.find_element("css selector", "td a").text: r.find_element("css selector", "code.sha256").text
             for r in rows}
    assert len(shown) == 2 and all(world["hashes"][f] == h for f, h in shown.items())
    versions = [a.text for a in driver.find_elements("css selector", "ol.releases a")]
    assert spec.version in versions
    assert "Ada Lovelace" in driver.find_element("css selector", "aside.meta").text
    assert no_overflow(driver)
    shot(world, f"project-{spec.name}")


def test_a_hostile_readme_runs_nothing_and_breaks_nothing(world) -> None:  # type: ignore[no-untyped-def]
    from selenium.common.exceptions import NoAlertPresentException

    server, driver = world["server"], world["driver"]
    for width in (1280, 390):
        driver.set_window_size(width, 900)
        driver.get(f"{server.url}/project/hostile-readme/")
        with pytest.raises(NoAlertPresentException):
            driver.switch_to.alert.text  # noqa: B018
        assert driver.execute_script("return typeof window.pwned") == "undefined"
        for link in driver.find_elements("css selector", "section.description a"):
            link_href = link.get_attribute("href") or ""
            assert not link_href.lower().startswith("javascript:")
        assert driver.execute_script("return document.querySelectorAll('section.description img, "
                                     "section.description iframe, section.description form').length") == 0
        images = [a.get_attribute("href") for a in driver.find_elements("css selector", "a.image-link")]
        assert "https://tracker.example/pixel.png" in images  # a link to click, never loaded
        assert no_overflow(driver), f"the page is wider than the window at {width}px"
        overlay = driver.execute_script(
            "var d = [...document.querySelectorAll('section.description div')].find(e => e.textContent == 'overlay');"
            "return d ? getComputedStyle(d).position : null")
        assert overlay in (None, "static")
        # the links still work: clicking the javascript: one does nothing
        for link in driver.find_elements("css selector", "section.description a:not([href])"):
            link.click()
        assert driver.execute_script("return typeof window.pwned") == "undefined"
        shot(world, f"hostile-{width}")
    driver.set_window_size(1280, 900)


def test_tokens_are_made_and_revoked_in_the_account_page(world) -> None:  # type: ignore[no-untyped-def]
    server, driver = world["server"], world["driver"]
    driver.get(f"{server.url}/account/")
    driver.find_element("name", "description").send_keys("browser test")
    driver.find_element("name", "projects").send_keys("explorer-poetry")
    driver.find_element("css selector", "form[action='/account/tokens'] button").click()
    token = wait_for(driver, lambda d: d.find_element("id", "new-token").text)
    assert token.startswith("spoold_")
    shot(world, "account-new-token")
    assert fetch(f"{server.url}/simple/explorer-poetry/", ("__token__", token))[0] == 200
    status, body = fetch(f"{server.url}/pypi/explorer-setuptools/json", ("__token__", token))
    assert status == 404  # the token is limited to explorer-poetry
    doc = json.loads(fetch(f"{server.url}/pypi/explorer-poetry/json", ("__token__", token))[1])
    assert doc["info"]["name"] == "explorer-poetry"
    driver.get(f"{server.url}/account/")
    assert token not in driver.page_source  # shown once
    driver.find_element("css selector", "tr.token-row button.danger").click()
    wait_for(driver, text_of("p.notice", "was revoked"))
    assert fetch(f"{server.url}/simple/explorer-poetry/", ("__token__", token))[0] == 401


def test_yank_and_unyank_through_the_manage_page(world) -> None:  # type: ignore[no-untyped-def]
    server, driver = world["server"], world["driver"]
    driver.get(f"{server.url}/project/explorer-setuptools/")
    driver.find_element("link text", "Manage this project").click()
    box = wait_for(driver, lambda d: d.find_element("id", "release-1.1.0"))
    box.find_element("name", "reason").send_keys("broken wheel")
    box.find_element("css selector", "button.danger").click()
    wait_for(driver, text_of("p.notice", "Yanked 1.1.0"))
    shot(world, "manage")
    driver.get(f"{server.url}/project/explorer-setuptools/")
    assert driver.find_element("css selector", "header.title h1").text == "explorer-setuptools 1.0.0"
    assert "yanked: broken wheel" in driver.find_element("css selector", "ol.releases").text
    driver.get(f"{server.url}/project/explorer-setuptools/1.1.0/")
    assert "Yanked: broken wheel" in driver.find_element("css selector", "p.warning").text
    shot(world, "release-yanked")
    doc = json.loads(fetch(f"{server.url}/pypi/explorer-setuptools/json", ALICE)[1])
    assert all(f["yanked"] and f["yanked_reason"] == "broken wheel" for f in doc["releases"]["1.1.0"])
    driver.get(f"{server.url}/project/explorer-setuptools/manage/")
    driver.find_element("id", "release-1.1.0").find_element("css selector", "button").click()
    wait_for(driver, text_of("p.notice", "Unyanked 1.1.0"))
    driver.get(f"{server.url}/project/explorer-setuptools/")
    assert driver.find_element("css selector", "header.title h1").text == "explorer-setuptools 1.1.0"
    events = subprocess.run([sys.executable, "-m", "spoold", "events", "--storage", server.storage, "--json"],
                            capture_output=True, text=True, check=True)
    actions = [(e["action"], e["principal"]) for e in json.loads(events.stdout)]
    assert ("yank", "alice") in actions and ("unyank", "alice") in actions
    assert ("token-create", "alice") in actions and ("token-revoke", "alice") in actions


class _Evil(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:  # noqa: N802
        page = (f'<!DOCTYPE html><form method="post" action="{self.target}">'
                '<input name="target" value="1.1.0"><input name="reason" value="forged">'
                '<input name="csrf" value="guessed"><button id="go">Win a prize</button></form>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: object) -> None:
        pass


def test_a_forged_cross_site_post_is_refused(world) -> None:  # type: ignore[no-untyped-def]
    server, driver = world["server"], world["driver"]
    _Evil.target = f"{server.url}/project/explorer-setuptools/manage/yank"
    evil = http.server.ThreadingHTTPServer(("127.0.0.2", 0), _Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        driver.get(f"http://127.0.0.2:{evil.server_address[1]}/")
        driver.find_element("id", "go").click()
        wait_for(driver, lambda d: d.current_url.startswith(server.url))
        wait_for(driver, text_of("h1", "Refused"))
        shot(world, "forged-post")
    finally:
        evil.shutdown()
    doc = json.loads(fetch(f"{server.url}/pypi/explorer-setuptools/1.1.0/json", ALICE)[1])
    assert doc["info"]["yanked"] is False


def test_logout(world) -> None:  # type: ignore[no-untyped-def]
    server, driver = world["server"], world["driver"]
    driver.get(f"{server.url}/")
    driver.find_element("css selector", "nav.who button").click()
    wait_for(driver, lambda d: "Log in" in d.find_element("css selector", "nav.who").text)
    driver.get(f"{server.url}/account/")
    assert driver.current_url.startswith(f"{server.url}/login")
