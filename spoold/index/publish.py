"""Publishing, yanking, removing and reindexing, as library functions over a Storage.

Every change follows the same order, chosen so that a crash at any point leaves a state
the next attempt (or ``spoold reindex``) completes, and no reader ever sees a link to a
file that is not stored yet:

1. store the immutable files (the distribution, then its ``.metadata``);
2. update the project's manifest by compare-and-swap (read, merge, conditional write;
   retry with jittered backoff when another writer won): each generation is derived from
   the previous one, so no concurrent change is lost;
3. store the derived pages, each tagged with the manifest generation it shows; a page is
   only ever replaced by a newer generation, so a slow writer cannot put back an old one;
4. when the project is new, add it to the root index (itself a compare-and-swap), then
   mark the manifest ``listed`` -- a crash in between is repaired by the next publish.

The cost of a publish depends on the size of its project only: nothing lists projects.
"""

from __future__ import annotations

import email.parser
import hashlib
import io
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from packaging.utils import canonicalize_name

from spoold.hashing import hash_stream
from spoold.inspection.distribution import Distribution
from spoold.errors import FileExists, Rejected, SpooldError, Transient
from spoold.index.pages import (
    render_project_html,
    render_project_json,
    render_root_html,
    render_root_json,
)
from spoold.index.manifest import FileEntry, Manifest, RootIndex, version_from_filename
from spoold.storage.base import Storage
from spoold.storage.keys import (
    ROOT_HTML,
    ROOT_JSON,
    file_key,
    metadata_key,
    project_files_prefix,
    project_html_key,
    project_json_key,
)

__all__ = [
    "ROOT_HTML",
    "ROOT_JSON",
    "ChangeResult",
    "MetadataExtractor",
    "NotFound",
    "PublishResult",
    "ReindexProgress",
    "ReindexReport",
    "TooMuchContention",
    "file_key",
    "metadata_key",
    "project_html_key",
    "project_json_key",
    "publish",
    "reindex",
    "remove",
    "unyank",
    "yank",
]

#: Lost compare-and-swaps before giving up (as Transient: the worker defers the item).
MAX_ATTEMPTS = 500
#: Largest METADATA / PKG-INFO the fallback extractor reads.
MAX_METADATA = 10 * 1024 * 1024

T = TypeVar("T", Manifest, RootIndex)
#: ``(path, filename) -> core metadata bytes``; raises Rejected for a broken file.
MetadataExtractor = Callable[[Path, str], bytes]


class NotFound(SpooldError):
    """The project, file or version named on the command line is not published."""

    code = "not-found"


class TooMuchContention(Transient):
    """So many writers changed one manifest at once that this one never got a turn."""

    code = "contention"


@dataclass(frozen=True, slots=True)
class PublishResult:
    """The outcome of :func:`publish`: ``published`` False means nothing changed."""

    project: str
    filename: str
    published: bool
    generation: int

    @property
    def unchanged(self) -> bool:
        return not self.published


@dataclass(frozen=True, slots=True)
class ChangeResult:
    """The outcome of yank / unyank / remove: the files whose state changed."""

    project: str
    filenames: tuple[str, ...]
    generation: int

    @property
    def changed(self) -> bool:
        return bool(self.filenames)


@dataclass(frozen=True, slots=True)
class ReindexProgress:
    done: int
    total: int
    project: str


@dataclass(frozen=True, slots=True)
class ReindexReport:
    projects: int
    files: int
    metadata_extracted: int
    problems: tuple[str, ...]


def _normalized(project: str) -> str:
    normalized = canonicalize_name(project)
    if not normalized or "/" in normalized or normalized.startswith("."):
        raise NotFound(f"{project!r} is not a valid project name")
    return normalized


# -- compare-and-swap ---------------------------------------------------------------------


