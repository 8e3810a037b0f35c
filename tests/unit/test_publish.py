"""Publishing: the contract (tests/testlib/publish_contract.py) on the in-memory and
local backends, and the maintenance commands. S3: tests/adapter/test_publish_s3.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from spoold.access.store import AccessStore
from spoold.cli import admin
from spoold.index import publish, reindex
from spoold.storage import Storage, open_storage
from spoold.storage.local import LocalStorage
from spoold.testing.dists import make_distribution
from testlib.backends import make_storage
from testlib.publish_contract import *  # noqa: F403  (the contract's tests run here)


@pytest.fixture(params=["memory", "local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return make_storage(request.param, tmp_path)


def test_reindex_default_extractor_reads_wheel_metadata(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    d, p = make_distribution("plain", "1.0", tmp_path)
    storage.put_file(file_key("plain", d.filename), p, d.sha256)
    reindex(storage)
    assert storage.read_bytes(metadata_key("plain", d.filename)) == d.metadata


# -- admin commands -----------------------------------------------------------------------------


def test_admin_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = str(tmp_path / "store")
    storage = open_storage(url)
    d, p = make_distribution("cli", "1.0", tmp_path)
    publish(storage, d, p)

    assert admin.yank_command(url, "cli", "1.0", "why") == 0
    assert f"yanked {d.filename}" in capsys.readouterr().out
    assert admin.unyank_command(url, "cli", "1.0") == 0
    assert admin.yank_command(url, "cli", "7.0") == 1
    err = capsys.readouterr().err
    assert err.startswith("spoold yank: error: cli has no file or version '7.0'")
    assert "Traceback" not in err and err.count("\n") == 1
    assert admin.yank_command(url, "cli", "9" * 5000) == 1  # more digits than int() takes
    err = capsys.readouterr().err
    assert "no file or version" in err and len(err) < 300
    assert admin.reindex_command(url, []) == 0
    assert "reindexed 1 project(s), 1 file(s)" in capsys.readouterr().out
    assert admin.reindex_command(url, ["missing"]) == 1
    assert "nothing is stored under packages/missing/" in capsys.readouterr().err
    assert admin.remove_command(url, "cli", "nope.whl") == 1
    assert admin.remove_command(url, "cli", "../../etc/passwd") == 1
    assert "is not a distribution filename" in capsys.readouterr().err
    assert admin.remove_command(url, "cli", d.filename) == 0
    events = [(e.action, e.project, e.filename, e.detail) for e in AccessStore(storage).events()]
    assert events == [("yank", "cli", d.filename, "why"), ("unyank", "cli", d.filename, None),
                      ("remove", "cli", d.filename, None)]  # what changed nothing is no event
    assert all(e.principal.startswith("cli") for e in AccessStore(storage).events())
    assert admin.yank_command("ftp://x", "cli", "1.0") == 78
    assert "unsupported scheme" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert admin.reindex_command(str(blocker / "store"), []) == 78
    assert "does not exist" in capsys.readouterr().err
