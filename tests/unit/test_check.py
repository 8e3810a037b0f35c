"""spoold check: the contract (tests/testlib/check_contract.py) on the in-memory and local
backends, what is particular to local storage, the walk primitive, and the command's
handler (statuses, JSON, the progress line). S3: tests/adapter/test_check_s3.py."""

from __future__ import annotations

import io
import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from spoold.cli.check_command import check_command
from spoold.index.check import check
from spoold.index.check_report import Kind, report_lines
from spoold.storage import Storage
from spoold.storage.keys import file_key, project_html_key, project_json_key
from spoold.storage.local import HISTORY, LocalStorage
from spoold.storage.memory import MemoryStorage
from testlib.backends import make_storage
from testlib.check_contract import *  # noqa: F403  (the contract's tests run here)
from testlib.check_contract_index import *  # noqa: F403
from testlib.check_damage import flip_byte, overwrite, plant_temporary, published
from testlib.index_checks import assert_consistent


@pytest.fixture(params=["memory", "local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return make_storage(request.param, tmp_path)


# -- Storage.walk ------------------------------------------------------------------------------


def test_walk_lists_every_object_at_any_depth_hidden_names_included(storage: Storage) -> None:
    keys = ["packages/a/a-1.0.tar.gz", "packages/a/.a-1.0.tar.gz.1f.tmp", "simple/a/index.html", "top.txt"]
    for key in keys:
        storage.put_file(key, key.encode(), "0" * 64)
    walked = {o.key: o.size for o in storage.walk("")}
    assert {k: walked[k] for k in keys} == {k: len(k) for k in keys}
    assert {o.key for o in storage.walk("packages/")} == set(keys[:2])
    assert ".a-1.0.tar.gz.1f.tmp" not in {o.key.rsplit("/")[-1] for o in storage.list_files("packages/a/")}
    # The default every backend inherits sees the visible objects only.
    assert {o.key for o in Storage.walk(storage, "")} >= {keys[0], keys[2], keys[3]}
    assert keys[1] not in {o.key for o in Storage.walk(storage, "")}


def test_local_walk_sees_the_generation_history(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    storage.put_page("simple/a/index.html", b"page", 3)
    assert f"{HISTORY}/simple/a/index.html/{3:020d}" in {o.key for o in storage.walk("")}
    assert list(LocalStorage(tmp_path / "nothing-here").walk("")) == []


# -- local storage ----------------------------------------------------------------------------


def test_local_visible_manifest_older_than_its_newest_generation(tmp_path: Path) -> None:
    """A writer killed between its swap and the rename of the visible copy."""
    storage = LocalStorage(tmp_path / "store")
    published(storage, tmp_path, "pkg", "1.0")
    old = storage.read_bytes(project_json_key("pkg")) or b""
    published(storage, tmp_path, "pkg", "2.0")
    staged = storage.root / "old.json"
    staged.write_bytes(old)
    os.replace(staged, storage.root / project_json_key("pkg"))  # a copy, not the history's link
    [finding] = check(storage).findings
    assert finding.key == project_json_key("pkg") and "not the newest generation" in finding.message
    report = check(storage, repair=True)
    assert report.ok and check(storage).findings == ()
    assert len(assert_consistent(storage, "pkg").files) == 2


def test_local_stale_temporaries_anywhere_in_the_tree(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    published(storage, tmp_path, "pkg", "1.0")
    keys = [
        f"{HISTORY}/simple/pkg/index.html/.{7:020d}.5e5e.tmp",
        "simple/pkg/.index.html.77aa.tmp",
        ".top.0f.tmp",
    ]
    for key in keys:
        now = plant_temporary(storage, key, timedelta(hours=3))
    report = check(storage, now=now, repair=True)
    assert sorted(f.key for f in report.findings if f.kind is Kind.STALE_TEMPORARY and f.repaired) == sorted(keys)
    assert not any((storage.root / k).exists() for k in keys)


def test_local_tree_copied_without_its_history(tmp_path: Path) -> None:
    """Generations are not tracked there: nothing to compare, and repairs still work."""
    original = LocalStorage(tmp_path / "store")
    dist, _ = published(original, tmp_path, "pkg", "1.0")
    shutil.copytree(original.root, tmp_path / "copy", ignore=shutil.ignore_patterns(".spoold"))
    copy = LocalStorage(tmp_path / "copy")
    assert copy.generation_of(project_html_key("pkg")) is None
    assert check(copy).findings == ()
    overwrite(copy, project_json_key("pkg"), b"{")
    overwrite(copy, project_html_key("pkg"), b"old")
    assert check(copy, repair=True).ok and check(copy).findings == ()
    assert [e.sha256 for e in assert_consistent(copy, "pkg").files] == [dist.sha256]


# -- cost ----------------------------------------------------------------------------------------


def test_every_file_is_read_once_and_not_again_after_a_repair(tmp_path: Path) -> None:
    storage = MemoryStorage()
    for name in ("a", "b"):
        published(storage, tmp_path, name, "1.0")
    overwrite(storage, project_html_key("a"), b"old")
    storage.reads.clear()
    check(storage, repair=True)
    files = [k for k in storage.reads if k.startswith("packages/")]
    assert sorted(files) == sorted(set(files)) and len(files) == 4  # two wheels, two .metadata


# -- the command's handler ------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(url: object, *args: str, err: io.StringIO | None = None, **kwargs: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), err if err is not None else io.StringIO()
    status = check_command(url, out=out, err=err, **kwargs)  # type: ignore[arg-type]
    return status, out.getvalue(), err.getvalue()


def test_command_statuses_and_lines(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    storage = LocalStorage(url)
    dist, _ = published(storage, tmp_path, "pkg", "1.0")
    assert run(url) == (0, "checked 1 project(s), 2 file(s) (0.0 MiB): ok\n", "")
    overwrite(storage, project_html_key("pkg"), b"old")
    status, out, err = run(url)
    assert status == 1 and err == ""
    assert out.splitlines() == [
        "stale-page simple/pkg/index.html: does not match what its manifest renders; --repair re-renders it",
        "checked 1 project(s), 2 file(s) (0.0 MiB): 1 problem(s), 1 repairable with `spoold check --repair`",
    ]
    status, out, _ = run(url, repair=True)
    assert status == 0 and "[repaired: re-rendered from the manifest (now generation 3)]" in out
    assert out.endswith("1 problem(s), 1 repaired; ok\n")
    flip_byte(storage, file_key("pkg", dist.filename))
    overwrite(storage, project_html_key("pkg"), b"old")
    status, out, _ = run(url, repair=True)
    assert status == 1 and "[NOT repaired: needs the operator (see the message)]" in out
    assert out.endswith("2 problem(s), 1 repaired; 1 need(s) the operator\n")


def test_command_json(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    published(LocalStorage(url), tmp_path, "pkg", "1.0")
    status, out, _ = run(url, as_json=True)
    doc = json.loads(out)
    assert status == 0 and doc["ok"] is True and doc["findings"] == [] and doc["counts"]["projects"] == 1


def test_command_errors_are_one_line_with_their_status(tmp_path: Path) -> None:
    status, out, err = run("ftp://host/x")
    assert (status, out) == (78, "") and err.startswith("spoold check: error: storage URL") and err.count("\n") == 1
    status, _, err = run(str(tmp_path / "typo"))
    assert status == 78 and "no storage directory at" in err
    assert not (tmp_path / "typo").exists()
    down = MemoryStorage()
    down.down = "the in-memory storage is down"
    status, _, err = run(down)
    assert status == 75 and "the in-memory storage is down (nothing was lost; run it again)" in err


def test_progress_line_on_a_terminal_only(tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    storage = LocalStorage(url)
    for name in ("one", "two"):
        published(storage, tmp_path, name, "1.0")
    status, out, err = run(url, err=Terminal())
    assert status == 0 and out.endswith(": ok\n")
    assert "\rchecking [1/2] one" in err and "\rchecking [2/2] two" in err
    assert err.endswith("\r" + " " * 79 + "\r")  # cleared before the report
    assert run(url)[2] == ""


def test_report_lines_of_a_clean_run() -> None:
    report = check(MemoryStorage())
    assert report_lines(report) == ["checked 0 project(s), 0 file(s) (0.0 MiB): ok"]
