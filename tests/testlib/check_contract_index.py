"""``spoold check`` on any backend, part two: pages, corrupt manifests, the root index,
temporary files, the report. Part one and the helpers: :mod:`testlib.check_contract`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from spoold.index import publish, remove, yank
from spoold.index.check import check
from spoold.index.check_report import CheckProgress, Kind, report_json
from spoold.index.documents import update_root
from spoold.index.manifest import RootIndex
from spoold.index.pages import render_project_html, render_project_json
from spoold.storage import Storage
from spoold.storage.keys import (
    ROOT_HTML,
    ROOT_JSON,
    file_key,
    metadata_key,
    project_html_key,
    project_json_key,
)
from testlib.check_contract import assert_repaired, found
from testlib.check_damage import Killed, built, crash_at, flip_byte, overwrite, plant_temporary, published
from testlib.index_checks import assert_consistent, html_files, manifest_of, root_projects


# -- pages ---------------------------------------------------------------------------------------


def test_stale_page_of_a_writer_killed_before_its_pages(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path, "pkg", "1.0")
    newer, path = built(tmp_path, "pkg", "2.0")
    crash_at(storage, "pages-ready")
    with pytest.raises(Killed):
        publish(storage, newer, path)
    assert found(check(storage)) == {("stale-page", project_html_key("pkg"))}
    assert_repaired(storage)
    assert newer.filename in html_files(storage, "pkg")
    assert_consistent(storage, "pkg")


def test_page_changed_at_its_own_generation_is_rewritten(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path, "pkg", "1.0")
    before = manifest_of(storage, "pkg").generation
    overwrite(storage, project_html_key("pkg"), b"<html>defaced</html>\n")
    assert found(check(storage)) == {("stale-page", project_html_key("pkg"))}
    assert_repaired(storage)
    manifest = assert_consistent(storage, "pkg")
    assert manifest.generation == before + 1
    assert storage.read_bytes(project_html_key("pkg")) == render_project_html(manifest)


def test_page_of_a_newer_generation_than_its_manifest(storage: Storage, tmp_path: Path) -> None:
    """Later publishes could never replace it; the repair moves the manifest past it."""
    published(storage, tmp_path, "pkg", "1.0")
    manifest = manifest_of(storage, "pkg")
    storage.put_page(project_html_key("pkg"), render_project_html(manifest), manifest.generation + 5)
    [finding] = check(storage).findings
    assert finding.kind is Kind.STALE_PAGE and "of generation" in finding.message
    assert_repaired(storage)
    assert manifest_of(storage, "pkg").generation == manifest.generation + 6
    published(storage, tmp_path, "pkg", "2.0")
    assert_consistent(storage, "pkg")


def test_page_of_a_project_without_manifest_or_files_is_deleted(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path, "pkg", "1.0")
    storage.put_page(project_html_key("ghost"), b"<html></html>\n", 1)
    assert found(check(storage)) == {("orphan-page", project_html_key("ghost"))}
    assert_repaired(storage)
    assert storage.read_bytes(project_html_key("ghost")) is None


# -- corrupt manifests ---------------------------------------------------------------------------


def _bodies() -> dict[str, object]:
    return {
        "truncated": lambda good: good[: len(good) // 2],
        "empty": lambda good: b"",
        "not-utf8": lambda good: b"\xff\xfe" + good,
        "deeply-nested": lambda good: b"[" * 100_000,
        "huge-number": lambda good: good.replace(b'"size":', b'"size":1e400,"x":', 1),
        "other-project": lambda good: good.replace(b'"name":"pkg"', b'"name":"other"', 1),
        "unsafe-filename": lambda good: good.replace(b'"filename":"pkg-', b'"filename":"../../pkg-', 1),
    }


@pytest.mark.parametrize("body", sorted(_bodies()))
def test_corrupt_manifest_is_a_finding_and_is_rebuilt(storage: Storage, tmp_path: Path, body: str) -> None:
    dist, _ = published(storage, tmp_path, "pkg", "1.0")
    good = storage.read_bytes(project_json_key("pkg")) or b""
    overwrite(storage, project_json_key("pkg"), _bodies()[body](good))  # type: ignore[operator]
    [finding] = check(storage).findings
    assert (finding.kind, finding.key, finding.repairable) == (Kind.CORRUPT_MANIFEST, project_json_key("pkg"), True)
    assert_repaired(storage)
    assert [e.sha256 for e in assert_consistent(storage, "pkg").files] == [dist.sha256]


def test_rebuilt_manifest_keeps_yanks_hashes_and_name_from_the_html_page(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path, "Pkg.Name", "1.0")
    published(storage, tmp_path, "Pkg.Name", "2.0", requires_python=">=3.8")
    yank(storage, "pkg-name", "1.0", "broken <build>")
    before = manifest_of(storage, "pkg-name")
    overwrite(storage, project_json_key("pkg-name"), b'{"name": "pkg-name", "files": [')
    report = assert_repaired(storage)
    assert "1 yank(s) kept from the HTML page" in report.findings[0].outcome
    after = assert_consistent(storage, "pkg-name")
    fields = lambda m: [(e.filename, e.size, e.sha256, e.metadata_sha256, e.requires_python, e.yanked) for e in m.files]  # noqa: E731
    assert fields(after) == fields(before) and after.name == "Pkg.Name"
    assert after.generation > before.generation


def test_rebuild_without_a_readable_page_says_yanks_are_lost(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path, "pkg", "1.0")
    yank(storage, "pkg", "1.0", "bad")
    overwrite(storage, project_json_key("pkg"), b"{")
    overwrite(storage, project_html_key("pkg"), b"\xff not a page")
    report = assert_repaired(storage)
    assert "yanks are lost: yank again with `spoold yank`" in report.findings[0].outcome
    assert manifest_of(storage, "pkg").files[0].yanked is None


def test_rebuild_lists_a_damaged_file_with_the_hash_clients_were_told(storage: Storage, tmp_path: Path) -> None:
    dist, _ = published(storage, tmp_path, "pkg", "1.0")
    flip_byte(storage, file_key("pkg", dist.filename))
    overwrite(storage, project_json_key("pkg"), b"{")
    report = check(storage, repair=True)
    assert not report.ok
    assert [(str(f.kind), f.repaired) for f in report.findings] == [("corrupt-manifest", True), ("corrupt-file", False)]
    assert report.findings[1].outcome == "found after the repair"
    assert manifest_of(storage, "pkg").files[0].sha256 == dist.sha256
    assert found(check(storage, repair=True)) == {("corrupt-file", file_key("pkg", dist.filename))}


# -- the root ----------------------------------------------------------------------------------


def test_project_missing_from_the_root_after_a_crash(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path, "old", "1.0")
    new, path = built(tmp_path, "new", "1.0")
    crash_at(storage, "doc-read", ROOT_JSON)
    with pytest.raises(Killed):
        publish(storage, new, path)
    [finding] = check(storage).findings
    assert (finding.kind, finding.key, finding.project) == (Kind.ROOT_MISSING, ROOT_JSON, "new")
    assert_repaired(storage)
    assert root_projects(storage) == {"old", "new"} and manifest_of(storage, "new").listed
    assert b'href="new/"' in (storage.read_bytes(ROOT_HTML) or b"")


def test_root_entry_of_a_project_that_does_not_exist(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path, "real", "1.0")
    update_root(storage, lambda root: (root or RootIndex()).with_project("ghost", "Ghost"))
    assert found(check(storage)) == {("root-extra", ROOT_JSON)}
    assert_repaired(storage)
    assert root_projects(storage) == {"real"}


def test_project_emptied_by_remove_may_stay_in_the_root(storage: Storage, tmp_path: Path) -> None:
    dist, _ = published(storage, tmp_path, "gone", "1.0")
    remove(storage, "gone", dist.filename)
    assert check(storage).findings == ()


@pytest.mark.parametrize("key", [ROOT_HTML, ROOT_JSON])
def test_damaged_root_page_is_rebuilt(storage: Storage, tmp_path: Path, key: str) -> None:
    published(storage, tmp_path, "one", "1.0")
    published(storage, tmp_path, "two", "1.0")
    overwrite(storage, key, b"<garbage>")
    [finding] = check(storage).findings
    assert finding.key == key and finding.project is None and finding.repairable
    assert_repaired(storage)
    assert root_projects(storage) == {"one", "two"}


# -- temporary files -------------------------------------------------------------------------------


def test_stale_temporary_file_is_deleted_and_a_young_one_left(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path, "pkg", "1.0")
    stale = "packages/pkg/.pkg-2.0-py3-none-any.whl.0123456789abcdef.tmp"
    now = plant_temporary(storage, stale, timedelta(hours=2))
    report = check(storage, now=now)
    assert found(report) == {("stale-temporary", stale)}
    assert_repaired(storage, now=now)
    assert stale not in {o.key for o in storage.walk("")}


def test_young_temporary_file_is_no_finding(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path, "pkg", "1.0")
    now = plant_temporary(storage, "simple/pkg/.index.html.abcdef.tmp", timedelta(minutes=5))
    assert check(storage, now=now).findings == ()
    assert check(storage, now=now, max_temp_age=timedelta(minutes=1)).findings != ()


# -- the report ----------------------------------------------------------------------------------


def test_json_report_schema(storage: Storage, tmp_path: Path) -> None:
    dist, _ = published(storage, tmp_path, "pkg", "1.0")
    flip_byte(storage, file_key("pkg", dist.filename))
    overwrite(storage, project_html_key("pkg"), b"old")
    doc = json.loads(json.dumps(report_json(check(storage, repair=True))))
    assert set(doc) == {"ok", "storage", "repair", "counts", "findings"}
    assert (doc["ok"], doc["storage"], doc["repair"]) == (False, storage.url, True)
    assert doc["counts"] == {
        "projects": 1, "files": 2, "bytes": dist.size + len(dist.metadata), "findings": 2,
        "repaired": 1, "unrepaired": 1, "kinds": {"corrupt-file": 1, "stale-page": 1},
    }
    for item in doc["findings"]:
        assert set(item) == {"kind", "key", "project", "message", "repairable", "repaired", "outcome"}
        assert item["project"] == "pkg" and isinstance(item["message"], str) and item["outcome"]
    assert {(f["kind"], f["repairable"], f["repaired"]) for f in doc["findings"]} == {
        ("corrupt-file", False, False), ("stale-page", True, True),
    }


def test_progress_reports_each_project_then_each_repair(storage: Storage, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        published(storage, tmp_path, name, "1.0")
    overwrite(storage, project_html_key("b"), b"old")
    steps: list[CheckProgress] = []
    check(storage, repair=True, progress=steps.append)
    assert [(s.phase, s.done, s.total, s.project) for s in steps] == [
        ("checking", 1, 3, "a"), ("checking", 2, 3, "b"), ("checking", 3, 3, "c"), ("repairing", 1, 1, "b"),
    ]


def test_many_kinds_of_damage_at_once(storage: Storage, tmp_path: Path) -> None:
    """Every repairable kind in one tree, beside damage that needs the operator."""
    for name in ("flip", "page", "meta", "broken"):
        published(storage, tmp_path, name, "1.0")
    flipped, _ = published(storage, tmp_path, "flip", "2.0")
    flip_byte(storage, file_key("flip", flipped.filename))
    overwrite(storage, project_html_key("page"), b"old")
    storage.delete(metadata_key("meta", manifest_of(storage, "meta").files[0].filename))
    overwrite(storage, project_json_key("broken"), b"{")
    orphan, path = built(tmp_path, "orphan", "1.0")
    crash_at(storage, "doc-read", project_json_key("orphan"))
    with pytest.raises(Killed):
        publish(storage, orphan, path)
    update_root(storage, lambda root: replace(root or RootIndex(), projects=()))  # type: ignore[arg-type]
    now = plant_temporary(storage, "packages/page/.page-1.0-py3-none-any.whl.ab12.tmp", timedelta(days=1))
    report = check(storage, repair=True, now=now)
    assert [(str(f.kind), f.key) for f in report.unrepaired] == [("corrupt-file", file_key("flip", flipped.filename))]
    assert {str(f.kind) for f in report.findings if f.repaired} == {
        "stale-page", "missing-metadata", "corrupt-manifest", "missing-manifest", "root-missing", "stale-temporary",
    }
    assert root_projects(storage) == {"flip", "page", "meta", "broken", "orphan"}
    for project in ("page", "meta", "broken", "orphan"):
        assert_consistent(storage, project)
    assert found(check(storage, now=now)) == {("corrupt-file", file_key("flip", flipped.filename))}
    assert render_project_json(manifest_of(storage, "orphan")) == storage.read_bytes(project_json_key("orphan"))
