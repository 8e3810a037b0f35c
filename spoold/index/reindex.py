"""Rebuilding manifests and pages from the stored files (disaster recovery, adoption).

The stored distributions are the truth; manifests and pages are derived from them, so a
tree copied without its pages, a manifest lost to a crash or files put in place by hand
are all repaired by reindexing. What only a manifest knows (upload times, yanks, the
display name) is kept where the old manifest is still readable.
"""

from __future__ import annotations

import email.parser
import hashlib
import io
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.utils import canonicalize_name

from spoold.errors import Rejected
from spoold.hashing import hash_stream
from spoold.index.documents import (
    NotFound,
    normalize_project,
    update_manifest,
    update_root,
    write_pages,
)
from spoold.index.explorer_docs import refresh, remember_file
from spoold.index.manifest import FileEntry, Manifest, RootIndex, version_from_filename
from spoold.inspection import inspect_file
from spoold.inspection.pep658 import metadata_servable
from spoold.storage.base import Storage
from spoold.storage.keys import PACKAGES, metadata_key, project_files_prefix, project_json_key

__all__ = [
    "MetadataExtractor",
    "ReindexProgress",
    "ReindexReport",
    "extract_metadata",
    "reindex",
]

#: ``(path, filename) -> core metadata bytes``; raises Rejected for a broken file.
MetadataExtractor = Callable[[Path, str], bytes]


@dataclass(frozen=True, slots=True)
class ReindexProgress:
    done: int
    total: int
    project: str


@dataclass(frozen=True, slots=True)
class ReindexReport:
    projects: int
    files: int
    #: ``.metadata`` files extracted from distributions and stored.
    metadata_extracted: int
    problems: tuple[str, ...]
    #: ``.metadata`` files deleted because they should never have been served (sdists
    #: whose PKG-INFO is not binding, stored by an older spoold).
    metadata_withdrawn: int = 0


def extract_metadata(path: Path, filename: str) -> bytes:
    """Core metadata of a stored distribution adopted without ``.metadata``.

    The file goes through the full inspection (archive limits, RECORD, metadata
    validation), like any upload: a reindex never trusts a file more than an upload.
    """
    return bytes(inspect_file(path, filename).metadata)


def _headers(metadata: bytes) -> dict[str, str]:
    message = email.parser.BytesHeaderParser().parse(io.BytesIO(metadata))
    return {k: str(message.get(k)) for k in ("Name", "Requires-Python") if message.get(k)}


def _sha256_of(storage: Storage, key: str) -> str:
    with storage.open_read(key) as stream:
        return hash_stream(stream, blake2=False).sha256


def _kind_of(filename: str) -> str:
    return "wheel" if filename.endswith(".whl") else "sdist"


@dataclass(slots=True)
class _Rebuilt:
    """What reading one project's stored files found."""

    entries: list[FileEntry]
    display_name: str | None = None
    extracted: int = 0
    #: ``.metadata`` keys an older spoold stored for sdists whose PKG-INFO is not binding;
    #: deleted once the pages no longer advertise them.
    withdrawn: list[str] = field(default_factory=list)


def _core_metadata(
    storage: Storage,
    project: str,
    filename: str,
    key: str,
    extract: MetadataExtractor,
    rebuilt: _Rebuilt,
    problems: list[str],
) -> tuple[bytes | None, bool]:
    """The file's core metadata and whether it is served (stored as ``.metadata``).

    A stored ``.metadata`` is used as it is, unless the serving rule
    (:mod:`spoold.inspection.pep658`) says it should never have been stored. A file
    without one is inspected: the metadata is stored if it may be served, and otherwise
    only read for the index (Requires-Python), so such sdists are inspected again on every
    reindex; that is the price of not serving what pip would misread.
    """
    kind = _kind_of(filename)
    stored = storage.read_bytes(metadata_key(project, filename))
    if stored is not None:
        if metadata_servable(kind, stored):
            return stored, True
        rebuilt.withdrawn.append(metadata_key(project, filename))
        return stored, False
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = storage.local_path(key) or storage.fetch(key, Path(tmp) / "dist")
            metadata = extract(local, filename)
    except Rejected as exc:
        problems.append(f"{key}: listed without core metadata: {exc}")
        return None, False
    if not metadata_servable(kind, metadata):
        return metadata, False
    storage.put_file(
        metadata_key(project, filename), metadata, hashlib.sha256(metadata).hexdigest()
    )
    rebuilt.extracted += 1
    return metadata, True


