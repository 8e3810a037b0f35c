"""The catalog: one line per project (name, summary, version shown, last upload), sharded.

Search and the home page need the summary and the last update of every project, and
reading 50,000 manifests to learn them is out of the question. So every publish, yank,
unyank, remove and reindex updates its project's entry in one of :data:`SHARDS` small
documents (``.spoold/explorer/catalog/<nn>.json``), by compare-and-swap like every other
document (:meth:`~spoold.storage.base.Storage.swap_doc`): concurrent writers of one
shard retry, none loses the other's change, and hosts sharing a bucket agree. A reader
(:class:`CatalogReader`) keeps the shards in memory and re-reads only those whose
generation changed, so a refresh of an unchanged catalog costs :data:`SHARDS` cheap
``generation_of`` calls.

The root index (``simple/index.v1.json``) is left as it is: its format is pip's, and its
sharding is another matter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from spoold.errors import Transient
from spoold.storage.base import Storage
from spoold.storage.keys import catalog_key

__all__ = ["SHARDS", "CatalogContention", "CatalogEntry", "CatalogReader", "set_entry", "shard_of"]

SHARDS = 64
_ATTEMPTS = 200


class CatalogContention(Transient):
    """A catalog shard changed too often at once for this change to land (retried later)."""

    code = "contention"


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    project: str
    name: str
    summary: str
    version: str
    #: The latest upload time of the project, ISO 8601 with ``Z`` (sorts as text).
    updated: str

    def row(self) -> list[str]:
        return [self.name, self.summary, self.version, self.updated]


def shard_of(project: str) -> int:
    return int(hashlib.sha256(project.encode("utf-8")).hexdigest()[:8], 16) % SHARDS


def _parse(data: bytes) -> tuple[int, dict[str, CatalogEntry]]:
    doc = json.loads(data)
    entries = {}
    for project, row in doc.get("projects", {}).items():
        name, summary, version, updated = (str(x) for x in row)
        entries[project] = CatalogEntry(project, name, summary, version, updated)
    return int(doc.get("generation", 0)), entries


def _render(generation: int, entries: dict[str, CatalogEntry]) -> bytes:
    doc = {"generation": generation,
           "projects": {p: entries[p].row() for p in sorted(entries)}}
    return (json.dumps(doc, ensure_ascii=True, separators=(",", ":")) + "\n").encode()


def set_entry(storage: Storage, project: str, entry: CatalogEntry | None) -> bool:
    """Put ``entry`` in the catalog (None: take the project out); False if it was there."""
    key = catalog_key(shard_of(project))
    for attempt in range(_ATTEMPTS):
        doc = storage.read_doc(key)
        generation, entries = _parse(doc.data) if doc is not None else (0, {})
        if entries.get(project) == entry:
            return False
        if entry is None:
            del entries[project]
        else:
            entries[project] = entry
        if storage.swap_doc(key, _render(generation + 1, entries), generation + 1, doc):
            return True
        storage.backoff(attempt)
    raise CatalogContention(f"{key} changed {_ATTEMPTS} times while {project} was being "
                            "updated in it; it will be retried")


class CatalogReader:
    """The whole catalog in memory, refreshed shard by shard. Blocking: call from a thread
    (one refresh at a time)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._generations: dict[int, int | None] = {}
        self._shards: dict[int, dict[str, CatalogEntry]] = {}

    def refresh(self, *, on_error: Callable[[int, Exception], None] | None = None) -> bool:
        """Re-read the shards that changed; True if any did."""
        changed = False
        for shard in range(SHARDS):
            key = catalog_key(shard)
            generation = self.storage.generation_of(key)
            if shard in self._generations and generation == self._generations[shard] \
                    and generation is not None:
                continue
            doc = self.storage.read_doc(key)
            try:
                entries = _parse(doc.data)[1] if doc is not None else {}
            except (ValueError, TypeError, AttributeError) as exc:
                if on_error is not None:
                    on_error(shard, exc)
                entries = {}
            if entries != self._shards.get(shard, {}) or shard not in self._shards:
                changed = True
            self._shards[shard] = entries
            self._generations[shard] = generation
        return changed

    def entries(self) -> Iterator[CatalogEntry]:
        for shard in sorted(self._shards):
            yield from self._shards[shard].values()
