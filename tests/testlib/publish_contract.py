"""The publishing contract: publish, yank, unyank, remove and reindex on any backend.

Imported by ``tests/unit/test_publish.py`` (in-memory, local) and
``tests/adapter/test_publish_s3.py`` (S3 on moto); each defines ``storage``.
"""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from spoold.errors import FileExists
from spoold.index import NotFound, publish, reindex, remove, unyank, yank
from spoold.index.publish import Upload, publish_many
from spoold.index.documents import update_manifest, write_pages
from spoold.index.manifest import Manifest
from spoold.inspection import Distribution, inspect_file
from spoold.storage import Storage
from spoold.storage.keys import file_key, metadata_key, project_html_key, project_json_key
from spoold.storage.local import LocalStorage
from spoold.testing.dists import Pause, make_distribution, metadata_text, write_sdist
from testlib.backends import second_handle
from testlib.pages import parse_html_page
from testlib.index_checks import assert_consistent, html_files, manifest_of, root_projects


# -- publishing ---------------------------------------------------------------------------------


def test_publish_stores_file_metadata_manifest_pages_root(
    storage: Storage, tmp_path: Path
) -> None:
    dist, path = make_distribution("Foo.Bar", "1.0", tmp_path, requires_python=">=3.9")
    moment = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    result = publish(storage, dist, path, now=moment)
    assert result.published and result.project == "foo-bar"
    assert storage.read_bytes(file_key("foo-bar", dist.filename)) == path.read_bytes()
    assert storage.read_bytes(metadata_key("foo-bar", dist.filename)) == dist.metadata
    manifest = assert_consistent(storage, "foo-bar")
    entry = manifest.file(dist.filename)
    assert entry is not None
    assert (entry.sha256, entry.size, entry.upload_time) == (dist.sha256, dist.size, moment)
    assert entry.metadata_sha256 == dist.metadata_sha256
    assert entry.requires_python == ">=3.9"
    assert manifest.listed and manifest.name == "Foo.Bar"
    assert root_projects(storage) == {"foo-bar"}
    assert b"foo-bar/" in (storage.read_bytes("simple/index.html") or b"")


def test_publish_is_idempotent(storage: Storage, tmp_path: Path) -> None:
    dist, path = make_distribution("pkg", "1.0", tmp_path)
    first = publish(storage, dist, path)
    again = publish(storage, dist, path)
    assert first.published and again.unchanged
    assert again.generation == first.generation
    assert len(manifest_of(storage, "pkg").files) == 1


def test_publish_different_bytes_same_name_is_rejected(storage: Storage, tmp_path: Path) -> None:
    dist, path = make_distribution("pkg", "1.0", tmp_path)
    publish(storage, dist, path)
    (tmp_path / "b").mkdir()
    other, other_path = make_distribution("pkg", "1.0", tmp_path / "b", payload=b"changed")
    assert other.filename == dist.filename
    with pytest.raises(FileExists, match="File already exists"):
        publish(storage, other, other_path)
    assert manifest_of(storage, "pkg").file(dist.filename).sha256 == dist.sha256  # type: ignore[union-attr]


def test_root_touched_only_for_new_projects(storage: Storage, tmp_path: Path) -> None:
    dist, path = make_distribution("one", "1.0", tmp_path)
    publish(storage, dist, path)
    root_generation = storage.generation_of("simple/index.html")
    for version in ("1.1", "1.2"):
        d, p = make_distribution("one", version, tmp_path)
        publish(storage, d, p)
    assert storage.generation_of("simple/index.html") == root_generation
    d, p = make_distribution("two", "1.0", tmp_path)
    publish(storage, d, p)
    assert root_projects(storage) == {"one", "two"}


