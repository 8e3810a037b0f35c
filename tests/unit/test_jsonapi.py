"""The JSON API documents as publish, yank, unyank, remove and reindex leave them.

Compared field by field with Warehouse's own serializer (``warehouse/legacy/api/json.py``,
``_json_data``), and read the way renovate and dependabot read them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from spoold.explorer.release import ReleaseView
from spoold.index import publish, reindex, remove, unyank, yank
from spoold.index.jsonapi import absolutize, last_serial_of, python_version_of
from spoold.storage import Storage
from spoold.storage.keys import (
    file_key,
    file_record_key,
    metadata_key,
    pypi_project_key,
    pypi_release_key,
    release_view_key,
)
from testlib.backends import make_storage
from testlib.explorerdists import rich_distribution, rich_metadata

#: Warehouse's keys, from ``_json_data``.
WAREHOUSE_TOP = {"info", "urls", "vulnerabilities", "last_serial", "ownership", "releases"}
WAREHOUSE_INFO = {
    "name", "version", "summary", "description_content_type", "description", "keywords",
    "license", "license_expression", "license_files", "classifiers", "author", "author_email",
    "maintainer", "maintainer_email", "requires_python", "platform", "downloads",
    "package_url", "project_url", "project_urls", "release_url", "requires_dist",
    "provides_extra", "docs_url", "bugtrack_url", "home_page", "download_url", "yanked",
    "yanked_reason", "dynamic",
}
WAREHOUSE_FILE = {
    "filename", "packagetype", "python_version", "has_sig", "comment_text", "md5_digest",
    "digests", "core-metadata", "size", "downloads", "upload_time", "upload_time_iso_8601",
    "url", "requires_python", "yanked", "yanked_reason",
}
T1 = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
T2 = datetime(2024, 6, 1, 8, 30, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return make_storage(request.param, tmp_path)


def doc(storage: Storage, key: str) -> dict:
    data = storage.read_bytes(key)
    assert data is not None, key
    return json.loads(data)


def published(storage: Storage, tmp_path: Path) -> None:
    d1, p1 = rich_distribution("Rich.Pkg", "1.0", tmp_path, summary="first summary")
    publish(storage, d1, p1, now=T1)
    d2, p2 = rich_distribution("Rich.Pkg", "2.0", tmp_path, summary="second summary")
    publish(storage, d2, p2, now=T2)
    d3, p3 = rich_distribution("Rich.Pkg", "3.0rc1", tmp_path, summary="pre")
    publish(storage, d3, p3, now=T2)


def test_the_documents_have_warehouses_fields_and_types(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path)
    project = doc(storage, pypi_project_key("rich-pkg"))
    assert set(project) == WAREHOUSE_TOP
    assert set(project["info"]) == WAREHOUSE_INFO
    release = doc(storage, pypi_release_key("rich-pkg", "1.0"))
    assert set(release) == WAREHOUSE_TOP - {"releases"}
    for document in (project, release):
        for item in document["urls"]:
            assert set(item) == WAREHOUSE_FILE
    info = project["info"]
    # The shown version: the newest that is neither yanked nor a pre-release.
    assert info["version"] == "2.0" and info["summary"] == "second summary"
    assert info["name"] == "Rich.Pkg"
    assert info["description_content_type"] == "text/markdown"
    assert info["description"].startswith("# Title")
    assert info["keywords"] == "alpha,beta" and info["license_expression"] == "MIT"
    assert info["license_files"] == ["LICENSE"]
    assert info["classifiers"] == ["Programming Language :: Python :: 3", "Topic :: Software Development"]
    assert info["author"] == "Ada Lovelace" and info["author_email"] == "Ada <ada@example.org>"
    assert info["maintainer"] is None and info["maintainer_email"] == "Bob <bob@example.org>"
    assert info["requires_dist"] == ["packaging>=20", 'rich; extra == "cli"']
    assert info["provides_extra"] == ["cli"] and info["dynamic"] is None
    assert info["downloads"] == {"last_day": -1, "last_week": -1, "last_month": -1}
    assert info["package_url"] == info["project_url"] == "../../project/rich-pkg/"
    assert info["release_url"] == "../../project/rich-pkg/2.0/"
    assert info["docs_url"] is None and info["bugtrack_url"] is None
    assert info["yanked"] is False and info["yanked_reason"] is None
    assert project["vulnerabilities"] == [] and project["last_serial"] >= 3
    assert project["ownership"] == {"roles": [], "organization": None}
    assert list(project["releases"]) == ["3.0rc1", "2.0", "1.0"]  # newest first
    [wheel] = project["releases"]["1.0"]
    assert wheel["packagetype"] == "bdist_wheel" and wheel["python_version"] == "py3"
    assert wheel["upload_time"] == "2024-05-01T12:00:00"
    assert wheel["upload_time_iso_8601"] == "2024-05-01T12:00:00.250000Z"
    assert wheel["digests"]["sha256"] and len(wheel["digests"]["blake2b_256"]) == 64
    assert wheel["md5_digest"] is None and wheel["has_sig"] is False
    assert wheel["url"] == "../../packages/rich-pkg/rich_pkg-1.0-py3-none-any.whl"
    assert release["urls"][0]["url"] == "../../../packages/rich-pkg/rich_pkg-1.0-py3-none-any.whl"
    assert wheel["core-metadata"] == {"sha256": wheel["core-metadata"]["sha256"]}
    assert release["info"]["version"] == "1.0" and release["info"]["summary"] == "first summary"


def test_what_renovate_and_dependabot_read(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path)
    yank(storage, "rich-pkg", "1.0", "broken build")
    project = doc(storage, pypi_project_key("rich-pkg"))
    # renovate: info.home_page, info.project_urls, releases[*][*] upload_time/yanked/requires_python
    assert project["info"]["home_page"] == "https://example.org/home"
    assert project["info"]["project_urls"] == {"Homepage": "https://example.org/home",
                                               "Source": "https://example.org/src",
                                               "Tracker": "javascript:alert(1)"}
    for version, files in project["releases"].items():
        for item in files:
            datetime.fromisoformat(item["upload_time"])
            datetime.fromisoformat(item["upload_time_iso_8601"].replace("Z", "+00:00"))
            assert item["requires_python"] == ">=3.9"
            assert item["yanked"] is (version == "1.0")
            assert item["packagetype"] in ("bdist_wheel", "sdist")
    assert project["releases"]["1.0"][0]["yanked_reason"] == "broken build"
    release = doc(storage, pypi_release_key("rich-pkg", "1.0"))
    assert release["info"]["yanked"] is True and release["info"]["yanked_reason"] == "broken build"
    unyank(storage, "rich-pkg", "1.0")
    assert doc(storage, pypi_release_key("rich-pkg", "1.0"))["info"]["yanked"] is False


def test_yanking_the_shown_version_shows_the_next(storage: Storage, tmp_path: Path) -> None:
    published(storage, tmp_path)
    yank(storage, "rich-pkg", "2.0")
    assert doc(storage, pypi_project_key("rich-pkg"))["info"]["version"] == "1.0"
    yank(storage, "rich-pkg", "1.0")
    assert doc(storage, pypi_project_key("rich-pkg"))["info"]["version"] == "3.0rc1"
    yank(storage, "rich-pkg", "3.0rc1")
    assert doc(storage, pypi_project_key("rich-pkg"))["info"]["version"] == "3.0rc1"


def test_remove_takes_documents_and_records_away(storage: Storage, tmp_path: Path) -> None:
    d, p = rich_distribution("gone", "1.0", tmp_path)
    publish(storage, d, p, now=T1)
    assert storage.read_bytes(file_record_key("gone", d.filename)) is not None
    remove(storage, "gone", d.filename)
    for key in (pypi_project_key("gone"), pypi_release_key("gone", "1.0"),
                release_view_key("gone", "1.0"), file_record_key("gone", d.filename)):
        assert storage.read_bytes(key) is None, key


def test_the_release_view_follows_the_first_upload(storage: Storage, tmp_path: Path) -> None:
    wheel, wp = rich_distribution("pair", "1.0", tmp_path, summary="from the wheel")
    publish(storage, wheel, wp, now=T1)
    sdist, sp = rich_distribution("pair", "1.0", tmp_path, kind="sdist", summary="from the sdist")
    publish(storage, sdist, sp, now=T2)
    view = ReleaseView.from_json(storage.read_bytes(release_view_key("pair", "1.0")) or b"")
    assert view.source == wheel.filename and view.summary == "from the wheel"
    assert "<h1" in view.description_html
    remove(storage, "pair", wheel.filename)
    view = ReleaseView.from_json(storage.read_bytes(release_view_key("pair", "1.0")) or b"")
    assert view.source == sdist.filename and view.summary == "from the sdist"
    [item] = doc(storage, pypi_project_key("pair"))["urls"]
    assert item["packagetype"] == "sdist" and item["python_version"] == "source"


def test_reindex_fills_a_tree_from_before_the_explorer(storage: Storage, tmp_path: Path) -> None:
    d, p = rich_distribution("old-tree", "1.0", tmp_path, summary="adopted")
    storage.put_file(file_key("old-tree", d.filename), p, d.sha256)
    storage.put_file(metadata_key("old-tree", d.filename), d.metadata, d.metadata_sha256)
    reindex(storage)
    project = doc(storage, pypi_project_key("old-tree"))
    assert project["info"]["summary"] == "adopted"
    assert project["urls"][0]["digests"]["blake2b_256"] == d.blake2_256
    # an sdist without a served .metadata: the extractor is asked
    s, sp = rich_distribution("old-tree", "2.0", tmp_path, kind="sdist", summary="extracted")
    storage.put_file(file_key("old-tree", s.filename), sp, s.sha256)
    reindex(storage, ["old-tree"], extract=lambda path, name: s.metadata)
    assert doc(storage, pypi_release_key("old-tree", "2.0"))["info"]["summary"] == "extracted"


def test_hostile_metadata_stays_data(storage: Storage, tmp_path: Path) -> None:
    metadata = rich_metadata("evil", "1.0", summary='<script>x</script>"\\u0000',
                             readme='"url":"../../packages/x" </script>')
    d, p = rich_distribution("evil", "1.0", tmp_path, metadata=metadata)
    publish(storage, d, p, now=T1)
    data = storage.read_bytes(pypi_project_key("evil")) or b""
    absolute = absolutize(data, "https://idx.example", project_doc=True)
    project = json.loads(absolute)
    assert project["info"]["summary"] == '<script>x</script>"\\u0000'
    assert project["info"]["description"] == '"url":"../../packages/x" </script>'
    assert project["urls"][0]["url"].startswith("https://idx.example/packages/evil/")
    assert project["info"]["project_url"] == "https://idx.example/project/evil/"
    assert last_serial_of(data) == project["last_serial"]


def test_python_version() -> None:
    assert python_version_of("a-1.0.tar.gz") == "source"
    assert python_version_of("a-1.0-cp311-cp311-manylinux_2_17_x86_64.whl") == "cp311"
    assert python_version_of("a-1.0-1-py2.py3-none-any.whl") == "py2.py3"