def _cas(
    storage: Storage,
    key: str,
    floor_keys: tuple[str, ...],
    parse: Callable[[bytes], T],
    render: Callable[[T], bytes],
    change: Callable[[T | None], T],
) -> tuple[T, bool, bytes]:
    """Apply ``change`` to the newest version of a document until a write sticks.

    ``change`` receives the current value (None if there is none) and returns the new
    value, or the very same object when there is nothing to do. Returns the value now
    stored, whether this call changed it, and its stored bytes. The new generation is the old one + 1; a
    document created from nothing starts above any page left by an earlier history
    (``floor_keys``), so pages rendered from it are not mistaken for older ones.
    """
    floor = 0
    for attempt in range(MAX_ATTEMPTS):
        doc = storage.read_doc(key)
        if doc is None:
            # Read the floor first, then look again: a creator that still finds nothing
            # read the floor before any page of a new history existed, so every
            # concurrent creator picks the same generation and only one can win.
            floor = max((storage.generation_of(k) or 0 for k in (key, *floor_keys)), default=0)
            doc = storage.read_doc(key)
        current = parse(doc.data) if doc is not None else None
        storage.checkpoint("doc-read", key)
        updated = change(current)
        if updated is current and current is not None:
            assert doc is not None
            return current, False, doc.data
        generation = current.generation + 1 if current is not None else floor + 1
        updated = updated.with_generation(generation)
        data = render(updated)
        if storage.swap_doc(key, data, generation, doc):
            return updated, True, data
        storage.checkpoint("swap-lost", key)
        storage.backoff(attempt)
    raise TooMuchContention(
        f"{key} changed {MAX_ATTEMPTS} times while this update was trying to land; "
        "it will be retried later"
    )


def _update_manifest(
    storage: Storage, project: str, change: Callable[[Manifest | None], Manifest]
) -> tuple[Manifest, bool, bytes]:
    key = project_json_key(project)
    return _cas(
        storage,
        key,
        (project_html_key(project),),
        lambda data: Manifest.from_json(data, where=f"the manifest of {project}"),
        render_project_json,
        change,
    )


def _write_pages(storage: Storage, manifest: Manifest, stored_json: bytes) -> None:
    """Bring both pages to this generation (no-op where a newer one is already there).

    The JSON page is the manifest itself; on local storage this call also repairs its
    visible copy if a writer died before putting it in place.
    """
    storage.checkpoint("pages-ready", manifest.project)
    storage.put_page(
        project_html_key(manifest.project), render_project_html(manifest), manifest.generation
    )
    if not storage.docs_are_pages:
        storage.put_page(project_json_key(manifest.project), stored_json, manifest.generation)


def _ensure_listed(storage: Storage, manifest: Manifest) -> Manifest:
    """Add a new project to the root index, then remember that in its manifest."""
    if manifest.listed:
        return manifest

    def add(root: RootIndex | None) -> RootIndex:
        root = root or RootIndex()
        return root.with_project(manifest.project, manifest.name)

    _update_root(storage, add)

    def mark(current: Manifest | None) -> Manifest:
        if current is None:  # removed in between; nothing left to mark
            return Manifest.empty(manifest.project, manifest.name).with_listed()
        return current.with_listed()

    manifest, _, stored = _update_manifest(storage, manifest.project, mark)
    _write_pages(storage, manifest, stored)
    return manifest


def _update_root(
    storage: Storage, change: Callable[[RootIndex | None], RootIndex]
) -> RootIndex:
    root, _, stored = _cas(storage, ROOT_JSON, (ROOT_HTML,), RootIndex.from_json, render_root_json, change)
    storage.put_page(ROOT_HTML, render_root_html(root), root.generation)
    if not storage.docs_are_pages:
        storage.put_page(ROOT_JSON, stored, root.generation)
    return root


# -- publishing -----------------------------------------------------------------------------


def _store_metadata(storage: Storage, project: str, filename: str, metadata: bytes) -> str:
    """Store ``<filename>.metadata``; return the sha256 of what is stored.

    Stored bytes win over ours (files are immutable once served): if they differ, the
    index advertises the stored file's hash, so clients always see a consistent pair.
    """
    digest = hashlib.sha256(metadata).hexdigest()
    key = metadata_key(project, filename)
    try:
        storage.put_file(key, metadata, digest)
        return digest
    except FileExists:
        stored = storage.read_bytes(key)
        if stored is None:
            storage.replace_file(key, metadata)
            return digest
        return hashlib.sha256(stored).hexdigest()


def publish(
    storage: Storage,
    dist: Distribution,
    payload_path: Path,
    *,
    now: datetime | None = None,
) -> PublishResult:
    """Publish a validated distribution; idempotent for the same bytes.

    Raises :class:`~spoold.errors.FileExists` if the filename is published with other
    bytes, and :class:`~spoold.storage.StorageUnavailable` (transient) if storage fails.
    A call interrupted at any point can simply be repeated.
    """
    project = _normalized(dist.project)
    storage.put_file(file_key(project, dist.filename), Path(payload_path), dist.sha256)
    metadata_sha256 = _store_metadata(storage, project, dist.filename, dist.metadata)
    entry = FileEntry(
        filename=dist.filename,
        version=dist.version,
        size=dist.size,
        sha256=dist.sha256,
        upload_time=now or datetime.now(UTC),
        metadata_sha256=metadata_sha256,
        requires_python=dist.requires_python,
    )

    def add(current: Manifest | None) -> Manifest:
        manifest = current or Manifest.empty(project, dist.name)
        return manifest.with_file(entry)

    manifest, changed, stored = _update_manifest(storage, project, add)
    _write_pages(storage, manifest, stored)
    manifest = _ensure_listed(storage, manifest)
    return PublishResult(project, dist.filename, changed, manifest.generation)


