"""Publishing a validated distribution: store its files, then list it (idempotently).

The order of the steps, and why a crash anywhere is safe, is in
:mod:`spoold.index.documents`. The cost of a publish depends on the size of its project
only: nothing lists projects. The core metadata is stored as ``<file>.metadata`` and
advertised only when the distribution says it may be
(:attr:`~spoold.inspection.distribution.Distribution.metadata_servable`): an sdist whose
PKG-INFO is not binding gets neither, so pip builds it to learn its dependencies.

An upload by a user (not the trusted spool) is decided here, before anything is stored,
against the project's roles (:func:`spoold.access.policy.may_upload`); the first upload of
a new project makes its user the owner by creating the roles record with a
compare-and-swap, so of two users creating one project at the same moment exactly one
becomes its owner and the other is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from spoold.access.policy import Forbidden, may_upload
from spoold.access.principal import Principal
from spoold.access.roles import Roles
from spoold.access.store import AccessStore
from spoold.errors import FileExists
from spoold.index.documents import normalize_project, update_manifest, write_pages
from spoold.index.explorer_docs import record_file, refresh
from spoold.index.rootwriter import ensure_listed
from spoold.index.manifest import FileEntry, Manifest
from spoold.inspection.distribution import Distribution
from spoold.storage.base import Storage
from spoold.storage.keys import file_key, metadata_key, project_json_key

__all__ = ["PublishResult", "publish"]


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
    uploader: Principal | None = None,
    client: str | None = None,
    repair: bool = False,
) -> PublishResult:
    """Publish a validated distribution; idempotent for the same bytes.

    ``uploader`` None: the trusted spool (scp, rsync, ``spoold drop``), which creates no
    owner. Raises :class:`~spoold.access.policy.Forbidden` (403) if the uploader may not
    upload to the project, :class:`~spoold.errors.FileExists` if the filename is
    published with other bytes, and :class:`~spoold.storage.StorageUnavailable`
    (transient) if storage fails. A call interrupted at any point can simply be repeated;
    ``repair`` says the previous attempt may have been cut short by a crash inside a
    batch (:meth:`~spoold.storage.base.Storage.batch`), so the root index is checked too.
    """
    project = normalize_project(dist.project)
    if uploader is not None:
        _authorize(storage, project, uploader)
    storage.put_file(file_key(project, dist.filename), Path(payload_path), dist.sha256)
    metadata_sha256 = (
        _store_metadata(storage, project, dist.filename, dist.metadata)
        if dist.metadata_servable
        else None
    )
    record_file(storage, project, dist.filename, dist.blake2_256, dist.metadata)
    entry = FileEntry(
        filename=dist.filename,
        version=dist.version,
        size=dist.size,
        sha256=dist.sha256,
        upload_time=now or datetime.now(UTC),
        metadata_sha256=metadata_sha256,
        requires_python=dist.requires_python,
        uploader=uploader.user if uploader is not None else None,
        client=client,
    )

    def add(current: Manifest | None) -> Manifest:
        manifest = current or Manifest.empty(project, dist.name)
        return manifest.with_file(entry)

    manifest, changed, stored = update_manifest(storage, project, add)
    write_pages(storage, manifest, stored)
    manifest = ensure_listed(storage, manifest, repair=repair)
    refresh(storage, manifest, {dist.version})
    return PublishResult(project, dist.filename, changed, manifest.generation)


def _authorize(storage: Storage, project: str, uploader: Principal) -> None:
    """Decide the upload where the publish is decided; create the owner of a new project."""
    access = AccessStore(storage)
    roles = access.roles(project)
    exists = roles is not None or storage.read_doc(project_json_key(project)) is not None
    decision = may_upload(uploader, project, roles, exists=exists)
    if not decision:
        raise Forbidden(decision.message)
    if exists or uploader.user is None:
        return
    owner = uploader.user
    roles, created = access.change_roles(
        project, lambda current: current if current is not None else Roles(owners=frozenset({owner})))
    if not created:  # another user created the project first: decide against its roles
        decision = may_upload(uploader, project, roles, exists=True)
        if not decision:
            raise Forbidden(decision.message)
