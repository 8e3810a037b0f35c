"""The checks of ``spoold check``: one listing of the tree, then each project and the root.

The tree is listed once (:meth:`~spoold.storage.base.Storage.walk`: on S3 a flat listing,
on local disk one ``scandir`` per folder) and grouped here; every file is hashed once per
run (:class:`Hashes` remembers what it hashed, so the look after a repair hashes nothing
again). Checks only read; :mod:`spoold.index.check_repair` changes things.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from packaging.utils import canonicalize_name

from spoold.durable import is_temporary
from spoold.hashing import hash_file, hash_stream
from spoold.index.check_report import Finding, Kind
from spoold.index.manifest import CorruptManifest, Manifest, RootIndex, version_from_filename
from spoold.index.pages import (
    parse_project_json,
    parse_root_json,
    render_project_html,
    render_project_json,
    render_root_html,
    render_root_json,
)
from spoold.storage.base import Doc, Storage, StoredObject
from spoold.storage.keys import ROOT_HTML, ROOT_JSON, file_key, project_html_key, project_json_key

__all__ = [
    "Hashes",
    "ProjectState",
    "Tree",
    "check_project",
    "check_root",
    "check_strays",
    "read_manifest",
    "read_root",
]

_META = ".metadata"


@dataclass
class Tree:
    """The listing, grouped: a private working value of one run, never handed out."""

    #: ``packages/<folder>/<name>`` -> object, visible names only.
    packages: dict[str, dict[str, StoredObject]] = field(default_factory=lambda: defaultdict(dict))
    #: Folders under ``simple/`` (projects with pages).
    simple: set[str] = field(default_factory=set)
    #: Keys under ``packages/`` outside the layout (nested, or directly in ``packages/``).
    strays: list[StoredObject] = field(default_factory=list)
    temporaries: list[StoredObject] = field(default_factory=list)

    @classmethod
    def list(cls, storage: Storage) -> Tree:
        tree = cls()
        for obj in storage.walk(""):
            parts = obj.key.split("/")
            if is_temporary(parts[-1]):
                tree.temporaries.append(obj)
            elif any(part.startswith(".") for part in parts):
                continue  # backend bookkeeping (local .spoold/ history), not the index
            elif parts[0] == "packages":
                if len(parts) == 3:
                    tree.packages[parts[1]][parts[2]] = obj
                else:
                    tree.strays.append(obj)
            elif parts[0] == "simple" and len(parts) == 3:
                tree.simple.add(parts[1])
        return tree

    def folders(self) -> list[str]:
        return sorted(set(self.packages) | self.simple)


class Hashes:
    """sha256 of stored objects, each hashed once per run (streamed, bounded memory)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, int, datetime], str] = {}
        self.files = 0
        self.bytes = 0

    def sha256(self, storage: Storage, obj: StoredObject) -> str | None:
        """The digest, or None if the object vanished since it was listed."""
        ident = (obj.key, obj.size, obj.modified)
        if ident not in self._seen:
            try:
                path = storage.local_path(obj.key)
                if path is not None:
                    digests = hash_file(path, blake2=False)
                else:
                    with storage.open_read(obj.key) as stream:
                        digests = hash_stream(stream, blake2=False)
            except FileNotFoundError:
                return None
            self._seen[ident] = digests.sha256
            self.files += 1
            self.bytes += digests.size
        return self._seen[ident]


@dataclass(frozen=True, slots=True)
class ProjectState:
    """What the root check needs to know of one project."""

    project: str
    #: A manifest document is stored (readable or not).
    has_manifest: bool
    #: Distributions are stored under ``packages/<p>/`` (listed or not).
    has_files: bool
    #: The readable manifest, if any.
    manifest: Manifest | None


def _unreadable(exc: Exception) -> CorruptManifest:
    cause = exc.__cause__ if isinstance(exc, CorruptManifest) and exc.__cause__ else exc
    return CorruptManifest(f"cannot be read ({cause!r})")


def read_manifest(data: bytes, project: str) -> Manifest:
    """The manifest of ``project``, or :class:`CorruptManifest` for anything unusable:
    also nesting too deep for the parser, numbers out of range, another project's name,
    and entries whose filename is not a distribution filename."""
    try:
        manifest = parse_project_json(data)
    except (CorruptManifest, RecursionError, OverflowError) as exc:
        raise _unreadable(exc) from exc
    if manifest.project != project:
        raise CorruptManifest(f"names the project {manifest.project!r}")
    for entry in manifest.files:
        name = entry.filename
        if not isinstance(name, str) or "/" in name or name.startswith(".") or not version_from_filename(name):
            raise CorruptManifest(f"lists {name!r}, which is not a distribution filename")
    return manifest


def read_root(data: bytes) -> RootIndex:
    try:
        return parse_root_json(data)
    except (CorruptManifest, RecursionError, OverflowError) as exc:
        raise _unreadable(exc) from exc


def _finding(kind: Kind, key: str, project: str | None, message: str, repairable: bool) -> Finding:
    return Finding(kind, key, project, message, repairable)


