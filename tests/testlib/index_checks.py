"""Reading back what publishing stored, and checking it is consistent (for tests)."""

from __future__ import annotations

from spoold.index.manifest import Manifest
from spoold.index.pages import parse_project_json, parse_root_json
from spoold.storage import Storage
from spoold.storage.keys import project_html_key, project_json_key
from testlib.pages import parse_html_page


def manifest_of(storage: Storage, project: str) -> Manifest:
    data = storage.read_bytes(project_json_key(project))
    assert data is not None, f"no visible manifest for {project}"
    return parse_project_json(data)


def html_files(storage: Storage, project: str) -> set[str]:
    data = storage.read_bytes(project_html_key(project))
    assert data is not None
    return {link.text for link in parse_html_page(data).links}


def root_projects(storage: Storage) -> set[str]:
    data = storage.read_bytes("simple/index.v1.json")
    assert data is not None
    return {p.project for p in parse_root_json(data).projects}


def assert_consistent(storage: Storage, project: str) -> Manifest:
    """Pages agree with the manifest and every stored distribution is listed."""
    manifest = manifest_of(storage, project)
    listed = {e.filename for e in manifest.files}
    assert html_files(storage, project) == listed
    stored = {
        o.key.rsplit("/", 1)[-1]
        for o in storage.list_files(f"packages/{project}/")
        if not o.key.endswith(".metadata")
    }
    assert stored == listed
    assert storage.generation_of(project_html_key(project)) == manifest.generation
    return manifest
