"""What the explorer and the JSON API read, rendered once per change of a project.

Called by publish, yank, unyank, remove and reindex after the manifest and its pages are
in place, so what is rendered here never shows a file the index does not list:

* :func:`record_file` (at publish, before the manifest changes): a private copy of the
  file's core metadata and its blake2b-256 (``.spoold/explorer/files/...``): an sdist's
  ``.metadata`` is served only when PEP 643 makes it binding, but the explorer shows
  every release;
* :func:`refresh`: the release views of the versions that changed (metadata fields and
  the description rendered and sanitized once, :mod:`spoold.explorer.release`), the JSON
  API documents ``pypi/<project>/json`` and ``pypi/<project>/<version>/json``
  (:mod:`spoold.index.jsonapi`), and the project's line in the catalog
  (:mod:`spoold.explorer.catalog`).

Every document is written with :meth:`~spoold.storage.base.Storage.put_page` under the
manifest's generation, so a slow writer never puts back an older one; rendering is
deterministic, so two writers of one generation write the same bytes. A release document
is rewritten only when its release changes (its ``last_serial`` is the generation it was
rendered at); the project document on every change.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from spoold.access.roles import Roles
from spoold.access.store import AccessStore
from spoold.errors import SpooldError
from spoold.explorer.catalog import CatalogEntry, set_entry
from spoold.explorer.release import ReleaseView, release_view, shown_version
from spoold.hashing import hash_stream
from spoold.index.jsonapi import render_project_doc, render_release_doc
from spoold.index.manifest import FileEntry, Manifest, format_time
from spoold.storage.base import Storage
from spoold.storage.keys import (
    file_key,
    file_record_key,
    metadata_key,
    pypi_project_key,
    pypi_release_key,
    release_view_key,
)

__all__ = ["FileRecord", "read_record", "record_file", "refresh", "remember_file"]


@dataclass(frozen=True, slots=True)
class FileRecord:
    blake2b_256: str | None
    metadata: bytes | None

    def to_json(self) -> bytes:
        text = self.metadata.decode("utf-8", "surrogateescape") if self.metadata is not None else None
        return (json.dumps({"blake2b_256": self.blake2b_256, "metadata": text},
                           ensure_ascii=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> FileRecord:
        doc = json.loads(data)
        text = doc.get("metadata")
        return cls(doc.get("blake2b_256") or None,
                   text.encode("utf-8", "surrogateescape") if isinstance(text, str) else None)


def record_file(storage: Storage, project: str, filename: str, blake2b_256: str | None,
                metadata: bytes | None) -> None:
    """Keep the file's metadata and blake2b-256 for the explorer (before it is listed)."""
    storage.replace_file(file_record_key(project, filename), FileRecord(blake2b_256, metadata).to_json())


def read_record(storage: Storage, project: str, filename: str) -> FileRecord | None:
    data = storage.read_bytes(file_record_key(project, filename))
    if data is None:
        return None
    try:
        return FileRecord.from_json(data)
    except (ValueError, TypeError, AttributeError):
        return None


def remember_file(storage: Storage, project: str, entry: FileEntry,
                  extract: Callable[[Path, str], bytes] | None = None) -> FileRecord | None:
    """The record of a stored file, made from the stored file if it has none (reindex of
    a tree from before the explorer): its ``.metadata`` or, lacking one, ``extract``
    (``(path, filename) -> bytes``, the full inspection) on a local copy."""
    record = read_record(storage, project, entry.filename)
    if record is not None:
        return record
    key = file_key(project, entry.filename)
    try:
        with storage.open_read(key) as stream:
            blake2 = hash_stream(stream).blake2_256
    except FileNotFoundError:
        return None
    metadata = storage.read_bytes(metadata_key(project, entry.filename))
    if metadata is None and extract is not None:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                local = storage.local_path(key) or storage.fetch(key, Path(tmp) / "dist")
                metadata = extract(local, entry.filename)
        except SpooldError:
            metadata = None
    record_file(storage, project, entry.filename, blake2, metadata)
    return FileRecord(blake2, metadata)


def _view(storage: Storage, manifest: Manifest, version: str, files: list[FileEntry]) -> ReleaseView:
    """The stored view of ``version``, made again if it is missing or its source file
    is no longer the release's first upload."""
    source = min(files, key=lambda e: (e.upload_time, e.filename))
    data = storage.read_bytes(release_view_key(manifest.project, version))
    if data is not None:
        try:
            view = ReleaseView.from_json(data)
            if view.source == source.filename:
                return view
        except (ValueError, TypeError, KeyError):
            pass
    record = read_record(storage, manifest.project, source.filename)
    view = release_view(manifest.project, version, source.filename,
                        record.metadata if record is not None else None)
    storage.put_page(release_view_key(manifest.project, version), view.to_json(), manifest.generation)
    return view


def _blake2(storage: Storage, manifest: Manifest) -> dict[str, str | None]:
    """Each file's blake2b-256: from the project document as stored (one read), the
    file records for files it does not list yet."""
    known: dict[str, str | None] = {}
    data = storage.read_bytes(pypi_project_key(manifest.project))
    if data is not None:
        try:
            for files in json.loads(data).get("releases", {}).values():
                for item in files:
                    known[item["filename"]] = item.get("digests", {}).get("blake2b_256")
        except (ValueError, TypeError, KeyError, AttributeError):
            known = {}
    for entry in manifest.files:
        if not known.get(entry.filename):
            record = read_record(storage, manifest.project, entry.filename)
            known[entry.filename] = record.blake2b_256 if record is not None else None
    return known


def _roles(storage: Storage, project: str) -> Roles | None:
    try:
        return AccessStore(storage).roles(project)
    except SpooldError:
        return None


def refresh(storage: Storage, manifest: Manifest, versions: Iterable[str] | None = None) -> None:
    """Render what changed with ``versions`` (None: every version, for reindex)."""
    project = manifest.project
    groups: dict[str, list[FileEntry]] = {}
    for entry in manifest.files:
        groups.setdefault(entry.version, []).append(entry)
    wanted = set(groups) if versions is None else set(versions)
    views = {v: _view(storage, manifest, v, groups[v]) for v in sorted(wanted) if v in groups}
    shown = shown_version((e.version, e.yanked is not None) for e in manifest.files)
    if shown is None:
        for version in wanted:
            storage.delete(pypi_release_key(project, version))
            storage.delete(release_view_key(project, version))
        storage.delete(pypi_project_key(project))
        set_entry(storage, project, None)
        return
    if shown not in views:
        views[shown] = _view(storage, manifest, shown, groups[shown])
    blake2 = _blake2(storage, manifest)
    roles = _roles(storage, project)
    for version in sorted(wanted):
        if version not in groups:
            storage.delete(pypi_release_key(project, version))
            storage.delete(release_view_key(project, version))
            continue
        storage.put_page(pypi_release_key(project, version),
                         render_release_doc(manifest, version, views[version], blake2, roles),
                         manifest.generation)
    storage.put_page(pypi_project_key(project),
                     render_project_doc(manifest, shown, views[shown], blake2, roles),
                     manifest.generation)
    updated = max(e.upload_time for e in manifest.files)
    set_entry(storage, project, CatalogEntry(project, manifest.name, views[shown].summary or "",
                                             shown, format_time(updated)))