def test_crash_before_root_update_is_repaired_by_next_publish(
    storage: Storage, tmp_path: Path
) -> None:
    """A writer killed between creating the manifest and the root update: the manifest
    is not ``listed``, so re-running the same item finishes the job."""
    dist, path = make_distribution("orphan", "1.0", tmp_path)

    class Killed(Exception):
        pass

    def die(event: str, key: str) -> None:
        if event == "doc-read" and key == "simple/index.v1.json":
            raise Killed

    storage.checkpoint = die
    with pytest.raises(Killed):
        publish(storage, dist, path)
    storage.checkpoint = lambda event, key: None
    assert not manifest_of(storage, "orphan").listed
    assert publish(storage, dist, path).unchanged
    assert root_projects(storage) == {"orphan"}
    assert manifest_of(storage, "orphan").listed


# -- interleavings, made deterministic with checkpoints --------------------------------------


def test_lost_compare_and_swap_is_retried(storage: Storage, tmp_path: Path) -> None:
    first, first_path = make_distribution("race", "1.0", tmp_path)
    publish(storage, first, first_path)
    slow_dist, slow_path = make_distribution("race", "2.0", tmp_path)
    fast_dist, fast_path = make_distribution("race", "3.0", tmp_path)

    slow = second_handle(storage)
    pause = Pause("doc-read", project_json_key("race"))
    slow.checkpoint = pause
    thread = threading.Thread(target=publish, args=(slow, slow_dist, slow_path))
    thread.start()
    assert pause.reached.wait(10)  # slow has read the manifest and not written yet
    publish(storage, fast_dist, fast_path)
    pause.release()
    thread.join()

    assert ("swap-lost", project_json_key("race")) in pause.seen
    manifest = assert_consistent(storage, "race")
    assert {e.version for e in manifest.files} == {"1.0", "2.0", "3.0"}


def test_slow_page_writer_never_puts_back_an_older_page(storage: Storage, tmp_path: Path) -> None:
    first, first_path = make_distribution("pages", "1.0", tmp_path)
    publish(storage, first, first_path)
    slow_dist, slow_path = make_distribution("pages", "2.0", tmp_path)
    fast_dist, fast_path = make_distribution("pages", "3.0", tmp_path)

    slow = second_handle(storage)
    pause = Pause("pages-ready", "pages")  # manifest swapped, pages not yet written
    slow.checkpoint = pause
    thread = threading.Thread(target=publish, args=(slow, slow_dist, slow_path))
    thread.start()
    assert pause.reached.wait(10)
    publish(storage, fast_dist, fast_path)
    newest = storage.read_bytes(project_html_key("pages"))
    pause.release()
    thread.join()

    assert storage.read_bytes(project_html_key("pages")) == newest
    assert html_files(storage, "pages") == {first.filename, slow_dist.filename, fast_dist.filename}
    assert_consistent(storage, "pages")


# -- yank, unyank, remove -------------------------------------------------------------------------


def test_yank_and_unyank_by_version_and_filename(storage: Storage, tmp_path: Path) -> None:
    dist, path = make_distribution("y", "1.0", tmp_path)
    other, other_path = make_distribution("y", "2.0", tmp_path)
    publish(storage, dist, path)
    publish(storage, other, other_path)

    assert yank(storage, "Y", "1.0", "broken <build>").filenames == (dist.filename,)
    entry = manifest_of(storage, "y").file(dist.filename)
    assert entry is not None and entry.yanked == "broken <build>"
    links = {link.text: link for link in parse_html_page(storage.read_bytes(project_html_key("y")) or b"").links}
    assert links[dist.filename].attrs["data-yanked"] == "broken <build>"
    assert "data-yanked" not in links[other.filename].attrs
    assert not yank(storage, "y", dist.filename, "broken <build>").changed  # idempotent

    assert unyank(storage, "y", dist.filename).filenames == (dist.filename,)
    assert manifest_of(storage, "y").file(dist.filename).yanked is None  # type: ignore[union-attr]
    assert yank(storage, "y", other.filename).filenames == (other.filename,)
    data = json.loads(storage.read_bytes(project_json_key("y")) or b"")
    assert [f["yanked"] for f in data["files"]] == [False, True]
    assert_consistent(storage, "y")


