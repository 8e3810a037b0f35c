"""The repairs of ``spoold check --repair``: only what can be derived from stored bytes.

* pages are re-rendered from their manifest, which is first written again (one more
  generation, by compare-and-swap), so a page of the manifest's own generation but wrong
  bytes is replaced too, and no concurrent change is lost;
* an orphan distribution is listed only after the full inspection an upload gets (the
  same :func:`~spoold.inspection.inspect_file`), and only in the project its metadata
  names; a missing or corrupt manifest is rebuilt the same way from every stored file,
  keeping the yanks and pinned hashes its HTML page still shows
  (:mod:`~spoold.index.check_salvage`);
* a ``.metadata`` is re-derived from its distribution, once that has matched its
  recorded sha256; if the result differs from what was advertised, the pages advertise
  the new digest (metadata is derived data: clients check it against the page, nobody
  pins it);
* the root index is rebuilt from the manifests; orphan ``.metadata``, orphan pages and
  stale temporary files are deleted.

Never repaired: a distribution whose bytes are gone or differ from the recorded sha256.
The recorded hash is what clients pinned, so it is never changed to fit the bytes.
:func:`spoold.index.reindex.reindex` is not used: it takes the stored bytes' hash as the
truth and lists files without inspecting them when a ``.metadata`` is beside them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from spoold.errors import Rejected, SpooldError
from spoold.index.check_report import Finding, Kind
from spoold.index.check_salvage import Salvage, salvage_page
from spoold.index.check_tree import Hashes, ProjectState, Tree, read_manifest, read_root
from spoold.index.documents import update_manifest, update_root, write_pages
from spoold.index.manifest import CorruptManifest, FileEntry, Manifest, RootIndex, version_from_filename
from spoold.index.pages import render_project_json, render_root_html, render_root_json
from spoold.inspection import Distribution, inspect_file
from spoold.storage.base import Doc, Storage, StoredObject
from spoold.storage.keys import (
    ROOT_HTML,
    ROOT_JSON,
    file_key,
    metadata_key,
    project_html_key,
    project_json_key,
)

__all__ = ["Outcome", "repair_project", "repair_root"]

#: Extra generations a repair writes at most to get past a page that is ahead of its
#: manifest (only possible if the history was tampered with).
MAX_BUMPS = 64
_META = ".metadata"


@dataclass(frozen=True, slots=True)
class Outcome:
    done: bool
    note: str


class _Gone(SpooldError):
    code = "gone"


def _inspect(storage: Storage, obj: StoredObject, filename: str) -> Distribution:
    """The full inspection of a stored file (fetched to a temporary file if not local)."""
    with tempfile.TemporaryDirectory(prefix="spoold-check-") as tmp:
        path = storage.local_path(obj.key) or storage.fetch(obj.key, Path(tmp) / "dist")
        return inspect_file(path, filename)


def _adopt(
    storage: Storage, project: str, objects: list[StoredObject], salvage: Salvage | None
) -> tuple[list[FileEntry], dict[str, Finding], list[str]]:
    """Entries for stored files that pass inspection; findings for those that do not.

    A file the last page listed with another sha256 is listed with *that* hash (what
    clients were told), so it stays a corrupt-file finding for the operator instead of
    becoming an orphan a later repair would list with the wrong hash.
    """
    entries: list[FileEntry] = []
    refused: dict[str, Finding] = {}
    names: list[str] = []
    for obj in objects:
        filename = obj.key.rsplit("/", 1)[-1]
        remove = f"`spoold remove {project} {filename}`"
        pinned = salvage.links.get(filename) if salvage else None
        try:
            dist: Distribution | None = _inspect(storage, obj, filename)
            rejection = ""
        except Rejected as exc:
            dist, rejection = None, str(exc)
        if pinned is not None and pinned.sha256 != (dist.sha256 if dist else Hashes().sha256(storage, obj)):
            entries.append(FileEntry(
                filename=filename,
                version=version_from_filename(filename) or "0",
                size=obj.size,
                sha256=pinned.sha256,
                upload_time=obj.modified,
                yanked=pinned.yanked,
            ))
            continue
        if dist is None:
            refused[obj.key] = Finding(
                Kind.ORPHAN_FILE, obj.key, project,
                f"stored but not listed, and inspection rejects it ({rejection}); delete it "
                f"with {remove} and upload a good file", False,
            )
            continue
        if dist.project != project:
            refused[obj.key] = Finding(
                Kind.ORPHAN_FILE, obj.key, project,
                f"stored but not listed, and its metadata names the project {dist.project!r}; "
                f"delete it with {remove} and upload it again", False,
            )
            continue
        key = metadata_key(project, filename)
        if storage.read_bytes(key) != dist.metadata:
            storage.replace_file(key, dist.metadata)
        names.append(dist.name)
        entries.append(FileEntry(
            filename=filename,
            version=dist.version,
            size=dist.size,
            sha256=dist.sha256,
            upload_time=obj.modified,
            metadata_sha256=dist.metadata_sha256,
            requires_python=dist.requires_python,
            yanked=pinned.yanked if pinned else None,
        ))
    return entries, refused, names


def _with_entries(current: Manifest | None, fallback: Manifest) -> Manifest:
    if current is None:
        return fallback
    for entry in fallback.files:
        current = current.with_file(entry)  # the same object when all are listed already
    return current


def _write_manifest(storage: Storage, project: str, rebuilt: Manifest) -> tuple[Manifest, bytes]:
    """Store ``rebuilt`` in place of a corrupt or missing manifest (merged into one that
    became readable meanwhile)."""
    key = project_json_key(project)
    for attempt in range(100):
        doc = storage.read_doc(key)
        if doc is not None:
            try:
                read_manifest(doc.data, project)
            except CorruptManifest:
                # Nobody can build on a corrupt document, so skipping generations is safe
                # on every backend; going past the HTML page's keeps it replaceable.
                floor = max(storage.generation_of(key) or 0, storage.generation_of(project_html_key(project)) or 0)
                manifest = rebuilt.with_generation(floor + 1)
                data = render_project_json(manifest)
                if storage.swap_doc(key, data, manifest.generation, doc):
                    return manifest, data
                storage.backoff(attempt)
                continue
        manifest, _, data = update_manifest(storage, project, lambda cur: _with_entries(cur, rebuilt))
        return manifest, data
    raise _Gone(f"{key} kept changing while it was being rebuilt; run `spoold check` again")


def _touch(current: Manifest | None) -> Manifest:
    if current is None:
        raise _Gone("the manifest was deleted meanwhile; run `spoold check` again")
    return replace(current)  # a new object: update_manifest writes the next generation


def _refresh_pages(storage: Storage, project: str) -> Manifest:
    html = project_html_key(project)
    for _ in range(MAX_BUMPS):
        manifest, _, stored = update_manifest(storage, project, _touch)
        if (storage.generation_of(html) or 0) < manifest.generation:
            break
    write_pages(storage, manifest, stored)
    return manifest


def _rebuild(storage: Storage, tree: Tree, project: str) -> tuple[Outcome, list[Finding]]:
    """A manifest for a project whose manifest is corrupt or missing, from its files."""
    objects = sorted(
        (o for n, o in tree.packages.get(project, {}).items()
         if not n.endswith(_META) and version_from_filename(n)),
        key=lambda o: o.key,
    )
    salvage = salvage_page(storage.read_bytes(project_html_key(project)))
    entries, refused, names = _adopt(storage, project, objects, salvage)
    if not entries and storage.read_doc(project_json_key(project)) is None:
        # Nothing to list: creating an empty project would hide the files, not fix them.
        return Outcome(False, "none of its files passes inspection (see below)"), list(refused.values())
    rebuilt = Manifest(project=project, name=(salvage.name if salvage else None) or (names or [project])[0])
    for entry in entries:
        rebuilt = rebuilt.with_file(entry)
    manifest, data = _write_manifest(storage, project, rebuilt)
    write_pages(storage, manifest, data)  # the root is repaired after every project
    extras = list(refused.values())
    for filename, link in sorted((salvage.links if salvage else {}).items()):
        if manifest.file(filename) is None and file_key(project, filename) not in refused:
            extras.append(Finding(
                Kind.MISSING_FILE, file_key(project, filename), project,
                f"the last page listed it (sha256 {link.sha256}) but it is not stored, so the "
                "rebuilt manifest does not list it; upload the original file again", False,
            ))
    kept = (f"{sum(e.yanked is not None for e in entries)} yank(s) kept from the HTML page"
            if salvage else "the HTML page is unreadable, so yanks are lost: yank again with "
            "`spoold yank`")
    note = (f"rebuilt from {len(entries)} of {len(objects)} stored file(s), each inspected; "
            f"upload times are the files' modification times; {kept}")
    return Outcome(True, note), extras


def _rederive(storage: Storage, tree: Tree, project: str, finding: Finding) -> Outcome:
    filename = finding.key.rsplit("/", 1)[-1][: -len(_META)]
    obj = tree.packages.get(project, {}).get(filename)
    doc = storage.read_doc(project_json_key(project))
    entry = read_manifest(doc.data, project).file(filename) if doc else None
    if obj is None or entry is None:
        return Outcome(False, "the file or its entry is gone; run `spoold check` again")
    try:
        dist = _inspect(storage, obj, filename)
    except Rejected as exc:
        return Outcome(False, f"the distribution no longer passes inspection ({exc})")
    if dist.sha256 != entry.sha256:
        return Outcome(False, "the distribution changed since it was checked; run `spoold check` again")
    storage.replace_file(metadata_key(project, filename), dist.metadata)
    if dist.metadata_sha256 == entry.metadata_sha256:
        return Outcome(True, "re-derived from the distribution")

    def advertise(current: Manifest | None) -> Manifest:
        if current is None:
            raise _Gone("the manifest was deleted meanwhile")
        files = tuple(
            replace(e, metadata_sha256=dist.metadata_sha256)
            if e.filename == filename and e.sha256 == dist.sha256 else e
            for e in current.files
        )
        return replace(current, files=files) if files != current.files else current

    manifest, _, data = update_manifest(storage, project, advertise)
    write_pages(storage, manifest, data)
    return Outcome(True, f"re-derived from the distribution; it differs from what was advertised, "
                         f"so the pages now advertise sha256 {dist.metadata_sha256}")


def repair_project(
    storage: Storage, tree: Tree, project: str, findings: list[Finding]
) -> tuple[dict[tuple[Kind, str, str | None], Outcome], list[Finding]]:
    """Repair what can be repaired of one project; outcomes by finding, new findings."""
    outcomes: dict[tuple[Kind, str, str | None], Outcome] = {}
    extras: list[Finding] = []
    fixable = [f for f in findings if f.repairable]
    try:
        if any(f.kind in (Kind.CORRUPT_MANIFEST, Kind.MISSING_MANIFEST) for f in fixable):
            outcome, extras = _rebuild(storage, tree, project)
            return {f.ident: outcome for f in fixable}, extras
        orphans = [tree.packages[project][f.key.rsplit("/", 1)[-1]] for f in fixable if f.kind is Kind.ORPHAN_FILE]
        if orphans:
            entries, refused, names = _adopt(storage, project, orphans, None)
            if entries:
                fallback = Manifest.empty(project, names[0])
                for entry in entries:
                    fallback = fallback.with_file(entry)
                manifest, _, data = update_manifest(storage, project, lambda cur: _with_entries(cur, fallback))
                write_pages(storage, manifest, data)
            for obj in orphans:
                bad = refused.get(obj.key)
                outcomes[(Kind.ORPHAN_FILE, obj.key, project)] = (
                    Outcome(False, bad.message) if bad else Outcome(True, "inspected and listed")
                )
        for f in fixable:
            if f.kind in (Kind.MISSING_METADATA, Kind.CORRUPT_METADATA):
                outcomes[f.ident] = _rederive(storage, tree, project, f)
            elif f.kind in (Kind.ORPHAN_METADATA, Kind.ORPHAN_PAGE):
                storage.delete(f.key)
                outcomes[f.ident] = Outcome(True, "deleted")
        pages = [f for f in fixable if f.kind is Kind.STALE_PAGE]
        if pages:
            manifest = _refresh_pages(storage, project)
            note = f"re-rendered from the manifest (now generation {manifest.generation})"
            outcomes.update({f.ident: Outcome(True, note) for f in pages})
    except (_Gone, CorruptManifest, Rejected) as exc:
        failed = Outcome(False, str(exc))
        outcomes.update({f.ident: failed for f in fixable if f.ident not in outcomes})
    return outcomes, extras


def _write_root(storage: Storage, build: Callable[[RootIndex | None], RootIndex]) -> RootIndex:
    for attempt in range(100):
        doc: Doc | None = storage.read_doc(ROOT_JSON)
        try:
            if doc is not None:
                read_root(doc.data)
        except CorruptManifest:
            floor = max(storage.generation_of(ROOT_JSON) or 0, storage.generation_of(ROOT_HTML) or 0)
            root = build(None).with_generation(floor + 1)
            data = render_root_json(root)
            if not storage.swap_doc(ROOT_JSON, data, root.generation, doc):
                storage.backoff(attempt)
                continue
            storage.put_page(ROOT_HTML, render_root_html(root), root.generation)
            if not storage.docs_are_pages:
                storage.put_page(ROOT_JSON, data, root.generation)
            return root
        for _ in range(MAX_BUMPS):
            root = update_root(storage, build)
            if storage.generation_of(ROOT_HTML) in (None, root.generation):
                break
        return root
    raise _Gone("the root index kept changing while it was being rebuilt; run `spoold check` again")


def _mark_listed(current: Manifest | None) -> Manifest:
    if current is None:
        raise _Gone("the manifest was deleted meanwhile")
    return current.with_listed()


def repair_root(storage: Storage, states: dict[str, ProjectState]) -> Outcome:
    """Rebuild the root index: every project with files, no project that does not exist."""
    must = {p: s.manifest.name for p, s in states.items() if s.manifest is not None and s.manifest.files}
    may = {p for p, s in states.items() if s.has_manifest or s.has_files}
    doc = storage.read_doc(ROOT_JSON)
    try:
        listed = read_root(doc.data).projects if doc is not None else ()
    except CorruptManifest:
        listed = ()
    # Published since the listing? Then it exists: keep it.
    gone = {e.project for e in listed if e.project not in may and storage.read_doc(project_json_key(e.project)) is None}

    def build(current: RootIndex | None) -> RootIndex:
        base = current or RootIndex()
        entries = {e.project: e.name for e in base.projects if e.project not in gone}
        for project, name in must.items():
            entries.setdefault(project, name)
        return replace(base.with_projects(entries))  # always new: the pages are rewritten

    try:
        root = _write_root(storage, build)
    except (_Gone, CorruptManifest) as exc:
        return Outcome(False, str(exc))
    for project, state in states.items():
        if project in must and state.manifest is not None and not state.manifest.listed:
            try:
                manifest, changed, data = update_manifest(storage, project, _mark_listed)
            except (_Gone, CorruptManifest):
                continue  # changed meanwhile: the look after the repair tells
            if changed:
                write_pages(storage, manifest, data)
    return Outcome(True, f"rebuilt from the manifests: {len(root.projects)} project(s), generation {root.generation}")
