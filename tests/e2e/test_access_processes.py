"""Access across real processes: the race for a new project's ownership, tokens shared by
two hosts on one bucket, and the failed-login throttle."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from spoold.access.accounts import add_user
from testlib.distbuild import write_wheel
from testlib.s3server import moto_server, new_bucket  # noqa: F401  (fixture)
from testlib.serveproc import Server, post_file

PASSWORD = "correct horse"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def get(url: str, path: str, authorization: str | None = None, *,
        source: str | None = None) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request("GET", path, headers={"Authorization": authorization} if authorization else {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    path = tmp_path / "htpasswd"
    for user in ("alice", "bob"):
        add_user(path, user, PASSWORD, rounds=4)
    return path


def test_two_users_creating_one_project_at_once_one_owner(tmp_path: Path, htpasswd: Path) -> None:
    """Two servers (two hosts' worth: spools of their own) on one storage; alice uploads
    through one, bob through the other, at the same moment, again and again."""
    store = tmp_path / "store"
    store.mkdir()
    extra = {"read": "private", "admins": [], "threads": 2}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with Server(tmp_path / "a", str(store), htpasswd=htpasswd, extra=extra) as a, \
         Server(tmp_path / "b", str(store), htpasswd=htpasswd, extra=extra) as b:
        dists = tmp_path / "dists"
        dists.mkdir()
        for round_ in range(12):
            project = f"race-{round_}"
            wheels = {"alice": write_wheel(dists, project, "1.0"), "bob": write_wheel(dists, project, "2.0")}
            results: dict[str, int] = {}
            barrier = threading.Barrier(2)

            def upload(user: str, server: Server) -> None:
                barrier.wait()
                status, _ = post_file(server.upload, wheels[user], (user, PASSWORD), name=project,
                                      version="1.0" if user == "alice" else "2.0")
                results[user] = status

            threads = [threading.Thread(target=upload, args=(u, s)) for u, s in (("alice", a), ("bob", b))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
            assert sorted(results.values()) == [200, 403], (round_, results)
            winner = next(user for user, status in results.items() if status == 200)
            roles = subprocess.run([sys.executable, "-m", "spoold", "role", "list", project, "--json",
                                    "--storage", str(store)], capture_output=True, text=True, timeout=60)
            assert json.loads(roles.stdout) == [{"user": winner, "role": "owner"}], (round_, roles.stderr)
        a.stop()
        b.stop()


def test_a_token_made_through_one_host_works_on_the_other_and_its_revocation_too(
    tmp_path: Path, htpasswd: Path, moto_server: str  # noqa: F811
) -> None:
    url = f"s3://{new_bucket()}/pypi"
    extra = {"read": "private", "page_cache": 1.0}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with Server(tmp_path / "a", url, htpasswd=htpasswd, extra=extra) as a, \
         Server(tmp_path / "b", url, htpasswd=htpasswd, extra=extra) as b:
        cli = [sys.executable, "-m", "spoold", "token"]
        created = subprocess.run([*cli, "create", "--user", "alice", "--json", "--storage", url,
                                  "--htpasswd", str(htpasswd)], capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stderr
        doc = json.loads(created.stdout)
        bearer = f"Bearer {doc['token']}"
        assert get(a.url, "/simple/", bearer)[0] == 200
        assert get(b.url, "/simple/", bearer)[0] == 200  # the other host reads the same record
        revoked = subprocess.run([*cli, "revoke", doc["id"], "--storage", url], capture_output=True,
                                 text=True, timeout=60)
        assert revoked.returncode == 0, revoked.stderr
        deadline = time.monotonic() + 15  # page_cache is 1 s: far sooner in practice
        while get(b.url, "/simple/", bearer)[0] != 401:
            assert time.monotonic() < deadline, "host b still accepts a revoked token"
            time.sleep(0.2)
        assert get(a.url, "/simple/", bearer)[0] == 401
        a.stop()
        b.stop()


def test_fifty_wrong_passwords_are_throttled_and_others_are_not_slowed(tmp_path: Path, htpasswd: Path) -> None:
    (tmp_path / "store").mkdir()
    with Server(tmp_path, str(tmp_path / "store"), htpasswd=htpasswd,
                extra={"read": "private", "admins": []}) as server:
        statuses = []
        for attempt in range(50):
            status, headers, _ = get(server.url, "/simple/", basic("alice", f"guess {attempt}"))
            statuses.append(status)
            if status == 429:
                assert int(headers["Retry-After"]) <= 60
        assert statuses[:10] == [401] * 10 and set(statuses[11:]) == {429}
        # Meanwhile bob, from another address, uploads and reads as usual.
        wheel = write_wheel(tmp_path, "bobs-lib", "1.0")
        status, body = post_file(server.upload, wheel, ("bob", PASSWORD), name="bobs-lib",
                                 source="127.0.0.2")
        assert status == 200, body
        assert get(server.url, "/simple/bobs-lib/", basic("bob", PASSWORD), source="127.0.0.2")[0] == 200
        # alice herself is locked out for the minute, from anywhere, even with the right password.
        assert get(server.url, "/simple/", basic("alice", PASSWORD), source="127.0.0.3")[0] == 429
        server.stop()
