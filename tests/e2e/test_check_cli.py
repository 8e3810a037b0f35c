"""``spoold check`` as a real process: planted damage found and repaired (local and S3 on
moto), the JSON report, exit statuses, and the progress line on a terminal only."""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from spoold.index import publish
from spoold.inspection import inspect_file
from spoold.storage import open_storage
from spoold.storage.keys import ROOT_JSON, file_key, project_html_key, project_json_key
from testlib.check_damage import Killed, built, crash_at, flip_byte, overwrite, plant_temporary, published
from testlib.s3server import ENV, moto_endpoint, new_bucket


def spoold(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spoold", *args],
        capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL,
    )


def on_a_terminal(*args: str) -> tuple[int, str, bytes]:
    """Run with stderr on a pseudo-terminal; returns status, stdout, what the terminal got."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "spoold", *args],
        stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, text=True,
    )
    os.close(slave)
    screen = bytearray()
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        screen += data
    os.close(master)
    out = proc.stdout.read() if proc.stdout else ""
    return proc.wait(timeout=60), out, bytes(screen)


def damage(storage_url: str, tmp_path: Path, *, flip: bool = True) -> dict[str, str]:
    """A published tree with one of each kind of damage; returns the key of each."""
    storage = open_storage(storage_url)
    for name in ("flip", "page", "broken", "temp"):
        published(storage, tmp_path, name, "1.0")
    flipped = published(storage, tmp_path, "flip", "2.0")
    if flip:
        flip_byte(storage, file_key("flip", flipped[0].filename))
    overwrite(storage, project_html_key("page"), b"<html>stale</html>")
    overwrite(storage, project_json_key("broken"), b'{"name": "broken", "files": [')
    orphan, path = built(tmp_path, "page", "2.0")
    storage.put_file(file_key("page", orphan.filename), path, orphan.sha256)
    late, path = built(tmp_path, "late", "1.0")
    crash_at(storage, "doc-read", ROOT_JSON)
    with pytest.raises(Killed):
        publish(storage, late, path)
    temp = "packages/temp/.temp-1.0-py3-none-any.whl.3f2e.tmp"
    plant_temporary(storage, temp, timedelta(hours=2))
    return {
        "corrupt-file": file_key("flip", flipped[0].filename),
        "stale-page": project_html_key("page"),
        "corrupt-manifest": project_json_key("broken"),
        "orphan-file": file_key("page", orphan.filename),
        "root-missing": ROOT_JSON,
        "stale-temporary": temp,
        "_flipped": str(flipped[1]),
    }


def test_check_finds_and_repairs_damage_on_local_storage(tmp_path: Path) -> None:
    url = str(tmp_path / "storage")
    planted = damage(url, tmp_path)
    flipped = Path(planted.pop("_flipped"))

    result = spoold("check", "--storage", url)
    assert result.returncode == 1 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert {tuple(line.split(" ", 2)[:2]) for line in lines[:-1]} == {
        (kind, key + ":") for kind, key in planted.items()
    }
    assert lines[-1] == (
        "checked 5 project(s), 10 file(s) (0.0 MiB): 6 problem(s), 5 repairable with `spoold check --repair`"
    )

    result = spoold("check", "--storage", url, "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 1 and report["ok"] is False
    assert {(f["kind"], f["key"], f["repairable"]) for f in report["findings"]} == {
        (kind, key, kind != "corrupt-file") for kind, key in planted.items()
    }

    result = spoold("check", "--storage", url, "--repair", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 1
    assert [f["kind"] for f in report["findings"] if not f["repaired"]] == ["corrupt-file"]
    assert report["counts"]["repaired"] == 5 and report["counts"]["unrepaired"] == 1

    # What the message says: remove the entry, upload the original file again.
    assert spoold("remove", "--storage", url, "flip", flipped.name).returncode == 0
    publish(open_storage(url), inspect_file(flipped, flipped.name), flipped)
    result = spoold("check", "--storage", url)
    assert result.returncode == 0, result.stdout
    assert result.stdout == "checked 5 project(s), 14 file(s) (0.0 MiB): ok\n"


def test_check_repairs_damage_on_s3(tmp_path: Path) -> None:
    """Only repairable damage (S3 objects cannot be aged, so the temporary is young)."""
    moto_endpoint()
    url = f"s3://{new_bucket()}/index"
    planted = damage(url, tmp_path, flip=False)
    result = spoold("check", "--storage", url, "--json")
    assert result.returncode == 1, result.stderr
    assert {(f["kind"], f["key"]) for f in json.loads(result.stdout)["findings"]} == {
        (kind, planted[kind]) for kind in ("stale-page", "corrupt-manifest", "orphan-file", "root-missing")
    }
    result = spoold("check", "--storage", url, "--repair")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("[repaired: ") == 4
    assert spoold("check", "--storage", url).stdout == "checked 5 project(s), 14 file(s) (0.0 MiB): ok\n"


def test_progress_line_only_on_a_terminal(tmp_path: Path) -> None:
    url = str(tmp_path / "storage")
    storage = open_storage(url)
    for name in ("one", "two", "three"):
        published(storage, tmp_path, name, "1.0")
    status, out, screen = on_a_terminal("check", "--storage", url)
    assert status == 0 and out.endswith(": ok\n")
    for step in (b"\rchecking [1/3] one", b"\rchecking [2/3] three", b"\rchecking [3/3] two"):
        assert step in screen
    assert screen.endswith(b"\r" + b" " * 79 + b"\r")
    piped = spoold("check", "--storage", url)
    assert piped.returncode == 0 and piped.stderr == "" and "\r" not in piped.stdout


def test_exit_statuses(tmp_path: Path) -> None:
    bad = spoold("check", "--storage", "ftp://host/x")
    assert bad.returncode == 78 and bad.stderr.startswith("spoold check: error: storage URL")
    typo = spoold("check", "--storage", str(tmp_path / "typo"))
    assert typo.returncode == 78 and "no storage directory" in typo.stderr
    assert spoold("check", "--frobnicate").returncode == 2

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, **ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
           "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}"}
    started = time.monotonic()
    down = spoold("check", "--storage", "s3://bucket/index", env=env)
    assert down.returncode == 75, down.stderr
    assert "nothing was lost; run it again" in down.stderr and down.stderr.count("\n") == 1
    assert time.monotonic() - started < 60


def test_storage_from_a_config_file(tmp_path: Path) -> None:
    url = str(tmp_path / "storage")
    published(open_storage(url), tmp_path, "pkg", "1.0")
    overwrite(open_storage(url), project_html_key("pkg"), b"old")
    config = tmp_path / "spoold.toml"
    config.write_text(f'storage = "{url}"\n')
    assert spoold("check", "--config", str(config)).returncode == 1
    assert spoold("check", "--config", str(config), "--repair").returncode == 0
    assert spoold("check", "--config", str(config)).returncode == 0
