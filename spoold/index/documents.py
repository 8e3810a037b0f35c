"""How the index's documents change: compare-and-swap of manifests and the root index.

Every change of the index goes through here, in the same order, chosen so that a crash at
any point leaves a state the next attempt (or ``spoold reindex``) completes, and no reader
ever sees a link to a file that is not stored yet:

1. (the caller) store the immutable files (the distribution, then its ``.metadata``);
2. update the project's manifest by compare-and-swap (read, merge, conditional write;
   retry with jittered backoff when another writer won): each generation is derived from
   the previous one, so no concurrent change is lost;
3. store the derived pages, each tagged with the manifest generation it shows; a page is
   only ever replaced by a newer generation, so a slow writer cannot put back an old one;
4. when the project is new, add it to the root index (itself a compare-and-swap, done
   for many new projects at once by :func:`spoold.index.rootwriter.ensure_listed`), then
   mark the manifest ``listed`` -- a crash in between is repaired by the next publish.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from packaging.utils import canonicalize_name

from spoold.errors import SpooldError, Transient
from spoold.index.manifest import Manifest, RootIndex
from spoold.index.pages import (
    parse_project_json,
    parse_root_json,
    render_project_html,
    render_project_json,
    render_root_html,
    render_root_json,
)
from spoold.storage.base import Storage
from spoold.storage.keys import ROOT_HTML, ROOT_JSON, project_html_key, project_json_key

__all__ = [
    "MAX_ATTEMPTS",
    "NotFound",
    "TooMuchContention",
    "normalize_project",
    "update_manifest",
    "update_root",
    "write_pages",
]

#: Lost compare-and-swaps before giving up (as Transient: the worker defers the item).
MAX_ATTEMPTS = 500

T = TypeVar("T", Manifest, RootIndex)


class NotFound(SpooldError):
    """The project, file or version named on the command line is not published."""

    code = "not-found"

class TooMuchContention(Transient):
    """So many writers changed one manifest at once that this one never got a turn."""

    code = "contention"


def normalize_project(project: str) -> str:
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


def update_manifest(
    storage: Storage, project: str, change: Callable[[Manifest | None], Manifest]
) -> tuple[Manifest, bool, bytes]:
    key = project_json_key(project)
    return _cas(
        storage,
        key,
        (project_html_key(project),),
        lambda data: parse_project_json(data, where=f"the manifest of {project}"),
        render_project_json,
        change,
    )


def write_pages(storage: Storage, manifest: Manifest, stored_json: bytes) -> None:
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


def update_root(
    storage: Storage, change: Callable[[RootIndex | None], RootIndex]
) -> RootIndex:
    root, _, stored = _cas(storage, ROOT_JSON, (ROOT_HTML,), parse_root_json, render_root_json, change)
    storage.put_page(ROOT_HTML, render_root_html(root), root.generation)
    if not storage.docs_are_pages:
        storage.put_page(ROOT_JSON, stored, root.generation)
    return root