def _distributions(objects: dict[str, StoredObject]) -> dict[str, StoredObject]:
    return {n: o for n, o in objects.items() if not n.endswith(_META) and version_from_filename(n)}


def check_project(
    storage: Storage, tree: Tree, project: str, hashes: Hashes
) -> tuple[list[Finding], ProjectState]:
    """Every check of one project folder (``packages/<p>/`` and ``simple/<p>/``)."""
    objects = tree.packages.get(project, {})
    findings: list[Finding] = []
    if canonicalize_name(project) != project:
        for where, present in (
            (f"packages/{project}/", project in tree.packages),
            (f"simple/{project}/", project in tree.simple),
        ):
            if present:
                findings.append(_finding(
                    Kind.MISNAMED_FOLDER, where, None,
                    f"not a normalized project name, so no client finds it; move its files "
                    f"to packages/{canonicalize_name(project)}/ and run `spoold check --repair`"
                    if where.startswith("packages/") else
                    "not a normalized project name, so no client finds it; delete it",
                    False,
                ))
        return findings, ProjectState(project, False, False, None)
    for name, obj in sorted(objects.items()):
        if not name.endswith(_META) and version_from_filename(name) is None:
            findings.append(_finding(
                Kind.UNKNOWN_FILE, obj.key, project,
                "not a distribution filename; the index ignores it (move it out of packages/)",
                False,
            ))
    dists = _distributions(objects)
    key = project_json_key(project)
    doc = storage.read_doc(key)
    if doc is None:
        state = ProjectState(project, False, bool(dists), None)
        if dists:
            findings.append(_finding(
                Kind.MISSING_MANIFEST, key, project,
                f"{len(dists)} stored distribution(s) but no manifest, so the project is not "
                "served; --repair rebuilds it from the files after inspecting each",
                True,
            ))
        else:
            for page in (project_html_key(project), key):
                if storage.stat(page) is not None:
                    findings.append(_finding(
                        Kind.ORPHAN_PAGE, page, project,
                        "a page of a project with no manifest and no files; --repair deletes it",
                        True,
                    ))
        return findings, state
    try:
        manifest = read_manifest(doc.data, project)
    except CorruptManifest as exc:
        findings.append(_finding(
            Kind.CORRUPT_MANIFEST, key, project,
            f"{exc.message}; --repair rebuilds it from the stored files "
            "after inspecting each (yank states are kept where the HTML page still shows them)",
            True,
        ))
        return findings, ProjectState(project, True, bool(dists), None)
    findings += _check_files(storage, project, manifest, objects, hashes)
    page_findings = _check_pages(storage, project, manifest, doc)
    if page_findings:  # a writer may have been between its manifest and its pages: look again
        again = storage.read_doc(key)
        if again is not None and again.data != doc.data:
            try:
                manifest, doc = read_manifest(again.data, project), again
                page_findings = _check_pages(storage, project, manifest, doc)
            except CorruptManifest:
                pass
    findings += page_findings
    return findings, ProjectState(project, True, bool(dists), manifest)


def _check_files(
    storage: Storage,
    project: str,
    manifest: Manifest,
    objects: dict[str, StoredObject],
    hashes: Hashes,
) -> list[Finding]:
    findings: list[Finding] = []
    remove_hint = f"`spoold remove {project} {{}}`"
    for entry in manifest.files:
        key = file_key(project, entry.filename)
        obj = objects.get(entry.filename)
        digest = hashes.sha256(storage, obj) if obj is not None and obj.size == entry.size else None
        gone = obj is None or (obj.size == entry.size and digest is None)  # or vanished since listed
        what = ""  # what is wrong with the bytes that are there
        if obj is not None and obj.size != entry.size:
            what = f"size is {obj.size}, the manifest records {entry.size}"
        elif not gone and digest != entry.sha256:
            what = f"sha256 is {digest}, the manifest records {entry.sha256}"
        intact = not gone and not what
        if gone:
            findings.append(_finding(
                Kind.MISSING_FILE, key, project,
                "listed but its bytes are gone; upload the original file again (the same bytes "
                f"restore it) or remove the entry with {remove_hint.format(entry.filename)}",
                False,
            ))
        elif what:
            findings.append(_finding(
                Kind.CORRUPT_FILE, key, project,
                f"{what}; the stored bytes are damaged and the recorded hash is left alone "
                f"(clients pin it): remove the entry with {remove_hint.format(entry.filename)} "
                "and upload the original file again",
                False,
            ))
        if entry.metadata_sha256 is None:
            continue
        meta = objects.get(entry.filename + _META)
        fix = ("--repair re-derives it from the distribution" if intact else
               "it cannot be re-derived while the distribution is damaged (see above)")
        if meta is None or (meta_digest := hashes.sha256(storage, meta)) is None:
            findings.append(_finding(
                Kind.MISSING_METADATA, key + _META, project,
                f"advertised (sha256 {entry.metadata_sha256}) but not stored; {fix}", intact,
            ))
        elif meta_digest != entry.metadata_sha256:
            findings.append(_finding(
                Kind.CORRUPT_METADATA, meta.key, project,
                f"sha256 is {meta_digest}, the page advertises {entry.metadata_sha256}; {fix}",
                intact,
            ))
    for name, obj in sorted(_distributions(objects).items()):
        if manifest.file(name) is None:
            findings.append(_finding(
                Kind.ORPHAN_FILE, obj.key, project,
                "stored but not listed (an interrupted publish, or put there by hand); --repair "
                f"lists it once it passes inspection, or delete it with {remove_hint.format(name)}",
                True,
            ))
    for name, obj in sorted(objects.items()):
        base = name[: -len(_META)]
        if name.endswith(_META) and base not in objects and manifest.file(base) is None:
            findings.append(_finding(
                Kind.ORPHAN_METADATA, obj.key, project,
                "metadata of a distribution that is neither stored nor listed; --repair deletes it",
                True,
            ))
    return findings


