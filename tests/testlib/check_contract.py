"""``spoold check`` on any backend, part one (a clean tree, distributions, orphans,
metadata): planted damage is found, repaired where it can be, and reported as needing
the operator where it cannot. Part two (pages, manifests, the root, temporaries, the
report) is :mod:`testlib.check_contract_index`.

Both are imported by ``tests/unit/test_check.py`` (in-memory, local) and
``tests/adapter/test_check_s3.py`` (S3 on moto); each defines ``storage``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from spoold.index import publish, remove, yank
from spoold.index.check import check
from spoold.index.check_report import Kind, Report
from spoold.storage import Storage, StorageUnavailable
from spoold.storage.keys import file_key, metadata_key, project_html_key, project_json_key
from testlib.backends import broken_handle
from testlib.check_damage import Killed, built, crash_at, flip_byte, overwrite, published
from testlib.index_checks import assert_consistent, html_files, manifest_of, root_projects


def found(report: Report) -> set[tuple[str, str]]:
    return {(str(f.kind), f.key) for f in report.findings}


def only(report: Report, kind: Kind) -> list:
    return [f for f in report.findings if f.kind is kind]


def assert_repaired(storage: Storage, **kwargs: object) -> Report:
    """Repair, and prove it: every finding repaired, and a fresh check is clean."""
    report = check(storage, repair=True, **kwargs)  # type: ignore[arg-type]
    assert report.ok, [(f.kind, f.key, f.outcome) for f in report.unrepaired]
    assert report.findings and all(f.repaired and f.outcome for f in report.findings)
    again = check(storage, **kwargs)  # type: ignore[arg-type]
    assert again.ok and again.findings == (), [(f.kind, f.key) for f in again.findings]
    return report


# -- a clean tree ------------------------------------------------------------------------------


def test_empty_storage_is_clean(storage: Storage) -> None:
    report = check(storage)
    assert report.ok and (report.projects, report.files, report.findings) == (0, 0, ())


def test_clean_tree_is_ok_and_every_file_is_hashed(storage: Storage, tmp_path: Path) -> None:
    a, _ = published(storage, tmp_path, "Alpha.Pkg", "1.0", requires_python=">=3.9")
    b, _ = published(storage, tmp_path, "alpha-pkg", "2.0")
    c, _ = published(storage, tmp_path, "beta", "1.0")
    yank(storage, "beta", "1.0", "broken <build>")
    report = check(storage)
    assert report.ok and report.findings == ()
    assert (report.projects, report.files) == (2, 6)  # three wheels and their .metadata
    assert report.bytes == sum(d.size + len(d.metadata) for d in (a, b, c))
    assert check(storage, repair=True).findings == ()  # nothing to repair changes nothing


def test_unreachable_storage_raises_storage_unavailable(storage: Storage) -> None:
    with pytest.raises(StorageUnavailable):
        check(broken_handle(storage))


# -- distributions: never repaired ---------------------------------------------------------------


def test_flipped_byte_is_found_and_the_recorded_hash_is_left_alone(storage: Storage, tmp_path: Path) -> None:
    dist, path = published(storage, tmp_path, "pkg", "1.0")
    key = file_key("pkg", dist.filename)
    flip_byte(storage, key)
    [finding] = check(storage).findings
    assert (finding.kind, finding.key, finding.project, finding.repairable) == (Kind.CORRUPT_FILE, key, "pkg", False)
    assert dist.sha256 in finding.message and f"spoold remove pkg {dist.filename}" in finding.message
    damaged = storage.read_bytes(key)

    report = check(storage, repair=True)
    assert not report.ok and [(f.kind, f.repaired) for f in report.findings] == [(Kind.CORRUPT_FILE, False)]
    assert manifest_of(storage, "pkg").file(dist.filename).sha256 == dist.sha256  # type: ignore[union-attr]
    assert storage.read_bytes(key) == damaged
    # What the message says to do works.
    remove(storage, "pkg", dist.filename)
    publish(storage, dist, path)
    assert check(storage).ok


def test_truncated_file_is_a_size_mismatch(storage: Storage, tmp_path: Path) -> None:
    dist, _ = published(storage, tmp_path, "pkg", "1.0")
    overwrite(storage, file_key("pkg", dist.filename), b"PK\x03\x04")
    [finding] = check(storage).findings
    assert finding.kind is Kind.CORRUPT_FILE and f"size is 4, the manifest records {dist.size}" in finding.message


def test_deleted_file_is_found_and_an_upload_of_the_same_bytes_restores_it(storage: Storage, tmp_path: Path) -> None:
    dist, path = published(storage, tmp_path, "pkg", "1.0")
    storage.delete(file_key("pkg", dist.filename))
    storage.delete(metadata_key("pkg", dist.filename))
    report = check(storage, repair=True)
    assert found(report) == {
        ("missing-file", file_key("pkg", dist.filename)),
        ("missing-metadata", metadata_key("pkg", dist.filename)),
    }
    assert not report.ok and not any(f.repairable or f.repaired for f in report.findings)
    assert "upload the original file again" in only(report, Kind.MISSING_FILE)[0].message
    publish(storage, dist, path)
    assert check(storage).ok


# -- orphans ---------------------------------------------------------------------------------


def test_orphan_of_an_interrupted_publish_is_listed_after_inspection(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path, "pkg", "1.0")
    orphan, path = built(tmp_path, "pkg", "2.0", requires_python=">=3.10")
    crash_at(storage, "doc-read", project_json_key("pkg"))  # after the files, before the manifest
    with pytest.raises(Killed):
        publish(storage, orphan, path)
    assert found(check(storage)) == {("orphan-file", file_key("pkg", orphan.filename))}
    report = assert_repaired(storage)
    assert report.findings[0].outcome == "inspected and listed"
    entry = assert_consistent(storage, "pkg").file(orphan.filename)
    assert entry is not None
    assert (entry.sha256, entry.size, entry.metadata_sha256, entry.requires_python) == (
        orphan.sha256, orphan.size, orphan.metadata_sha256, ">=3.10"
    )


def test_orphan_without_metadata_gets_it_extracted(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path, "pkg", "1.0")
    orphan, path = built(tmp_path, "pkg", "3.0")
    storage.put_file(file_key("pkg", orphan.filename), path, orphan.sha256)
    assert_repaired(storage)
    assert storage.read_bytes(metadata_key("pkg", orphan.filename)) == orphan.metadata
    assert orphan.filename in html_files(storage, "pkg")


def test_orphan_that_fails_inspection_is_not_listed(storage: Storage, tmp_path: Path) -> None:
    """reindex would list it (a .metadata lies beside it); check never lists unchecked files."""
    published(storage, tmp_path, "pkg", "1.0")
    bad = "pkg-9.0-py3-none-any.whl"
    storage.put_file(file_key("pkg", bad), b"not a zip file", "0" * 64)
    storage.put_file(metadata_key("pkg", bad), b"Metadata-Version: 2.1\nName: pkg\nVersion: 9.0\n", "0" * 64)
    report = check(storage, repair=True)
    [finding] = report.findings
    assert (finding.kind, finding.repairable, finding.repaired) == (Kind.ORPHAN_FILE, True, False)
    assert "inspection rejects it" in finding.outcome and f"spoold remove pkg {bad}" in finding.outcome
    assert manifest_of(storage, "pkg").file(bad) is None
    assert storage.stat(file_key("pkg", bad)) is not None  # never deleted by a repair


def test_orphan_of_another_project_is_not_listed(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path, "pkg", "1.0")
    other, path = built(tmp_path, "other", "1.0")
    storage.put_file(file_key("pkg", other.filename), path, other.sha256)
    [finding] = check(storage, repair=True).findings
    assert not finding.repaired and "names the project 'other'" in finding.outcome
    assert manifest_of(storage, "pkg").file(other.filename) is None


def test_files_without_a_manifest_are_adopted(storage: Storage, tmp_path: Path) -> None:
    dists = [built(tmp_path, "Adopted", v) for v in ("1.0", "1.1")]
    for dist, path in dists:
        storage.put_file(file_key("adopted", dist.filename), path, dist.sha256)
    assert found(check(storage)) == {("missing-manifest", project_json_key("adopted"))}
    assert_repaired(storage)
    manifest = assert_consistent(storage, "adopted")
    assert manifest.name == "Adopted" and manifest.listed
    assert {e.sha256 for e in manifest.files} == {d.sha256 for d, _ in dists}
    assert root_projects(storage) == {"adopted"}


def test_orphan_metadata_is_deleted(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path, "pkg", "1.0")
    stray = metadata_key("pkg", "pkg-7.0-py3-none-any.whl")
    storage.put_file(stray, b"Metadata-Version: 2.1\n", "0" * 64)
    assert found(check(storage)) == {("orphan-metadata", stray)}
    assert_repaired(storage)
    assert storage.stat(stray) is None


def test_unknown_files_and_misnamed_folders_need_the_operator(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path, "pkg", "1.0")
    for key in ("packages/pkg/README.txt", "packages/pkg/sub/pkg-1.0.tar.gz", "packages/Pkg_Two/x.whl"):
        storage.put_file(key, b"x", "0" * 64)
    report = check(storage, repair=True)
    assert found(report) == {
        ("unknown-file", "packages/pkg/README.txt"),
        ("unknown-file", "packages/pkg/sub/pkg-1.0.tar.gz"),
        ("misnamed-folder", "packages/Pkg_Two/"),
    }
    assert not report.ok and not any(f.repairable for f in report.findings)
    assert "packages/pkg-two/" in only(report, Kind.MISNAMED_FOLDER)[0].message


# -- metadata ----------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_metadata_is_rederived_from_an_intact_distribution(storage: Storage, tmp_path: Path, damage: str) -> None:
    dist, _ = published(storage, tmp_path, "pkg", "1.0")
    key = metadata_key("pkg", dist.filename)
    if damage == "corrupt":
        overwrite(storage, key, b"Metadata-Version: 2.1\nName: evil\n")
    else:
        storage.delete(key)
    [finding] = check(storage).findings
    assert (finding.kind, finding.key, finding.repairable) == (Kind(f"{damage}-metadata"), key, True)
    report = assert_repaired(storage)
    assert report.findings[0].outcome == "re-derived from the distribution"
    assert storage.read_bytes(key) == dist.metadata


def test_rederived_metadata_that_differs_is_advertised_anew(storage: Storage, tmp_path: Path) -> None:
    dist, path = built(tmp_path, "pkg", "1.0")
    key = metadata_key("pkg", dist.filename)
    other = b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\nSummary: stored first\n"
    assert other != dist.metadata
    storage.put_file(key, other, "0" * 64)
    publish(storage, dist, path)  # stored bytes win: the pages advertise those
    storage.delete(key)
    report = assert_repaired(storage)
    assert "now advertise sha256 " + dist.metadata_sha256 in report.findings[0].outcome
    assert storage.read_bytes(key) == dist.metadata
    assert manifest_of(storage, "pkg").files[0].metadata_sha256 == dist.metadata_sha256
    assert dist.metadata_sha256.encode() in (storage.read_bytes(project_html_key("pkg")) or b"")


def test_metadata_of_a_damaged_distribution_is_not_rederived(storage: Storage, tmp_path: Path) -> None:
    dist, _ = published(storage, tmp_path, "pkg", "1.0")
    flip_byte(storage, file_key("pkg", dist.filename))
    overwrite(storage, metadata_key("pkg", dist.filename), b"junk")
    report = check(storage, repair=True)
    [meta] = only(report, Kind.CORRUPT_METADATA)
    assert not meta.repairable and not meta.repaired and "cannot be re-derived" in meta.message
    assert storage.read_bytes(metadata_key("pkg", dist.filename)) == b"junk"


def test_metadata_and_page_of_one_project_are_both_repaired(storage: Storage, tmp_path: Path) -> None:
    dist, _ = published(storage, tmp_path, "pkg", "1.0")
    overwrite(storage, metadata_key("pkg", dist.filename), b"junk")
    overwrite(storage, project_html_key("pkg"), b"old")
    assert {str(f.kind) for f in assert_repaired(storage).findings} == {"corrupt-metadata", "stale-page"}
    assert_consistent(storage, "pkg")


def test_folder_whose_files_all_fail_inspection_gets_no_manifest(storage: Storage, tmp_path: Path) -> None:
    storage.put_file(file_key("junk", "junk-1.0-py3-none-any.whl"), b"not a zip", "0" * 64)
    storage.put_file("packages/junk/notes.txt", b"x", "0" * 64)
    report = check(storage, repair=True)
    assert [(str(f.kind), f.repaired) for f in report.findings] == [
        ("unknown-file", False), ("missing-manifest", False), ("orphan-file", False),
    ]
    assert "none of its files passes inspection" in report.findings[1].outcome
    assert "inspection rejects it" in report.findings[2].message
    assert storage.read_doc(project_json_key("junk")) is None
