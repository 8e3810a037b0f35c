"""The search index: every project of the catalog in memory, searched in milliseconds.

Built from the catalog (:mod:`spoold.explorer.catalog`) whenever a shard changes, then
only read (a new index replaces the old one whole, so readers need no lock). A query
matches a project when

1. its normalized form is the project's normalized name (first), or
2. the project's name starts with it, or
3. the project's name contains it, or
4. every word of it starts a word of the project's name or summary;

results come in that order, and by name within each group. The name tests are C-level
string operations over one list (a few milliseconds at 50,000 projects); the word test
looks words up in a sorted vocabulary (bisect), so a query never scans every summary.

Who may see what is the caller's filter (a token limited to some projects sees only
those): :meth:`SearchIndex.search` and :meth:`SearchIndex.recent` take it.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from spoold.explorer.catalog import CatalogEntry

__all__ = ["PAGE_SIZE", "Results", "SearchIndex", "normalize_query"]

PAGE_SIZE = 20
_WORD = re.compile(r"[a-z0-9]+")
_SEPARATORS = re.compile(r"[-_.\s]+")
#: Longest query looked at (longer ones are cut).
MAX_QUERY = 200
#: Vocabulary entries one query word may expand to (a one-letter prefix would be all).
MAX_EXPANSION = 5000

Visible = Callable[[str], bool] | None


def normalize_query(query: str) -> str:
    """The query as a project name would be normalized (PEP 503)."""
    return _SEPARATORS.sub("-", query[:MAX_QUERY].strip().lower()).strip("-")


@dataclass(frozen=True, slots=True)
class Results:
    query: str
    total: int
    page: int
    pages: int
    entries: tuple[CatalogEntry, ...]


class SearchIndex:
    def __init__(self, entries: Iterable[CatalogEntry]) -> None:
        self.entries: list[CatalogEntry] = sorted(entries, key=lambda e: e.project)
        self.names: list[str] = [e.project for e in self.entries]
        self._position = {name: i for i, name in enumerate(self.names)}
        words: dict[str, set[int]] = {}
        for i, entry in enumerate(self.entries):
            text = f"{entry.project} {entry.name} {entry.summary}".lower()
            for word in set(_WORD.findall(text)):
                words.setdefault(word, set()).add(i)
        self._vocabulary: list[str] = sorted(words)
        self._postings: list[frozenset[int]] = [frozenset(words[w]) for w in self._vocabulary]
        self._recent: list[int] = sorted(range(len(self.entries)),
                                         key=lambda i: self.entries[i].updated, reverse=True)

    def __len__(self) -> int:
        return len(self.entries)

    def count(self, visible: Visible = None) -> int:
        if visible is None:
            return len(self.entries)
        return sum(1 for name in self.names if visible(name))

    def get(self, project: str) -> CatalogEntry | None:
        i = self._position.get(project)
        return self.entries[i] if i is not None else None

    def recent(self, limit: int = 10, visible: Visible = None) -> list[CatalogEntry]:
        out = []
        for i in self._recent:
            entry = self.entries[i]
            if visible is None or visible(entry.project):
                out.append(entry)
                if len(out) == limit:
                    break
        return out

    def _word_matches(self, word: str) -> set[int]:
        lo = bisect.bisect_left(self._vocabulary, word)
        hi = bisect.bisect_left(self._vocabulary, word + "\uffff", lo, min(len(self._vocabulary), lo + MAX_EXPANSION))
        found: set[int] = set()
        for postings in self._postings[lo:hi]:
            found.update(postings)
        return found

    def matches(self, query: str) -> list[int]:
        """Positions of the matching entries, best first."""
        wanted = normalize_query(query)
        if not wanted:
            return []
        names = self.names
        exact = self._position.get(wanted)
        lo = bisect.bisect_left(names, wanted)
        hi = bisect.bisect_left(names, wanted + "\uffff", lo)
        prefix = [i for i in range(lo, hi) if i != exact]
        seen = set(prefix)
        if exact is not None:
            seen.add(exact)
        contains = [i for i, name in enumerate(names) if wanted in name and i not in seen]
        seen.update(contains)
        words = _WORD.findall(query[:MAX_QUERY].lower())
        by_words: set[int] | None = None
        for word in words[:8]:
            found = self._word_matches(word)
            by_words = found if by_words is None else by_words & found
            if not by_words:
                break
        rest = sorted(by_words - seen) if by_words else []
        return ([exact] if exact is not None else []) + prefix + contains + rest

    def search(self, query: str, page: int = 1, visible: Visible = None,
               size: int = PAGE_SIZE) -> Results:
        found = self.matches(query)
        if visible is not None:
            found = [i for i in found if visible(self.names[i])]
        pages = max(1, -(-len(found) // size))
        page = min(max(1, page), pages)
        chosen = found[(page - 1) * size: page * size]
        return Results(query, len(found), page, pages, tuple(self.entries[i] for i in chosen))
