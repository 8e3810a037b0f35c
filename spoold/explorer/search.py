"""The search index: every project of the catalog in memory, searched in milliseconds.

Built from the catalog (:mod:`spoold.explorer.catalog`) whenever a shard changes, then
only read (a new index replaces the old one whole, so readers need no lock). A query
matches a project when

1. its normalized form is the project's normalized name (first), or
2. the project's name starts with it, or
3. the project's name contains it, or
4. every word of it starts a word of the project's name or summary;

results come in that order, and by name within each group. The name tests are C-level
string operations (bisect over the sorted names, ``str.find`` over all names joined in
one string); the word test looks words up in a sorted vocabulary (bisect, at most
:data:`MAX_EXPANSION` words per prefix), so a query never scans every summary, and only
as many word matches are ordered as the page asked for needs. At 50,000 projects a query
takes 0.3 ms at the median and 2-4 ms at the 99th percentile (``benchmarks/bench_explorer.py``).

Who may see what is the caller's filter (a token limited to some projects sees only
those): :meth:`SearchIndex.search` and :meth:`SearchIndex.recent` take it.
"""

from __future__ import annotations

import bisect
import heapq
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
MAX_EXPANSION = 256

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
        # Every name on one line of one string: a substring search is str.find (C speed).
        self._haystack = "\n".join(self.names)
        self._starts: list[int] = []
        offset = 0
        for name in self.names:
            self._starts.append(offset)
            offset += len(name) + 1
        words: dict[str, list[int]] = {}
        for i, entry in enumerate(self.entries):
            text = f"{entry.project} {entry.name} {entry.summary}".lower()
            for word in set(_WORD.findall(text)):
                words.setdefault(word, []).append(i)
        self._vocabulary: list[str] = sorted(words)
        self._postings: list[list[int]] = [words[w] for w in self._vocabulary]
        self._recent: list[int] = sorted(range(len(self.entries)),
                                         key=lambda i: self.entries[i].updated, reverse=True)
        self._memo: dict[str, tuple[list[int], set[int]]] = {}

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
        vocabulary = self._vocabulary
        lo = bisect.bisect_left(vocabulary, word)
        hi = bisect.bisect_left(vocabulary, word + "\uffff", lo, min(len(vocabulary), lo + MAX_EXPANSION))
        found: set[int] = set()
        for postings in self._postings[lo:hi]:
            found.update(postings)
        return found

    def _contains(self, wanted: str) -> list[int]:
        """Positions of the names containing ``wanted`` (which holds no newline), in order."""
        hay, starts, out = self._haystack, self._starts, []
        find, last = hay.find, len(starts) - 1
        pos = find(wanted)
        while pos != -1:
            i = bisect.bisect_right(starts, pos) - 1
            out.append(i)
            if i == last:
                break
            pos = find(wanted, starts[i + 1])
        return out

    def _groups(self, query: str) -> tuple[list[int], set[int]]:
        """The name matches in order (exact, prefix, contains) and the word-only matches."""
        wanted = normalize_query(query)
        if not wanted:
            return [], set()
        memo = self._memo.get(wanted + "\n" + query.lower())
        if memo is not None:
            return memo
        names = self.names
        exact = self._position.get(wanted)
        lo = bisect.bisect_left(names, wanted)
        hi = bisect.bisect_left(names, wanted + "\uffff", lo)
        ordered = [exact] if exact is not None else []
        ordered += [i for i in range(lo, hi) if i != exact]
        seen = set(ordered)
        ordered += [i for i in self._contains(wanted) if i not in seen]
        seen.update(ordered)
        by_words: set[int] | None = None
        for word in _WORD.findall(query[:MAX_QUERY].lower())[:8]:
            found = self._word_matches(word)
            by_words = found if by_words is None else by_words & found
            if not by_words:
                break
        rest = (by_words - seen) if by_words else set()
        if len(self._memo) > 512:
            self._memo.clear()
        self._memo[wanted + "\n" + query.lower()] = (ordered, rest)
        return ordered, rest

    def matches(self, query: str) -> list[int]:
        """Positions of every matching entry, best first."""
        ordered, rest = self._groups(query)
        return ordered + sorted(rest)

    def search(self, query: str, page: int = 1, visible: Visible = None,
               size: int = PAGE_SIZE) -> Results:
        ordered, rest = self._groups(query)
        if visible is not None:
            ordered = [i for i in ordered if visible(self.names[i])]
            rest = {i for i in rest if visible(self.names[i])}
        total = len(ordered) + len(rest)
        pages = max(1, -(-total // size))
        page = min(max(1, page), pages)
        start, end = (page - 1) * size, page * size
        chosen = ordered[start:end]
        if len(chosen) < size and rest:
            # Only as much of the word matches is ordered as this page needs.
            head = heapq.nsmallest(end - len(ordered), rest)
            chosen += head[max(0, start - len(ordered)):]
        return Results(query, total, page, pages, tuple(self.entries[i] for i in chosen))
