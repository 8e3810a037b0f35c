"""Listing new projects in the root index: one write for many, from a kept rendering.

The root index (``simple/index.v1.json``, a compare-and-swap document, and
``simple/index.html``, a page derived from it) names every project, so each of its
versions is megabytes in a large index: 50,000 projects are 1.3 MB of JSON and 2.8 MB of
HTML. Two things keep a new project's publish from costing what the whole index costs:

* **Coalescing.** One :class:`RootWriter` per storage client (so per process and
  backend) lists new projects in batches, like a group commit: a publish hands its
  project over and waits; whichever waiter finds no write under way becomes the writer
  and lists *everything* waiting, in one compare-and-swap and one page write; those that
  arrived meanwhile form the next batch. N projects created at once cost one or two root
  writes, not N, and every publish still returns only once its project is in both pages.
* **A kept rendering.** The writer keeps the last version it read or wrote: the sorted
  project names and one rendered part per project for each page
  (:func:`~spoold.index.pages.root_json_part`, :func:`~spoold.index.pages.root_html_part`).
  Whether the stored root is still that version costs one cheap question
  (:meth:`~spoold.storage.base.Storage.read_doc_unless`: a short folder listing on local
  storage, a conditional GET on S3); adding a project is a list insert and a join. Only
  when another process or host wrote the root is it read and parsed again.

The guarantees are those of every document (:mod:`spoold.index.documents`): the JSON is
swapped with the generation read + 1 (a lost swap re-reads, merges, retries with jittered
backoff), and the HTML page is only ever replaced by a newer generation, so several
processes and hosts can list projects at once and none is lost or put back.
"""

from __future__ import annotations

import bisect
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field

from spoold.index.documents import TooMuchContention, update_manifest, write_pages
from spoold.index.manifest import Manifest
from spoold.index.pages import (
    assemble_root_html,
    assemble_root_json,
    parse_root_json,
    root_html_part,
    root_json_part,
)
from spoold.storage.base import Doc, Storage
from spoold.storage.keys import ROOT_HTML, ROOT_JSON

__all__ = ["RootWriter", "ensure_listed", "root_writer"]

#: Lost compare-and-swaps before a batch gives up (as documents.TooMuchContention).
MAX_ATTEMPTS = 500


@dataclass(slots=True)
class _Rendered:
    """One version of the root index as the writer keeps it (never shared mutably)."""

    token: str | None
    generation: int
    projects: list[str] = field(default_factory=list)
    json_parts: list[bytes] = field(default_factory=list)
    html_parts: list[bytes] = field(default_factory=list)

    @classmethod
    def parse(cls, doc: Doc) -> _Rendered:
        root = parse_root_json(doc.data)
        return cls(doc.token, root.generation, [e.project for e in root.projects],
                   [root_json_part(e.name) for e in root.projects],
                   [root_html_part(e.project, e.name) for e in root.projects])

    def has(self, project: str) -> bool:
        i = bisect.bisect_left(self.projects, project)
        return i < len(self.projects) and self.projects[i] == project

    def adding(self, entries: Mapping[str, str]) -> _Rendered:
        """A copy with these projects added (normalized name -> display name)."""
        new = _Rendered(None, self.generation + 1, list(self.projects),
                        list(self.json_parts), list(self.html_parts))
        for project in sorted(entries):
            i = bisect.bisect_left(new.projects, project)
            if i < len(new.projects) and new.projects[i] == project:
                continue
            new.projects.insert(i, project)
            new.json_parts.insert(i, root_json_part(entries[project]))
            new.html_parts.insert(i, root_html_part(project, entries[project]))
        return new

    def json(self) -> bytes:
        return assemble_root_json(self.json_parts, self.generation)

    def html(self) -> bytes:
        return assemble_root_html(self.html_parts)


class _Ticket:
    __slots__ = ("entries", "done", "error")

    def __init__(self, entries: Mapping[str, str]) -> None:
        self.entries = entries
        self.done = False
        self.error: BaseException | None = None


