"""The manifest value: round trip through its stored PEP 691 form, and pure changes."""

from __future__ import annotations

import pytest
from testlib.manifests import entry, sample

from spoold.index.manifest import CorruptManifest, Manifest, version_from_filename
from spoold.index.pages import parse_project_json, render_project_json


def test_round_trip_through_json() -> None:
    manifest = sample().with_listed()
    assert parse_project_json(render_project_json(manifest)) == manifest


def test_unchanged_operations_return_the_same_object() -> None:
    manifest = sample()
    existing = manifest.files[0]
    assert manifest.with_file(existing) is manifest
    assert manifest.without_file("nope.whl") is manifest
    assert manifest.with_yank(frozenset({"nope.whl"}), "x") is manifest
    yanked = manifest.with_yank(frozenset({existing.filename}), "x")
    assert yanked is not manifest
    assert yanked.with_yank(frozenset({existing.filename}), "x") is yanked


def test_files_are_ordered_by_version_then_name() -> None:
    manifest = Manifest.empty("p")
    for filename, version in [
        ("p-10.0.tar.gz", "10.0"),
        ("p-2.0.tar.gz", "2.0"),
        ("p-2.0-py3-none-any.whl", "2.0"),
        ("p-1.0rc1.tar.gz", "1.0rc1"),
    ]:
        manifest = manifest.with_file(entry(filename, version))
    assert [e.filename for e in manifest.files] == [
        "p-1.0rc1.tar.gz",
        "p-2.0-py3-none-any.whl",
        "p-2.0.tar.gz",
        "p-10.0.tar.gz",
    ]
    assert manifest.versions == ("1.0rc1", "2.0", "10.0")


def test_files_of_uses_version_equality() -> None:
    manifest = Manifest.empty("p").with_file(entry("p-1.0.0.tar.gz", "1.0.0"))
    assert [e.filename for e in manifest.files_of("1.0")] == ["p-1.0.0.tar.gz"]
    assert manifest.files_of("1.0.1") == ()


@pytest.mark.parametrize(
    ("filename", "version"),
    [
        ("foo_bar-1.0-py3-none-any.whl", "1.0"),
        ("foo-bar-2.0.post1.tar.gz", "2.0.post1"),
        ("foo-1.0.zip", "1.0"),
        ("README.txt", None),
        ("foo.egg", None),
    ],
)
def test_version_from_filename(filename: str, version: str | None) -> None:
    assert version_from_filename(filename) == version


@pytest.mark.parametrize("data", [b"", b"{}", b"[1]", b'{"name": "x", "files": [{}]}'])
def test_corrupt_manifest_says_how_to_fix(data: bytes) -> None:
    with pytest.raises(CorruptManifest, match="spoold reindex"):
        parse_project_json(data)