def _page_finding(key: str, project: str | None, what: str) -> Finding:
    return _finding(Kind.STALE_PAGE, key, project, f"{what}; --repair re-renders it", True)


def _compare_page(
    storage: Storage, key: str, want: bytes, generation: int, project: str | None
) -> list[Finding]:
    have = storage.read_bytes(key)
    if have is None:
        return [_page_finding(key, project, "missing")]
    if have != want:
        return [_page_finding(key, project, "does not match what its manifest renders")]
    stored = storage.generation_of(key)
    if stored is not None and stored != generation:
        return [_page_finding(
            key, project, f"of generation {stored}, its manifest is of generation {generation}"
        )]
    return []


def _check_visible(storage: Storage, key: str, doc: Doc, canonical: bytes, project: str | None) -> list[Finding]:
    """The JSON page: in canonical form and, on local storage, the newest generation."""
    if doc.data != canonical:
        return [_page_finding(key, project, "not in the canonical form spoold renders")]
    if not storage.docs_are_pages and doc.token is not None:
        visible = storage.read_bytes(key)
        if visible is None:
            return [_page_finding(key, project, "missing (only the generation history has it)")]
        if visible != doc.data:
            return [_page_finding(key, project, "the visible file is not the newest generation")]
    return []


def _check_pages(storage: Storage, project: str, manifest: Manifest, doc: Doc) -> list[Finding]:
    key = project_json_key(project)
    html = project_html_key(project)
    return [
        *_check_visible(storage, key, doc, render_project_json(manifest), project),
        *_compare_page(storage, html, render_project_html(manifest), manifest.generation, project),
    ]


def check_root(storage: Storage, states: dict[str, ProjectState]) -> list[Finding]:
    """The root index lists every project with files, in both formats, and nothing absent."""
    must = {p for p, s in states.items() if s.manifest is not None and s.manifest.files}
    may = {p for p, s in states.items() if s.has_manifest or s.has_files}
    doc = storage.read_doc(ROOT_JSON)
    if doc is None:
        if not must:
            return []
        return [_finding(Kind.CORRUPT_ROOT, ROOT_JSON, None,
                         "missing while projects have files; --repair rebuilds it", True)]
    try:
        root = read_root(doc.data)
    except CorruptManifest as exc:
        return [_finding(Kind.CORRUPT_ROOT, ROOT_JSON, None, f"{exc.message}; --repair rebuilds it", True)]
    findings = _check_root_pages(storage, root, doc)
    listed = {e.project for e in root.projects}
    for project in sorted(must - listed):
        findings.append(_finding(
            Kind.ROOT_MISSING, ROOT_JSON, project,
            f"{project} has files but the root index does not list it; --repair adds it", True,
        ))
    for project in sorted(listed - may):
        findings.append(_finding(
            Kind.ROOT_EXTRA, ROOT_JSON, project,
            f"the root index lists {project}, which does not exist; --repair drops it", True,
        ))
    return findings


def _check_root_pages(storage: Storage, root: RootIndex, doc: Doc) -> list[Finding]:
    projects = [e.project for e in root.projects]
    findings = _check_visible(storage, ROOT_JSON, doc, render_root_json(root), None)
    if not findings and projects != sorted(set(projects)):
        findings.append(_page_finding(ROOT_JSON, None, "not sorted, or lists a project twice"))
    findings += _compare_page(storage, ROOT_HTML, render_root_html(root), root.generation, None)
    return findings


def check_strays(tree: Tree, now: datetime, max_age: timedelta) -> list[Finding]:
    """Stale temporary files anywhere, and keys under ``packages/`` outside the layout."""
    findings = [
        _finding(
            Kind.STALE_TEMPORARY, obj.key, None,
            f"a temporary file left by a writer that died {obj.modified:%Y-%m-%d %H:%M} UTC; "
            "--repair deletes it",
            True,
        )
        for obj in sorted(tree.temporaries, key=lambda o: o.key)
        if now - obj.modified > max_age
    ]
    findings += [
        _finding(Kind.UNKNOWN_FILE, obj.key, None,
                 "not part of the index layout (packages/<project>/<file>); move it away", False)
        for obj in sorted(tree.strays, key=lambda o: o.key)
    ]
    return findings
