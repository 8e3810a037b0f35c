"""The shipped nginx configuration in front of a private index: reads are checked by
spoold (auth_request), answered from the static tree, and never leak a hidden project."""

from __future__ import annotations

import base64
import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from spoold.access.accounts import add_user
from testlib.distbuild import write_wheel
from testlib.nginxserver import Nginx, nginx_binary, start_nginx
from testlib.serveproc import Server, post_file

PASSWORD = "correct horse"
pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (CI installs it)")


def fetch(nginx: Nginx, path: str, authorization: str | None = None,
          accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=30)
    headers = {k: v for k, v in (("Authorization", authorization), ("Accept", accept)) if v}
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    result = response.status, dict(response.getheaders()), response.read()
    conn.close()
    return result


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("nginx-private")
    htpasswd = tmp / "htpasswd"
    add_user(htpasswd, "alice", PASSWORD, rounds=4)
    store = tmp / "store"
    store.mkdir()
    with Server(tmp, str(store), htpasswd=htpasswd, extra={"read": "private"}) as server:
        files = {}
        for name in ("demo", "secret"):
            wheel = write_wheel(tmp, name, "1.0")
            status, body = post_file(server.upload, wheel, ("alice", PASSWORD), name=name)
            assert status == 200, body
            files[name] = wheel
        created = subprocess.run(
            [sys.executable, "-m", "spoold", "token", "create", "--user", "alice", "--project", "demo",
             "--config", str(server.config)], capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip().splitlines()[-1]
        upstream = urlsplit(server.url).netloc
        nginx = start_nginx(tmp / "nginx", root=store, upstream=upstream)
        try:
            yield {"nginx": nginx, "files": files, "token": token}
        finally:
            nginx.stop()
            server.stop()


def test_anonymous_reads_get_the_challenge(setup: dict) -> None:
    for path in ("/simple/", "/simple/demo/", f"/packages/demo/{setup['files']['demo'].name}"):
        status, headers, _ = fetch(setup["nginx"], path)
        assert status == 401, path
        assert headers["WWW-Authenticate"].startswith('Basic realm="spoold"')


def test_a_limited_token_sees_its_project_only(setup: dict) -> None:
    nginx, files = setup["nginx"], setup["files"]
    bearer = f"Bearer {setup['token']}"
    assert fetch(nginx, f"/packages/demo/{files['demo'].name}", bearer)[2] == files["demo"].read_bytes()
    hidden = fetch(nginx, f"/packages/secret/{files['secret'].name}", bearer)
    absent = fetch(nginx, "/packages/nothere/nothere-1.0-py3-none-any.whl", bearer)
    assert hidden[0] == absent[0] == 404 and hidden[2] == absent[2]  # spoold's own 404 for both
    assert fetch(nginx, "/simple/secret/", bearer)[0] == 404
    status, _, body = fetch(nginx, "/simple/", bearer, accept="application/vnd.pypi.simple.v1+json")
    assert status == 200 and [p["name"] for p in json.loads(body)["projects"]] == ["demo"]
    assert fetch(nginx, "/simple/index.v1.json", bearer)[0] == 404  # not the full stored root
    full = fetch(nginx, "/simple/", "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode(),
                 accept="application/vnd.pypi.simple.v1+json")
    assert sorted(p["name"] for p in json.loads(full[2])["projects"]) == ["demo", "secret"]


def test_pip_installs_with_a_token_through_nginx(setup: dict, tmp_path: Path) -> None:
    nginx = setup["nginx"]
    index = nginx.url.replace("http://", f"http://{setup['token']}@") + "/simple/"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir",
         "--disable-pip-version-check", "--target", str(tmp_path / "t"), "--index-url", index, "demo"],
        capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "t" / "demo").is_dir()
    assert setup["token"] not in nginx.error_log()  # never logged


def test_the_explorer_and_json_api_through_nginx(setup: dict) -> None:
    """The explorer and the JSON API come from spoold with URLs of the address the client
    used; a browser's login session then opens the static tree too (the access check
    sends the cookie), and a limited token sees its project only, there as elsewhere."""
    import re
    from urllib.parse import urlencode

    nginx, files = setup["nginx"], setup["files"]
    alice = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    bearer = f"Bearer {setup['token']}"
    status, _, body = fetch(nginx, "/pypi/demo/json", alice)
    assert status == 200
    urls = [u["url"] for u in json.loads(body)["urls"]]
    assert urls == [f"{nginx.url}/packages/demo/{files['demo'].name}"]
    assert fetch(nginx, "/pypi/secret/json", bearer)[0] == 404
    assert fetch(nginx, "/pypi/secret/json", alice)[0] == 200
    page = fetch(nginx, "/project/demo/", alice, accept="text/html")
    assert page[0] == 200 and b"pip install" in page[2]
    searched = fetch(nginx, "/search/?q=e", bearer, accept="text/html")[2]
    assert b'href="/project/demo/"' in searched and b"/project/secret/" not in searched
    # A browser without a session is sent to the login page; pip still gets the challenge.
    browser = fetch(nginx, "/project/demo/", accept="text/html")
    assert browser[0] == 303 and browser[1]["Location"].startswith("/login")
    assert fetch(nginx, "/simple/demo/", accept="text/html")[0] == 401

    form = fetch(nginx, "/login", accept="text/html")
    csrf = re.search(rb'name="csrf" value="([^"]*)"', form[2])[1].decode()
    cookies = "; ".join(v.split(";", 1)[0] for k, v in form[1].items() if k.lower() == "set-cookie")
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=30)
    conn.request("POST", "/login", body=urlencode({"user": "alice", "password": PASSWORD, "csrf": csrf,
                                                  "next": "/"}),
                 headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookies,
                          "Origin": nginx.url, "Accept": "text/html"})
    response = conn.getresponse()
    response.read()
    session = [v.split(";", 1)[0] for k, v in response.getheaders() if k.lower() == "set-cookie"
               and v.startswith("spoold_session=")]
    conn.close()
    assert response.status == 303 and session, response.getheaders()
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=30)
    conn.request("GET", f"/packages/demo/{files['demo'].name}", headers={"Cookie": session[0]})
    download = conn.getresponse()
    assert download.status == 200 and download.read() == files["demo"].read_bytes()
    conn.close()