# -- yank, unyank, remove ------------------------------------------------------------------


def _targets(manifest: Manifest | None, project: str, target: str) -> frozenset[str]:
    if manifest is None or not manifest.files:
        raise NotFound(f"project {project!r} has no published files")
    if manifest.file(target) is not None:
        return frozenset({target})
    files = manifest.files_of(target)
    if not files:
        versions = ", ".join(manifest.versions[-10:])
        raise NotFound(
            f"{project} has no file or version {target!r} (latest versions: {versions})"
        )
    return frozenset(e.filename for e in files)


def _set_yank(storage: Storage, project: str, target: str, reason: str | None) -> ChangeResult:
    project = _normalized(project)
    changed_files: list[str] = []

    def change(current: Manifest | None) -> Manifest:
        names = _targets(current, project, target)
        assert current is not None
        changed_files[:] = sorted(
            n for n in names if (e := current.file(n)) is not None and e.yanked != reason
        )
        return current.with_yank(names, reason)

    manifest, changed, stored = _update_manifest(storage, project, change)
    _write_pages(storage, manifest, stored)
    return ChangeResult(project, tuple(changed_files) if changed else (), manifest.generation)


def yank(storage: Storage, project: str, target: str, reason: str = "") -> ChangeResult:
    """Yank (PEP 592) one file, or every file of a version; ``target`` is either."""
    return _set_yank(storage, project, target, reason)


def unyank(storage: Storage, project: str, target: str) -> ChangeResult:
    return _set_yank(storage, project, target, None)


def remove(storage: Storage, project: str, filename: str) -> ChangeResult:
    """Delete a file from the index and the storage.

    The manifest is updated first, so no page ever links a missing file; then the file
    and its ``.metadata`` are deleted. Removing is for mistakes and takedowns: pip users
    who pinned the file's hash will break, which is why yanking is usually better.
    """
    project = _normalized(project)
    if not filename or "/" in filename or "\x00" in filename or filename.startswith("."):
        raise NotFound(f"{filename!r} is not a distribution filename")
    stored = storage.stat(file_key(project, filename)) is not None

    def change(current: Manifest | None) -> Manifest:
        if current is None or current.file(filename) is None:
            if stored:  # an orphan (crashed publish): delete it all the same
                return current or Manifest.empty(project)
            raise NotFound(f"{project} has no file {filename!r}")
        return current.without_file(filename)

    manifest, changed, stored_json = _update_manifest(storage, project, change)
    storage.delete(metadata_key(project, filename))
    storage.delete(file_key(project, filename))
    _write_pages(storage, manifest, stored_json)
    return ChangeResult(project, (filename,) if changed or stored else (), manifest.generation)


# -- reindex ------------------------------------------------------------------------------


def extract_metadata(path: Path, filename: str) -> bytes:
    """Core metadata of a stored distribution, for files adopted without ``.metadata``.

    Uses :func:`spoold.inspection.inspect.inspect_file` when available (full validation); else a
    bounded read of the wheel's ``.dist-info/METADATA`` or the sdist's ``PKG-INFO``.
    """
    try:
        from spoold.inspection.inspect import inspect_file
    except ImportError:
        return _read_metadata_member(path, filename)
    return bytes(inspect_file(path, filename).metadata)


def _read_metadata_member(path: Path, filename: str) -> bytes:
    try:
        if filename.endswith((".whl", ".zip")):
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    parts = info.filename.split("/")
                    wheel_member = filename.endswith(".whl") and (
                        len(parts) == 2 and parts[0].endswith(".dist-info")
                        and parts[1] == "METADATA"
                    )
                    sdist_member = filename.endswith(".zip") and (
                        len(parts) == 2 and parts[1] == "PKG-INFO"
                    )
                    if (wheel_member or sdist_member) and info.file_size <= MAX_METADATA:
                        return archive.read(info)
        elif filename.endswith(".tar.gz"):
            with tarfile.open(path, "r:gz") as archive:
                for member in archive:
                    parts = member.name.split("/")
                    if len(parts) == 2 and parts[1] == "PKG-INFO" and member.isfile():
                        if member.size > MAX_METADATA:
                            break
                        stream = archive.extractfile(member)
                        if stream is not None:
                            return stream.read(MAX_METADATA)
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise Rejected(f"{filename}: cannot read its metadata: {exc}") from exc
    raise Rejected(f"{filename}: no METADATA / PKG-INFO found")


