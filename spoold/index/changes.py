"""Yanking (PEP 592), unyanking and removing published files.

Each is one compare-and-swap of the project's manifest (:mod:`spoold.index.documents`)
followed by its pages; a remove deletes the file only after no page links it any more.
"""

from __future__ import annotations

from dataclasses import dataclass

from spoold.index.documents import NotFound, normalize_project, update_manifest, write_pages
from spoold.index.explorer_docs import refresh
from spoold.index.manifest import Manifest, version_from_filename
from spoold.storage.base import Storage
from spoold.storage.keys import file_key, file_record_key, metadata_key

__all__ = ["ChangeResult", "remove", "unyank", "yank"]


@dataclass(frozen=True, slots=True)


class ChangeResult:
    """The outcome of yank / unyank / remove: the files whose state changed."""

    project: str
    filenames: tuple[str, ...]
    generation: int

    @property
    def changed(self) -> bool:
        return bool(self.filenames)


def _targets(manifest: Manifest | None, project: str, target: str) -> frozenset[str]:
    if manifest is None or not manifest.files:
        raise NotFound(f"project {project!r} has no published files")
    if manifest.file(target) is not None:
        return frozenset({target})
    files = manifest.files_of(target)
    if not files:
        versions = ", ".join(manifest.versions[-10:])
        raise NotFound(
            f"{project} has no file or version {target[:100]!r} (latest versions: {versions})"
        )
    return frozenset(e.filename for e in files)


def _set_yank(storage: Storage, project: str, target: str, reason: str | None) -> ChangeResult:
    project = normalize_project(project)
    changed_files: list[str] = []
    targeted: set[str] = set()

    def change(current: Manifest | None) -> Manifest:
        names = _targets(current, project, target)
        targeted.update(names)
        assert current is not None
        changed_files[:] = sorted(
            n for n in names if (e := current.file(n)) is not None and e.yanked != reason
        )
        return current.with_yank(names, reason)

    manifest, changed, stored = update_manifest(storage, project, change)
    write_pages(storage, manifest, stored)
    refresh(storage, manifest, {e.version for e in manifest.files if e.filename in targeted})
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
    project = normalize_project(project)
    if not filename or "/" in filename or "\x00" in filename or filename.startswith("."):
        raise NotFound(f"{filename!r} is not a distribution filename")
    stored = storage.stat(file_key(project, filename)) is not None

    def change(current: Manifest | None) -> Manifest:
        if current is None or current.file(filename) is None:
            if stored:  # an orphan (crashed publish): delete it all the same
                return current or Manifest.empty(project)
            raise NotFound(f"{project} has no file {filename!r}")
        return current.without_file(filename)

    manifest, changed, stored_json = update_manifest(storage, project, change)
    storage.delete(metadata_key(project, filename))
    storage.delete(file_key(project, filename))
    write_pages(storage, manifest, stored_json)
    version = version_from_filename(filename)
    refresh(storage, manifest, {version} if version is not None else set())
    storage.delete(file_record_key(project, filename))
    return ChangeResult(project, (filename,) if changed or stored else (), manifest.generation)
