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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from spoold.access.policy import Forbidden, may_upload
from spoold.access.principal import Principal
from spoold.access.roles import Roles
from spoold.access.store import AccessStore
from spoold.errors import FileExists, Rejected
from spoold.index.documents import normalize_project, update_manifest, write_pages
from spoold.index.explorer_docs import record_file, refresh
from spoold.index.rootwriter import ensure_listed
from spoold.index.manifest import FileEntry, Manifest
from spoold.inspection.distribution import Distribution
from spoold.storage.base import Staged, Storage
from spoold.storage.keys import file_key, metadata_key, project_json_key

__all__ = ["PublishResult", "Upload", "publish", "publish_many"]


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


@dataclass(frozen=True, slots=True)
class Upload:
    """One distribution to publish, as :func:`publish_many` takes them."""

    dist: Distribution
    payload_path: Path
    now: datetime | None = None
    #: None: the trusted spool (scp, rsync, ``spoold drop``), which creates no owner.
    uploader: Principal | None = None
    client: str | None = None


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

    Raises :class:`~spoold.access.policy.Forbidden` (403) if the uploader may not
    upload to the project, :class:`~spoold.errors.FileExists` if the filename is
    published with other bytes, and :class:`~spoold.storage.StorageUnavailable`
    (transient) if storage fails. A call interrupted at any point can simply be repeated;
    ``repair`` says the previous attempt may have been cut short by a crash inside a
    batch (:meth:`~spoold.storage.base.Storage.batch`), so the root index is checked too.
    """
    (result,) = publish_many(storage, [Upload(dist, payload_path, now, uploader, client)],
                             repair=repair)
    if isinstance(result, Rejected):
        raise result
    return result


def publish_many(storage: Storage, uploads: Sequence[Upload], *,
                 repair: bool = False) -> list[PublishResult | Rejected]:
    """Publish several distributions of one project with one change of its manifest,
    its pages and its explorer documents (what a worker does with the items of a project
    it finds queued together). Each upload's answer is in its place: its result, or the
    rejection of that upload alone (the others are published). Transient storage errors
    and bugs raise, for all of them; repeating the call is safe, as for :func:`publish`.
    """
    project = normalize_project(uploads[0].dist.project)
    if any(normalize_project(u.dist.project) != project for u in uploads):
        raise ValueError("publish_many takes the distributions of one project")
    answers: list[PublishResult | Rejected | None] = [None] * len(uploads)
    entries = _store_all(storage, project, uploads, answers)
    if not entries:
        return [a for a in answers if a is not None]
    added: set[int] = set()  # the uploads whose file this change lists first

    def add(current: Manifest | None) -> Manifest:
        manifest = current or Manifest.empty(project, uploads[0].dist.name)
        added.clear()
        for i, entry in entries.items():
            grown = manifest.with_file(entry)
            if grown is not manifest:
                added.add(i)
            manifest = grown
        return manifest

    manifest, _, stored = update_manifest(storage, project, add)
    write_pages(storage, manifest, stored)
    manifest = ensure_listed(storage, manifest, repair=repair)
    refresh(storage, manifest, {e.version for e in entries.values()})
    return [a if a is not None else
            PublishResult(project, u.dist.filename, i in added, manifest.generation)
            for i, (a, u) in enumerate(zip(answers, uploads, strict=True))]


def _store_all(storage: Storage, project: str, uploads: Sequence[Upload],
               answers: list[PublishResult | Rejected | None]) -> dict[int, FileEntry]:
    """Decide the uploads and store their files, made durable together (stage, then
    settle: :meth:`~spoold.storage.base.Storage.stage_file`); a rejection goes to the
    upload's place in ``answers``. Returns the entries the manifest will list, by place.

    A ``.metadata`` gets its name only once its distribution has: of two uploads of one
    filename with other bytes, the one refused never leaves its metadata behind.
    """
    files: dict[int, Staged] = {}
    metadata: dict[int, Staged | str] = {}  # staged, or the sha256 of the stored one
    for i, upload in enumerate(uploads):
        dist = upload.dist
        try:
            if upload.uploader is not None:
                _authorize(storage, project, upload.uploader)
            files[i] = storage.stage_file(file_key(project, dist.filename),
                                          Path(upload.payload_path), dist.sha256)
        except Rejected as rejected:
            answers[i] = rejected
            continue
        if dist.metadata_servable:
            metadata[i] = _stage_metadata(storage, project, dist.filename, dist.metadata)
        record_file(storage, project, dist.filename, dist.blake2_256, dist.metadata)
    settled = dict(zip(files, storage.settle_files(list(files.values())), strict=True))
    for i, result in settled.items():
        if isinstance(result, FileExists):
            answers[i] = result
    staged_metadata = {i: m for i, m in metadata.items() if isinstance(m, Staged)}
    storage.discard_staged([m for i, m in staged_metadata.items() if answers[i] is not None])
    keep = {i: m for i, m in staged_metadata.items() if answers[i] is None}
    for i, result in zip(keep, storage.settle_files(list(keep.values()), synced=True), strict=True):
        metadata[i] = (keep[i].sha256 if not isinstance(result, FileExists)
                       else _stored_metadata(storage, project, uploads[i].dist))
    return {i: _entry(uploads[i], metadata.get(i))  # type: ignore[arg-type]
            for i in files if answers[i] is None}


def _stage_metadata(storage: Storage, project: str, filename: str, data: bytes) -> Staged | str:
    try:
        return storage.stage_file(metadata_key(project, filename), data,
                                  hashlib.sha256(data).hexdigest())
    except FileExists:
        stored = storage.read_bytes(metadata_key(project, filename))
        return _store_metadata(storage, project, filename, data) if stored is None else \
            hashlib.sha256(stored).hexdigest()


def _stored_metadata(storage: Storage, project: str, dist: Distribution) -> str:
    """The sha256 of the ``.metadata`` stored meanwhile (stored bytes win)."""
    return _store_metadata(storage, project, dist.filename, dist.metadata)


def _entry(upload: Upload, metadata_sha256: str | None) -> FileEntry:
    dist, uploader = upload.dist, upload.uploader
    return FileEntry(
        filename=dist.filename,
        version=dist.version,
        size=dist.size,
        sha256=dist.sha256,
        upload_time=upload.now or datetime.now(UTC),
        metadata_sha256=metadata_sha256,
        requires_python=dist.requires_python,
        uploader=uploader.user if uploader is not None else None,
        client=upload.client,
    )


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