def _headers(metadata: bytes) -> dict[str, str]:
    message = email.parser.BytesHeaderParser().parse(io.BytesIO(metadata))
    return {k: str(message.get(k)) for k in ("Name", "Requires-Python") if message.get(k)}


def _sha256_of(storage: Storage, key: str) -> str:
    with storage.open_read(key) as stream:
        return hash_stream(stream, blake2=False).sha256


def _rebuild_entries(
    storage: Storage,
    project: str,
    extract: MetadataExtractor,
    problems: list[str],
) -> tuple[list[FileEntry], str | None, int]:
    """Entries for every distribution stored under ``packages/<project>/``."""
    objects = {o.key.rsplit("/", 1)[-1]: o for o in storage.list_files(project_files_prefix(project))}
    entries: list[FileEntry] = []
    display_name: str | None = None
    extracted = 0
    for filename, obj in sorted(objects.items()):
        if filename.endswith(".metadata"):
            continue
        version = version_from_filename(filename)
        if version is None:
            problems.append(f"{obj.key}: not a distribution filename, left out of the index")
            continue
        metadata = storage.read_bytes(metadata_key(project, filename))
        if metadata is None:
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    local = storage.local_path(obj.key) or storage.fetch(
                        obj.key, Path(tmp) / "dist"
                    )
                    metadata = extract(local, filename)
                storage.put_file(
                    metadata_key(project, filename), metadata, hashlib.sha256(metadata).hexdigest()
                )
                extracted += 1
            except Rejected as exc:
                problems.append(f"{obj.key}: listed without core metadata: {exc}")
        headers = _headers(metadata) if metadata is not None else {}
        display_name = display_name or headers.get("Name")
        entries.append(
            FileEntry(
                filename=filename,
                version=version,
                size=obj.size,
                sha256=_sha256_of(storage, obj.key),
                upload_time=obj.modified,
                metadata_sha256=hashlib.sha256(metadata).hexdigest() if metadata else None,
                requires_python=headers.get("Requires-Python"),
            )
        )
    return entries, display_name, extracted


def _reindex_project(
    storage: Storage, project: str, extract: MetadataExtractor, problems: list[str]
) -> tuple[Manifest, int, int]:
    entries, display_name, extracted = _rebuild_entries(storage, project, extract, problems)
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
        rebuilt = Manifest(
            project=project,
            name=base.name if current else (display_name or project),
            generation=base.generation,
            files=(),
            listed=base.listed,
        )
        for entry in merged:
            rebuilt = rebuilt.with_file(entry)
        return current if current is not None and rebuilt == current else rebuilt

    manifest, _, stored = _update_manifest(storage, project, rebuild)
    _write_pages(storage, manifest, stored)
    return manifest, len(entries), extracted


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
    ``.metadata`` get one extracted with ``extract``. Yank states and upload times are
    kept from the existing manifest where it is readable.
    """
    problems: list[str] = []
    full = projects is None
    if projects is None:
        names = []
        for folder in storage.list_dirs("packages/"):
            if canonicalize_name(folder) != folder:
                problems.append(
                    f"packages/{folder}/: not a normalized project name; "
                    f"move its files to packages/{canonicalize_name(folder)}/"
                )
                continue
            names.append(folder)
    else:
        names = [_normalized(p) for p in projects]
    files = extracted = 0
    listed: dict[str, str] = {}
    for done, project in enumerate(names, 1):
        try:
            manifest, count, got = _reindex_project(storage, project, extract, problems)
            files += count
            extracted += got
            if manifest.files:
                listed[project] = manifest.name
        except NotFound as exc:
            problems.append(str(exc))
        if progress is not None:
            progress(ReindexProgress(done, len(names), project))

    def update_root(root: RootIndex | None) -> RootIndex:
        root = root or RootIndex()
        if full:
            return root.with_projects(listed)
        for project, name in listed.items():
            root = root.with_project(project, name)
        return root

    if full or listed:
        _update_root(storage, update_root)
        for project in listed:

            def mark(current: Manifest | None) -> Manifest:
                return (current or Manifest.empty(project)).with_listed()

            manifest, changed, stored = _update_manifest(storage, project, mark)
            if changed:
                _write_pages(storage, manifest, stored)
    return ReindexReport(len(names), files, extracted, tuple(problems))