def test_yank_unknown_targets(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no published files"):
        yank(storage, "nothing", "1.0")
    dist, path = make_distribution("y", "1.0", tmp_path)
    publish(storage, dist, path)
    with pytest.raises(NotFound, match="no file or version '9.9'"):
        yank(storage, "y", "9.9")


def test_remove(storage: Storage, tmp_path: Path) -> None:
    dist, path = make_distribution("r", "1.0", tmp_path)
    keep, keep_path = make_distribution("r", "2.0", tmp_path)
    publish(storage, dist, path)
    publish(storage, keep, keep_path)
    assert remove(storage, "r", dist.filename).filenames == (dist.filename,)
    assert storage.stat(file_key("r", dist.filename)) is None
    assert storage.stat(metadata_key("r", dist.filename)) is None
    assert [e.filename for e in assert_consistent(storage, "r").files] == [keep.filename]
    with pytest.raises(NotFound):
        remove(storage, "r", dist.filename)
    # Published again after removal (a takedown reversed): it comes back.
    assert publish(storage, dist, path).published


# -- reindex -----------------------------------------------------------------------------------


def test_reindex_reproduces_deleted_manifests_and_pages(storage: Storage, tmp_path: Path) -> None:
    for name, version in [("a", "1.0"), ("a", "2.0"), ("b-c", "0.1")]:
        d, p = make_distribution(name, version, tmp_path, requires_python=">=3.8")
        publish(storage, d, p)
    yank(storage, "a", "1.0", "oops")
    before = {p: manifest_of(storage, p) for p in ("a", "b-c")}
    for key in (
        "simple/index.html",
        "simple/index.v1.json",
        project_json_key("a"),
        project_html_key("a"),
        project_json_key("b-c"),
        project_html_key("b-c"),
    ):
        storage.delete(key)
    if isinstance(storage, LocalStorage):  # a disaster takes the history too
        shutil.rmtree(storage.root / ".spoold")

    seen: list[str] = []
    report = reindex(storage, progress=lambda step: seen.append(step.project))
    assert (report.projects, report.files, report.problems) == (2, 3, ())
    assert seen == ["a", "b-c"]
    for project, old in before.items():
        new = assert_consistent(storage, project)
        assert {(e.filename, e.sha256, e.metadata_sha256, e.requires_python) for e in new.files} == {
            (e.filename, e.sha256, e.metadata_sha256, e.requires_python) for e in old.files
        }
    assert root_projects(storage) == {"a", "b-c"}


def test_reindex_keeps_yanks_and_upload_times(storage: Storage, tmp_path: Path) -> None:
    d, p = make_distribution("k", "1.0", tmp_path)
    publish(storage, d, p, now=datetime(2020, 1, 2, tzinfo=UTC))
    yank(storage, "k", "1.0", "reason")
    storage.delete(project_html_key("k"))
    reindex(storage, ["k"])
    entry = assert_consistent(storage, "k").file(d.filename)
    assert entry is not None and entry.yanked == "reason"
    assert entry.upload_time == datetime(2020, 1, 2, tzinfo=UTC)


def test_reindex_adopts_files_without_metadata(storage: Storage, tmp_path: Path) -> None:
    """A directory of packages copied in by hand gets .metadata extracted and an index."""
    d, p = make_distribution("adopted", "1.0", tmp_path, requires_python=">=3.10")
    storage.put_file(file_key("adopted", d.filename), p, d.sha256)
    storage.put_file("packages/adopted/README.txt", b"not a dist", "0" * 64)
    calls: list[str] = []

    def extract(path: Path, filename: str) -> bytes:
        calls.append(filename)
        assert path.read_bytes() == p.read_bytes()
        return d.metadata

    report = reindex(storage, extract=extract)
    assert calls == [d.filename] and report.metadata_extracted == 1
    assert any("README.txt" in problem for problem in report.problems)
    assert storage.read_bytes(metadata_key("adopted", d.filename)) == d.metadata
    entry = manifest_of(storage, "adopted").file(d.filename)
    assert entry is not None and entry.requires_python == ">=3.10"
    assert entry.metadata_sha256 == d.metadata_sha256
    assert root_projects(storage) == {"adopted"}


# -- core metadata: served only where PEP 643 makes it binding ---------------------------------


def _sdist(tmp_path: Path, name: str, version: str, metadata_version: str, *dynamic: str) -> tuple[Distribution, Path]:
    """An sdist whose PKG-INFO declares a dependency (as the build would, or not)."""
    extra = [("Requires-Dist", "attrs>=20")] + [("Dynamic", field) for field in dynamic]
    pkg_info = metadata_text(name, version, metadata_version=metadata_version,
                             requires_python=">=3.8", extra=extra)
    directory = tmp_path / f"{name}-{version}"
    directory.mkdir()
    path = write_sdist(directory, name, version, pkg_info=pkg_info)
    return inspect_file(path, path.name), path


def _advertised(storage: Storage, project: str, filename: str) -> tuple[dict[str, str | None], object]:
    """The HTML link's attributes and the JSON page's ``core-metadata`` for one file."""
    page = parse_html_page(storage.read_bytes(project_html_key(project)) or b"")
    (link,) = [link for link in page.links if link.text == filename]
    doc = json.loads(storage.read_bytes(project_json_key(project)) or b"")
    (item,) = [f for f in doc["files"] if f["filename"] == filename]
    assert item["dist-info-metadata"] == item["core-metadata"]
    return link.attrs, item["core-metadata"]


@pytest.mark.parametrize(("metadata_version", "dynamic"), [("1.1", ()), ("2.1", ()), ("2.2", ("Requires-Dist",))])
def test_sdist_metadata_that_does_not_bind_is_neither_stored_nor_advertised(
    storage: Storage, tmp_path: Path, metadata_version: str, dynamic: tuple[str, ...]
) -> None:
    """pip would resolve from it and install the package without its dependencies."""
    dist, path = _sdist(tmp_path, "loose", "1.0", metadata_version, *dynamic)
    assert publish(storage, dist, path).published
    assert storage.stat(metadata_key("loose", dist.filename)) is None
    entry = assert_consistent(storage, "loose").file(dist.filename)
    assert entry is not None and entry.metadata_sha256 is None
    assert entry.requires_python == ">=3.8"  # still read from PKG-INFO for the index
    attrs, core_metadata = _advertised(storage, "loose", dist.filename)
    assert "data-core-metadata" not in attrs and "data-dist-info-metadata" not in attrs
    assert attrs["data-requires-python"] == ">=3.8"
    assert core_metadata is False


def test_static_sdist_metadata_is_stored_and_advertised(storage: Storage, tmp_path: Path) -> None:
    dist, path = _sdist(tmp_path, "static", "1.0", "2.2", "License-File")
    publish(storage, dist, path)
    assert storage.read_bytes(metadata_key("static", dist.filename)) == dist.metadata
    attrs, core_metadata = _advertised(storage, "static", dist.filename)
    assert attrs["data-core-metadata"] == f"sha256={dist.metadata_sha256}"
    assert core_metadata == {"sha256": dist.metadata_sha256}


def test_reindex_withdraws_sdist_metadata_an_older_spoold_served(storage: Storage, tmp_path: Path) -> None:
    """A tree published before the rule: the loose sdist's .metadata is advertised.

    Reindex stops advertising it and deletes it; the wheel's and the binding sdist's stay.
    """
    loose, loose_path = _sdist(tmp_path, "mixed", "1.0", "2.1")
    static, static_path = _sdist(tmp_path, "mixed", "2.0", "2.3")
    wheel, wheel_path = make_distribution("mixed", "3.0", tmp_path)
    for dist, path in [(loose, loose_path), (static, static_path), (wheel, wheel_path)]:
        publish(storage, dist, path)
    # What the older spoold did: store PKG-INFO as .metadata and advertise it.
    storage.put_file(metadata_key("mixed", loose.filename), loose.metadata, loose.metadata_sha256)

    def advertise(current: Manifest | None) -> Manifest:
        assert current is not None
        entry = replace(current.file(loose.filename), metadata_sha256=loose.metadata_sha256)  # type: ignore[type-var]
        return current.without_file(loose.filename).with_file(entry)

    manifest, _, stored = update_manifest(storage, "mixed", advertise)
    write_pages(storage, manifest, stored)
    assert _advertised(storage, "mixed", loose.filename)[1] == {"sha256": loose.metadata_sha256}

    report = reindex(storage, ["mixed"])
    assert (report.metadata_withdrawn, report.metadata_extracted, report.problems) == (1, 0, ())
    assert storage.stat(metadata_key("mixed", loose.filename)) is None
    attrs, core_metadata = _advertised(storage, "mixed", loose.filename)
    assert "data-core-metadata" not in attrs and core_metadata is False
    assert attrs["data-requires-python"] == ">=3.8"
    for kept in (static, wheel):
        assert storage.read_bytes(metadata_key("mixed", kept.filename)) == kept.metadata
        assert _advertised(storage, "mixed", kept.filename)[1] == {"sha256": kept.metadata_sha256}
    assert_consistent(storage, "mixed")
    assert reindex(storage, ["mixed"]).metadata_withdrawn == 0  # nothing left to withdraw


def test_reindex_adopting_sdists_stores_only_binding_metadata(storage: Storage, tmp_path: Path) -> None:
    loose, loose_path = _sdist(tmp_path, "adopt", "1.0", "1.2")
    static, static_path = _sdist(tmp_path, "adopt", "2.0", "2.4")
    for dist, path in [(loose, loose_path), (static, static_path)]:
        storage.put_file(file_key("adopt", dist.filename), path, dist.sha256)
    report = reindex(storage)
    assert (report.metadata_extracted, report.metadata_withdrawn, report.problems) == (1, 0, ())
    assert storage.stat(metadata_key("adopt", loose.filename)) is None
    assert storage.read_bytes(metadata_key("adopt", static.filename)) == static.metadata
    manifest = assert_consistent(storage, "adopt")
    assert [(e.metadata_sha256, e.requires_python) for e in manifest.files] == [
        (None, ">=3.8"), (static.metadata_sha256, ">=3.8")]


def test_publish_many_changes_the_manifest_once_and_answers_each_upload(
        storage: Storage, tmp_path: Path) -> None:
    for folder in "abc":
        (tmp_path / folder).mkdir()
    first, first_path = make_distribution("many", "3.0", tmp_path / "a")
    publish(storage, first, first_path)
    before = storage.generation_of(project_json_key("many"))
    assert before is not None
    d1, p1 = make_distribution("many", "1.0", tmp_path / "b")
    d2, p2 = make_distribution("many", "2.0", tmp_path / "b")
    clash, clash_path = make_distribution("many", "3.0", tmp_path / "c", payload=b"other")
    answers = publish_many(storage, [Upload(d1, p1), Upload(d2, p2), Upload(clash, clash_path),
                                     Upload(d1, p1)])
    assert [getattr(a, "published", None) for a in answers] == [True, True, None, False]
    assert isinstance(answers[2], FileExists)
    assert storage.generation_of(project_json_key("many")) == before + 1  # one change for all
    manifest = assert_consistent(storage, "many")
    assert {e.version for e in manifest.files} == {"1.0", "2.0", "3.0"}
    assert manifest.file(clash.filename).sha256 == first.sha256  # the stored bytes won
