"""The project manifest: what the index knows about one project, as an immutable value.

The stored form is the project's PEP 691 JSON page itself (``simple/<project>/index.v1.json``,
rendered by :mod:`spoold.index.pages`), so the static tree needs no private database. The
private part lives under the top-level key ``_spoold`` (PEP 691 reserves keys with a
leading underscore for the index server): the *generation*, bumped by every change and
used to order concurrent writers, the display name, and whether the project is already
in the root index.

Changes are pure functions returning a new manifest (or the same object when nothing
changes, which callers use to skip a write).
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from spoold.errors import SpooldError

__all__ = [
    "CorruptManifest",
    "FileEntry",
    "Manifest",
    "RootEntry",
    "RootIndex",
    "canonical_name",
    "format_time",
    "parse_time",
    "version_from_filename",
]


class CorruptManifest(SpooldError):
    """A stored manifest cannot be read back; ``spoold reindex PROJECT`` rebuilds it."""

    code = "corrupt-manifest"


def format_time(moment: datetime) -> str:
    """PEP 700 ``upload-time``: ISO 8601 in UTC with a ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@functools.lru_cache(maxsize=65536)
def version_from_filename(filename: str) -> str | None:
    """The normalized version a distribution filename declares, or None if it is not one."""
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


@functools.lru_cache(maxsize=65536)  # manifests are parsed and sorted on every change
def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except ValueError:  # InvalidVersion, or more digits than int() takes
        return (0, version)


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One published file as the index lists it."""

    filename: str
    version: str
    size: int
    sha256: str
    upload_time: datetime
    #: sha256 of ``<filename>.metadata`` (PEP 658), None if no metadata file is served.
    metadata_sha256: str | None = None
    requires_python: str | None = None
    #: None: not yanked; a string (maybe empty) is the PEP 592 yank reason.
    yanked: str | None = None
    #: Who uploaded it (a user; None for the trusted spool) and with what client.
    uploader: str | None = None
    client: str | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    """All files of one project; ``generation`` orders the versions of this value."""

    project: str
    name: str
    generation: int = 0
    files: tuple[FileEntry, ...] = ()
    #: True once the project is in the root index (set after the root was updated, so a
    #: crash in between is repaired by the next publish).
    listed: bool = False

    @classmethod
    def empty(cls, project: str, name: str | None = None) -> Manifest:
        return cls(project=canonicalize_name(project), name=name or project)

    # -- reading ---------------------------------------------------------------------

    def file(self, filename: str) -> FileEntry | None:
        for entry in self.files:
            if entry.filename == filename:
                return entry
        return None

    @property
    def versions(self) -> tuple[str, ...]:
        """Every version with a file, yanked or not (PEP 700), oldest first."""
        return tuple(sorted({e.version for e in self.files}, key=_version_key))

    def files_of(self, version: str) -> tuple[FileEntry, ...]:
        """Files whose version equals ``version`` (PEP 440 equality: 1.0 == 1.0.0)."""
        try:
            wanted: Version | str = Version(version)
        except ValueError:  # InvalidVersion, or more digits than int() takes
            wanted = version
        out = []
        for entry in self.files:
            try:
                have: Version | str = Version(entry.version)
            except ValueError:  # InvalidVersion, or more digits than int() takes
                have = entry.version
            if have == wanted:
                out.append(entry)
        return tuple(out)

    # -- changing --------------------------------------------------------------------

    def with_file(self, entry: FileEntry) -> Manifest:
        """Add a file; the same object if a file of that name is already listed."""
        if self.file(entry.filename) is not None:
            return self
        return self._with_files((*self.files, entry))

    def without_file(self, filename: str) -> Manifest:
        if self.file(filename) is None:
            return self
        return self._with_files(tuple(e for e in self.files if e.filename != filename))

    def with_yank(self, filenames: frozenset[str], reason: str | None) -> Manifest:
        """Set (reason) or clear (None) the yank state of the named files."""
        changed = False
        files = []
        for entry in self.files:
            if entry.filename in filenames and entry.yanked != reason:
                entry = replace(entry, yanked=reason)
                changed = True
            files.append(entry)
        return self._with_files(tuple(files)) if changed else self

    def with_listed(self) -> Manifest:
        return self if self.listed else replace(self, listed=True)

    def with_generation(self, generation: int) -> Manifest:
        return replace(self, generation=generation)

    def _with_files(self, files: tuple[FileEntry, ...]) -> Manifest:
        ordered = sorted(files, key=lambda e: (_version_key(e.version), e.filename))
        return replace(self, files=tuple(ordered))


@dataclass(frozen=True, slots=True)
class RootEntry:
    project: str
    name: str


@dataclass(frozen=True, slots=True)
class RootIndex:
    """The list of projects (``simple/index.v1.json``), changed only when one is new."""

    generation: int = 0
    projects: tuple[RootEntry, ...] = field(default=())

    def _place(self, project: str) -> tuple[int, bool]:
        """Where ``project`` is or would go (a binary search: a large root index is long)."""
        i = bisect.bisect_left(self.projects, project, key=_project_of)
        return i, i < len(self.projects) and self.projects[i].project == project

    def has(self, project: str) -> bool:
        return self._place(project)[1]

    def with_project(self, project: str, name: str) -> RootIndex:
        """Add one project, keeping the order."""
        i, present = self._place(project)
        if present:
            return self
        return replace(self, projects=(*self.projects[:i], RootEntry(project, name), *self.projects[i:]))

    def with_projects(self, entries: dict[str, str]) -> RootIndex:
        """Exactly these projects (normalized name -> display name); for a full reindex."""
        wanted = tuple(RootEntry(p, entries[p]) for p in sorted(entries))
        return self if wanted == self.projects else replace(self, projects=wanted)

    def with_generation(self, generation: int) -> RootIndex:
        return replace(self, generation=generation)


def _project_of(entry: RootEntry) -> str:
    return entry.project


@functools.lru_cache(maxsize=1 << 18)
def canonical_name(name: str) -> str:
    """canonicalize_name, memoized: reading the root index normalizes every name in it."""
    return canonicalize_name(name)
