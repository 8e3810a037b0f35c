"""`spoold import` as an operator runs it: real processes, real source layouts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from spoold.index.manifest import parse_time
from spoold.index.pages import parse_root_json, render_root_html
from spoold.spool.names import ItemName
from spoold.storage.local import LocalStorage
from testlib.distbuild import write_sdist, write_wheel
from testlib.index_checks import manifest_of

MTIME = 1_600_000_000  # 2020-09-13T12:26:40Z


def folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def spoold(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spoold", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def aged(path: Path, when: int = MTIME) -> Path:
    os.utime(path, (when, when))
    return path


def pypiserver_dir(root: Path) -> dict[str, Path]:
    """pypiserver's two layouts in one: files at the top and in per-project folders, as
    `pypi-server run DIR` serves them, plus what such directories also collect."""
    files = {
        "flat": aged(write_wheel(folder(root), "flat-pkg", "1.0")),
        "sdist": aged(write_sdist(root, "flat-pkg", "1.0")),
        "nested": aged(write_wheel(folder(root / "nested-pkg"), "nested-pkg", "2.0"), MTIME + 60),
        "nested2": aged(write_wheel(root / "nested-pkg", "nested-pkg", "2.1"), MTIME + 120),
    }
    (root / "README.txt").write_text("the team's packages\n")
    (root / "broken-1.0-py3-none-any.whl").write_bytes(b"PK\x03\x04 truncated")
    (root / "nested-pkg" / "nested_pkg-3.0-py3-none-any.whl").write_bytes(
        (root / "flat_pkg-1.0-py3-none-any.whl").read_bytes())  # a wheel of another project
    (root / ".pypiserver.lock").write_text("")
    return files


def test_pypiserver_directory_with_bad_files(tmp_path: Path) -> None:
    files = pypiserver_dir(tmp_path / "packages")
    store, spool = tmp_path / "store", tmp_path / "spool"
    result = spoold("import", "--spool", str(spool), "--storage", str(store), str(tmp_path / "packages"))
    assert result.returncode == 1, result.stderr  # some files were refused
    assert "imported 4, skipped 0 (already published, identical), rejected 3" in result.stdout
    rejected = {line.split(": ", 1)[0].rsplit("/", 1)[-1]
                for line in result.stdout.splitlines() if line.startswith("  rejected ")}
    assert rejected == {"README.txt", "broken-1.0-py3-none-any.whl", "nested_pkg-3.0-py3-none-any.whl"}
    assert "not a distribution filename" in result.stdout
    assert "spoold import: 7/7 done" in result.stderr  # plain progress lines off a terminal

    storage = LocalStorage(store)
    flat, nested = manifest_of(storage, "flat-pkg"), manifest_of(storage, "nested-pkg")
    assert {e.filename for e in flat.files} == {files["flat"].name, files["sdist"].name}
    assert {e.upload_time for e in flat.files} == {datetime.fromtimestamp(MTIME, UTC)}
    assert {e.filename: e.upload_time.timestamp() for e in nested.files} == {
        files["nested"].name: MTIME + 60, files["nested2"].name: MTIME + 120}
    root = parse_root_json(storage.read_bytes("simple/index.v1.json") or b"")
    assert {e.project for e in root.projects} == {"flat-pkg", "nested-pkg"}
    assert render_root_html(root) == storage.read_bytes("simple/index.html")

    again = spoold("import", "--spool", str(spool), "--storage", str(store), str(tmp_path / "packages"))
    assert "imported 0, skipped 4 (already published, identical), rejected 3" in again.stdout


def test_devpi_export_keeps_the_recorded_upload_time(tmp_path: Path) -> None:
    export = tmp_path / "export"
    wheel = write_wheel(folder(export / "alice" / "dev" / "demo" / "1.0"), "demo", "1.0")
    sdist = write_sdist(export / "alice" / "dev" / "demo" / "1.0", "demo", "1.0")
    (export / "alice" / "dev" / "demo.zip").write_bytes(b"docs")
    rel = lambda p: str(p.relative_to(export))  # noqa: E731
    (export / "dataindex.json").write_text(json.dumps({
        "dumpversion": "2", "users": {},
        "indexes": {"alice/dev": {"projects": {}, "indexconfig": {"type": "stage"}, "files": [
            {"type": "releasefile", "projectname": "demo", "version": "1.0", "relpath": rel(wheel),
             "entrymapping": {"last_modified": "Tue, 01 Feb 2022 10:00:00 GMT"},
             "log": [{"what": "upload", "who": "alice", "when": [2021, 3, 4, 5, 6, 7], "dst": "alice/dev"}]},
            {"type": "releasefile", "projectname": "demo", "version": "1.0", "relpath": rel(sdist),
             "entrymapping": {"last_modified": "Tue, 01 Feb 2022 10:00:00 GMT"}},
            {"type": "doczip", "projectname": "demo", "relpath": "alice/dev/demo.zip"},
        ]}}}))
    result = spoold("import", "--spool", str(tmp_path / "spool"), "--storage", str(tmp_path / "store"), str(export))
    assert result.returncode == 0, result.stdout + result.stderr
    times = {e.filename: e.upload_time for e in manifest_of(LocalStorage(tmp_path / "store"), "demo").files}
    assert times == {wheel.name: parse_time("2021-03-04T05:06:07Z"), sdist.name: parse_time("2022-02-01T10:00:00Z")}


def test_an_import_killed_midway_and_run_again_imports_every_file_once(tmp_path: Path) -> None:
    source = tmp_path / "source"
    wheels = [aged(write_wheel(folder(source / f"p{i % 6}"), f"p{i % 6}", f"1.{i}")) for i in range(48)]
    store, spool = tmp_path / "store", tmp_path / "spool"
    args = [sys.executable, "-m", "spoold", "import", "--jobs", "1", "--spool", str(spool), "--storage",
            str(store), str(source)]
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (spool / "done").is_dir() or len(os.listdir(spool / "done")) < 6:
        assert first.poll() is None, "the import ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()

    second = spoold("import", "--spool", str(spool), "--storage", str(store), str(source))
    assert second.returncode == 0, second.stdout + second.stderr
    storage = LocalStorage(store)
    published = Counter(e.filename for p in range(6) for e in manifest_of(storage, f"p{p}").files)
    assert published == Counter(w.name for w in wheels)
    items = Counter(ItemName.parse(n).filename for n in os.listdir(spool / "done"))
    assert items == Counter(w.name for w in wheels)  # each file went through the spool once
    assert not os.listdir(spool / "failed") and not os.listdir(spool / "new") and not os.listdir(spool / "cur")
