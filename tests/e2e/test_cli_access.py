"""``spoold token``, ``spoold role`` and ``spoold events`` as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spoold.access.accounts import add_user


def spoold(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spoold", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "store").mkdir()
    add_user(tmp_path / "htpasswd", "alice", "correct horse", rounds=4)
    path = tmp_path / "spoold.toml"
    path.write_text(f'storage = "{tmp_path / "store"}"\nhtpasswd = "{tmp_path / "htpasswd"}"\n')
    return path


def test_token_create_list_revoke(config: Path) -> None:
    created = spoold("token", "create", "--user", "alice", "--scope", "upload", "--project", "Demo",
                     "--expires", "30", "--description", "CI of demo", config=config)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]  # alone on the last line
    assert secret.startswith("spoold_") and " " not in secret
    as_json = spoold("token", "create", "--user", "alice", "--json", config=config)
    doc = json.loads(as_json.stdout)
    assert doc["token"].startswith("spoold_") and doc["id"] in doc["token"]
    listing = json.loads(spoold("token", "list", "--json", config=config).stdout)
    assert len(listing) == 2 and all("token" not in t and "sha256" not in t for t in listing)
    mine = next(t for t in listing if t["projects"] == ["demo"])
    assert mine["scopes"] == ["upload"] and mine["description"] == "CI of demo"
    assert mine["expires"] is not None and mine["last_used"] is None
    assert secret not in spoold("token", "list", config=config).stdout
    revoked = spoold("token", "revoke", mine["id"], config=config)
    assert revoked.returncode == 0 and mine["id"] in revoked.stdout
    assert len(json.loads(spoold("token", "list", "--json", config=config).stdout)) == 1
    again = spoold("token", "revoke", mine["id"], config=config)
    assert again.returncode == 1 and "no token" in again.stderr


def test_token_for_an_unknown_user_is_refused(config: Path) -> None:
    result = spoold("token", "create", "--user", "mallory", config=config)
    assert result.returncode == 78 and "no user 'mallory'" in result.stderr
    assert result.stderr.count("\n") == 1


def test_roles_and_the_events_they_leave(config: Path) -> None:
    assert spoold("role", "set", "Demo", "alice", "owner", config=config).returncode == 0
    assert spoold("role", "set", "demo", "bob", "maintainer", config=config).returncode == 0
    roles = json.loads(spoold("role", "list", "demo", "--json", config=config).stdout)
    assert roles == [{"user": "alice", "role": "owner"}, {"user": "bob", "role": "maintainer"}]
    assert spoold("role", "unset", "demo", "bob", config=config).returncode == 0
    assert spoold("role", "unset", "demo", "bob", config=config).returncode == 1
    events = json.loads(spoold("events", "demo", "--json", config=config).stdout)
    assert [e["action"] for e in events] == ["role-set", "role-set", "role-unset"]
    assert set(events[0]) >= {"time", "action", "principal", "project", "filename", "sha256",
                              "address", "user_agent"}
    assert events[0]["principal"].startswith("cli") and events[0]["project"] == "demo"
    later = json.loads(spoold("events", "--since", "2999-01-01T00:00Z", "--json", config=config).stdout)
    assert later == []
    bad = spoold("events", "--since", "yesterday", config=config)
    assert bad.returncode == 1 and "not an ISO time" in bad.stderr


def test_user_list_and_remove_stop_the_users_tokens(config: Path, tmp_path: Path) -> None:
    import json as _json

    assert spoold("user", "list", config=config).stdout.split() == ["alice"]
    created = spoold("token", "create", "--user", "alice", "--json", config=config)
    token_id = _json.loads(created.stdout)["id"]
    removed = spoold("user", "remove", "alice", config=config)
    assert removed.returncode == 0, removed.stderr
    assert "removed alice" in removed.stdout and f"revoked token {token_id}" in removed.stdout
    assert _json.loads(spoold("token", "list", "--json", config=config).stdout) == []
    assert _json.loads(spoold("user", "list", "--json", config=config).stdout) == []
    again = spoold("user", "remove", "alice", config=config)
    assert again.returncode == 1 and "no user 'alice'" in again.stderr
    events = _json.loads(spoold("events", "--json", config=config).stdout)
    assert [e["action"] for e in events] == ["token-create", "token-revoke"]


def test_a_first_start_opens_the_index_to_its_admin_only(tmp_path: Path) -> None:
    """No user yet: ``spoold serve`` creates ``admin`` (an admin by default), writes its
    password to a file only its owner reads, logs where it is but never the password, and
    the private index lets that user in and nobody else."""
    import base64
    import re
    import signal
    import time
    import urllib.error
    import urllib.request

    (tmp_path / "store").mkdir()
    config = tmp_path / "spoold.toml"
    config.write_text(f'spool = "{tmp_path / "spool"}"\nstorage = "{tmp_path / "store"}"\n'
                      f'data_dir = "{tmp_path / "data"}"\nlisten = ["tcp:0:interface=127.0.0.1"]\n')
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "spoold", "serve", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not (m := re.search(rb"serving the index at (http://127\.0\.0\.1:\d+)/", log.read_bytes())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        url = m[1].decode()
        password_file = tmp_path / "data" / "admin-password"
        assert password_file.stat().st_mode & 0o777 == 0o600
        password = password_file.read_text().strip()
        assert str(password_file) in log.read_text() and password not in log.read_text()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "/simple/", timeout=10)
        assert refused.value.code == 401
        login = urllib.request.Request(url + "/simple/", headers={
            "Authorization": "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()})
        assert urllib.request.urlopen(login, timeout=10).status == 200
        listed = spoold("user", "list", "--json", config=config)
        assert json.loads(listed.stdout) == [{"user": "admin", "admin": True}], listed.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
