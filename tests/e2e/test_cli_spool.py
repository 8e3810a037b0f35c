"""`spoold drop` and `spoold status` as a user runs them: real processes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testlib.distbuild import write_wheel  # noqa: E402

from spoold.spool.names import ItemName  # noqa: E402
from spoold.spool.queue import Spool  # noqa: E402
from testlib.spoolwork import claim_next


def spoold(*args: str | bytes, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spoold", *args], capture_output=True, cwd=cwd)


def test_drop_delivers_whole_files_and_status_counts_them(spool, tmp_path):
    wheels = [write_wheel(tmp_path, "demo", f"1.{i}") for i in range(3)]
    result = spoold("drop", "--spool", str(spool.root), "-v", *map(str, wheels))
    assert result.returncode == 0, result.stderr
    items = result.stdout.decode().split()
    assert sorted(os.listdir(spool.new)) == sorted(items)
    assert {ItemName.parse(i).filename for i in items} == {w.name for w in wheels}
    status = json.loads(spoold("status", "--spool", str(spool.root), "--json").stdout)
    assert status == {"incoming": 0, "tmp": 0, "new": 3, "cur": 0, "deferred": 0, "done": 0,
                      "failed": 0, "failures": []}


def test_status_lists_failures_with_reasons(spool):
    claim = spool.claim(spool.deliver_bytes(b"x", "demo-1.0.tar.gz"))
    spool.fail(claim, "invalid-archive", "not a gzip file; rebuild the sdist")
    text = spoold("status", "--spool", str(spool.root)).stdout.decode()
    assert "failed    1" in text
    assert "demo-1.0.tar.gz: [invalid-archive] not a gzip file; rebuild the sdist" in text
    data = json.loads(spoold("status", "--spool", str(spool.root), "--json").stdout)
    assert data["failures"][0]["filename"] == "demo-1.0.tar.gz"
    assert data["failures"][0]["error"] == "not a gzip file; rebuild the sdist"


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["drop", "x-1.0.tar.gz"]])
def test_missing_spool_is_one_line_not_a_traceback(tmp_path, command):
    result = spoold(*command, "--spool", str(tmp_path / "nope"))
    assert result.returncode == 78  # the configuration status (spoold.cli.exits)
    err = result.stderr.decode()
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "no spool at" in err


def test_spool_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    result = spoold("status", "--spool", str(tmp_path / "file"))
    assert result.returncode == 78 and "Traceback" not in result.stderr.decode()


@pytest.mark.parametrize("name", [
    b"notes.txt", b".hidden-1.0.tar.gz", b"caf\xe9-1.0.tar.gz", b"x" * 200 + b"-1.0.tar.gz",
    b"<script>-1.0.tar.gz", b"new\nline-1.0.tar.gz",
])
def test_drop_refuses_hostile_or_non_distribution_names(spool, tmp_path, name):
    path = os.path.join(os.fsencode(tmp_path), name)
    with open(path, "wb") as f:
        f.write(b"x")
    result = spoold(b"drop", b"--spool", os.fsencode(spool.root), path)
    assert result.returncode == 1
    err = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err and err.startswith("spoold drop: ")
    assert os.listdir(spool.new) == [] and os.listdir(spool.tmp) == []


def test_drop_of_missing_file_says_so_and_delivers_the_rest(spool, tmp_path):
    wheel = write_wheel(tmp_path, "demo", "1.0")
    result = spoold("drop", "--spool", str(spool.root), str(tmp_path / "gone-1.0.tar.gz"), str(wheel))
    assert result.returncode == 1
    assert "gone-1.0.tar.gz: not a regular file" in result.stderr.decode()
    assert len(os.listdir(spool.new)) == 1


def test_status_survives_hostile_names_on_disk(spool):
    for raw in [b"caf\xe9-1.0.tar.gz", b"line\nbreak.whl"]:
        with open(os.path.join(os.fsencode(spool.new), raw), "wb") as f:
            f.write(b"x")
    claim_next(Spool(spool.root))
    claim_next(Spool(spool.root))
    result = spoold("status", "--spool", str(spool.root), "--json")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["failed"] == 2
    assert {f["code"] for f in data["failures"]} == {"invalid-filename"}
    assert all("(was " in f["error"] for f in data["failures"]), "the original name is quoted"


def make_unwritable(folder: Path) -> None:
    """chmod is no obstacle to root; the immutable attribute is."""
    if os.getuid() != 0:
        os.chmod(folder, 0o555)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root and chattr +i is unavailable here: cannot make a folder unwritable")


def make_writable(folder: Path) -> None:
    if os.getuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
    else:
        os.chmod(folder, 0o755)


def test_unwritable_spool_is_one_line_not_a_traceback(spool, tmp_path):
    wheel = write_wheel(tmp_path, "demo", "1.0")
    make_unwritable(spool.new)
    try:
        result = spoold("drop", "--spool", str(spool.root), str(wheel))
    finally:
        make_writable(spool.new)
    err = result.stderr.decode()
    assert result.returncode == 78
    assert "not writable" in err and err.count("\n") == 1 and "Traceback" not in err
    # Reading it is still fine.
    assert spoold("status", "--spool", str(spool.root)).returncode == 0


def test_drop_into_an_empty_directory_makes_the_spool(tmp_path):
    root = tmp_path / "spool"
    root.mkdir()
    wheel = write_wheel(tmp_path, "demo", "1.0")
    result = spoold("drop", "--spool", str(root), str(wheel))
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(root)) == ["cur", "deferred", "done", "failed", "incoming", "new", "tmp"]
    assert len(os.listdir(root / "new")) == 1


def test_drop_refuses_a_directory_that_is_not_a_spool(tmp_path):
    root = tmp_path / "home"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    wheel = write_wheel(tmp_path, "demo", "1.0")
    result = spoold("drop", "--spool", str(root), str(wheel))
    assert result.returncode == 78
    err = result.stderr.decode()
    assert "is not a spool" in err and err.count("\n") == 1
    assert sorted(os.listdir(root)) == ["notes.txt"]


def test_status_says_how_to_retry_and_retry_does_it(spool):
    claim = spool.claim(spool.deliver_bytes(b"x", "demo-1.0.tar.gz"))
    spool.fail(claim, "invalid-archive", "not a gzip file")
    text = spoold("status", "--spool", str(spool.root)).stdout.decode()
    assert "spoold retry ITEM" in text
    result = spoold("retry", "--spool", str(spool.root), "demo-1.0.tar.gz")
    assert result.returncode == 0, result.stderr
    assert os.listdir(spool.failed) == [] and len(os.listdir(spool.new)) == 1
    missing = spoold("retry", "--spool", str(spool.root), "nothing-1.0.tar.gz")
    assert missing.returncode == 1 and b"no such item" in missing.stderr