def _rebuild_entries(
    storage: Storage,
    project: str,
    extract: MetadataExtractor,
    problems: list[str],
) -> _Rebuilt:
    """Entries for every distribution stored under ``packages/<project>/``."""
    objects = {o.key.rsplit("/", 1)[-1]: o for o in storage.list_files(project_files_prefix(project))}
    rebuilt = _Rebuilt([])
    for filename, obj in sorted(objects.items()):
        if filename.endswith(".metadata"):
            continue
        version = version_from_filename(filename)
        if version is None:
            problems.append(f"{obj.key}: not a distribution filename, left out of the index")
            continue
        metadata, served = _core_metadata(
            storage, project, filename, obj.key, extract, rebuilt, problems
        )
        headers = _headers(metadata) if metadata is not None else {}
        rebuilt.display_name = rebuilt.display_name or headers.get("Name")
        rebuilt.entries.append(
            FileEntry(
                filename=filename,
                version=version,
                size=obj.size,
                sha256=_sha256_of(storage, obj.key),
                upload_time=obj.modified,
                metadata_sha256=(
                    hashlib.sha256(metadata).hexdigest() if served and metadata else None
                ),
                requires_python=headers.get("Requires-Python"),
            )
        )
    return rebuilt


def _reindex_project(
    storage: Storage, project: str, extract: MetadataExtractor, problems: list[str]
) -> tuple[Manifest, _Rebuilt]:
    rebuilt = _rebuild_entries(storage, project, extract, problems)
    entries, display_name = rebuilt.entries, rebuilt.display_name
    if not entries and storage.read_doc(project_json_key(project)) is None:
        raise NotFound(f"nothing is stored under {project_files_prefix(project)}")

    def rebuild(current: Manifest | None) -> Manifest:
        # Keep what only the manifest knows (upload time, yank state, display name).
        base = current or Manifest.empty(project, display_name)
        merged = []
        for entry in entries:
            old = base.file(entry.filename)
            if old is not None and old.sha256 == entry.sha256:
                entry = replace(entry, upload_time=old.upload_time, yanked=old.yanked)
            merged.append(entry)
        fresh = Manifest(
            project=project,
            name=base.name if current else (display_name or project),
            generation=base.generation,
            files=(),
            listed=base.listed,
        )
        for entry in merged:
            fresh = fresh.with_file(entry)
        return current if current is not None and fresh == current else fresh

    manifest, _, stored = update_manifest(storage, project, rebuild)
    write_pages(storage, manifest, stored)
    for entry in manifest.files:  # the explorer's records of files from before it
        remember_file(storage, project, entry, extract)
    refresh(storage, manifest)
    # Only now that no page advertises them: a client that read an older page may still
    # fetch one for a moment, and finds it until here.
    for key in rebuilt.withdrawn:
        storage.delete(key)
    return manifest, rebuilt


def reindex(
    storage: Storage,
    projects: Iterable[str] | None = None,
    *,
    extract: MetadataExtractor = extract_metadata,
    progress: Callable[[ReindexProgress], None] | None = None,
) -> ReindexReport:
    """Rebuild manifests and pages from the stored files (disaster recovery, adoption).

    With no ``projects``, every folder under ``packages/`` is reindexed and the root
    index is rebuilt to list exactly the projects that have files. Files without a
    ``.metadata`` get one extracted with ``extract`` if it may be served
    (:mod:`spoold.inspection.pep658`); a stored one that may not (an sdist's PKG-INFO an
    older spoold published) stops being advertised and is deleted. Yank states and
    upload times are kept from the existing manifest where it is readable.
    """
    problems: list[str] = []
    full = projects is None
    if projects is None:
        names = []
        for folder in storage.list_dirs(PACKAGES):
            if canonicalize_name(folder) != folder:
                problems.append(
                    f"{PACKAGES}{folder}/: not a normalized project name; "
                    f"move its files to packages/{canonicalize_name(folder)}/"
                )
                continue
            names.append(folder)
    else:
        names = [normalize_project(p) for p in projects]
    files = extracted = withdrawn = 0
    listed: dict[str, str] = {}
    for done, project in enumerate(names, 1):
        try:
            manifest, rebuilt = _reindex_project(storage, project, extract, problems)
            files += len(rebuilt.entries)
            extracted += rebuilt.extracted
            withdrawn += len(rebuilt.withdrawn)
            if manifest.files:
                listed[project] = manifest.name
        except NotFound as exc:
            problems.append(str(exc))
        if progress is not None:
            progress(ReindexProgress(done, len(names), project))

    def new_root(root: RootIndex | None) -> RootIndex:
        root = root or RootIndex()
        if full:
            return root.with_projects(listed)
        for project, name in listed.items():
            root = root.with_project(project, name)
        return root

    if full or listed:
        update_root(storage, new_root)
        for project in listed:

            def mark(current: Manifest | None) -> Manifest:
                return (current or Manifest.empty(project)).with_listed()

            manifest, changed, stored = update_manifest(storage, project, mark)
            if changed:
                write_pages(storage, manifest, stored)
    return ReindexReport(len(names), files, extracted, tuple(problems), withdrawn)