class RootWriter:
    """Lists projects in the root index for every thread of one process, in batches."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._cond = threading.Condition()
        self._waiting: list[_Ticket] = []
        self._writing = False
        self._kept: _Rendered | None = None
        #: Root writes done and compare-and-swaps lost (for benchmarks and tests).
        self.writes = 0
        self.lost = 0

    def list(self, entries: Mapping[str, str]) -> None:
        """Return once every project in ``entries`` (normalized name -> display name) is
        in both root pages; raises what the batch's write raised (Transient: retry)."""
        # A batch scope (a no-op inside the caller's own): the writer of the batch may be
        # a thread that defers its fsyncs, and this call must return durable.
        with self.storage.batch():
            self._list(_Ticket(dict(entries)))

    def _list(self, ticket: _Ticket) -> None:
        with self._cond:
            self._waiting.append(ticket)
            while not ticket.done and self._writing:
                self._cond.wait()
            if ticket.done:
                if ticket.error is not None:
                    raise ticket.error
                return
            self._writing = True
            batch, self._waiting = self._waiting, []
        error: BaseException | None = None
        try:
            merged: dict[str, str] = {}
            for waiting in batch:
                merged.update(waiting.entries)
            self._write(merged)
        except BaseException as exc:  # every waiter of the batch hears it
            error = exc
        with self._cond:
            for waiting in batch:
                waiting.done, waiting.error = True, error
            self._writing = False
            self._cond.notify_all()
        if error is not None:
            raise error

    def _current(self) -> tuple[_Rendered, Doc | None]:
        """The stored root as a kept rendering, and the document to swap against."""
        storage = self.storage
        kept = self._kept
        changed, doc = storage.read_doc_unless(ROOT_JSON, kept.token if kept else None)
        if not changed and kept is not None:
            return kept, Doc(b"", kept.token)
        if doc is None:
            # No root yet: start above any page an earlier history left (documents._cas),
            # then look again, so every concurrent creator picks the same generation.
            floor = max(storage.generation_of(k) or 0 for k in (ROOT_JSON, ROOT_HTML))
            doc = storage.read_doc(ROOT_JSON)
            if doc is None:
                return _Rendered(None, floor), None
        self._kept = kept = _Rendered.parse(doc)
        return kept, doc

    def _write(self, entries: Mapping[str, str]) -> None:
        storage = self.storage
        for attempt in range(MAX_ATTEMPTS):
            current, doc = self._current()
            storage.checkpoint("doc-read", ROOT_JSON)
            missing = {p: n for p, n in entries.items() if not current.has(p)}
            if not missing:
                self._publish_pages(current, converge_json=True)  # listed already: repair pages
                return
            new = current.adding(missing)
            stored = storage.swap(ROOT_JSON, new.json(), new.generation, doc)
            if stored is not None:
                new.token = stored.token
                self._kept = new if stored.token is not None else None
                self.writes += 1
                self._publish_pages(new, converge_json=False)  # the swap put the JSON in place
                return
            self.lost += 1
            storage.checkpoint("swap-lost", ROOT_JSON)
            storage.backoff(attempt)
        raise TooMuchContention(
            f"{ROOT_JSON} changed {MAX_ATTEMPTS} times while new projects were trying to "
            "be listed; they will be retried later")

    def _publish_pages(self, root: _Rendered, *, converge_json: bool) -> None:
        """Bring the HTML page (and, on local storage, if asked, the visible JSON: a swap
        puts it in place itself) to this generation; a no-op where a newer one is."""
        storage = self.storage
        storage.put_page(ROOT_HTML, root.html(), root.generation)
        if converge_json and not storage.docs_are_pages:
            storage.put_page(ROOT_JSON, root.json(), root.generation)


_writers: weakref.WeakKeyDictionary[Storage, RootWriter] = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


def root_writer(storage: Storage) -> RootWriter:
    """The root writer of this storage client (one per :class:`Storage` object)."""
    with _writers_lock:
        writer = _writers.get(storage)
        if writer is None:
            writer = _writers[storage] = RootWriter(storage)
        return writer


def ensure_listed(storage: Storage, manifest: Manifest, *, repair: bool = False) -> Manifest:
    """Add a new project to the root index, then remember that in its manifest.

    ``repair``: also when the manifest says it is listed, and bring both root pages to
    the stored generation (an item processed again after a crash, whose first pass may
    have left a torn page: :mod:`spoold.storage.barrier`)."""
    if manifest.listed and not repair:
        return manifest
    root_writer(storage).list({manifest.project: manifest.name})
    if manifest.listed:
        return manifest

    def mark(current: Manifest | None) -> Manifest:
        if current is None:  # removed in between; nothing left to mark
            return Manifest.empty(manifest.project, manifest.name).with_listed()
        return current.with_listed()

    manifest, _, stored = update_manifest(storage, manifest.project, mark)
    write_pages(storage, manifest, stored)
    return manifest
