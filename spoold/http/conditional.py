"""Conditional and partial requests: ``If-None-Match`` against an ETag, a ``Range``.

Pure functions over header text (RFC 9110 sections 13 and 14), shared by the index pages
and the distribution files, so every rule is a unit test away.
"""

from __future__ import annotations

import re

__all__ = ["etag_matches", "parse_range", "range_applies"]


def etag_matches(if_none_match: bytes | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, RFC 9110 13.1.2)."""
    if if_none_match is None:
        return False
    text = if_none_match.decode("latin-1").strip()
    if text == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in text.split(",") if tag.strip())


def range_applies(if_range: bytes | None, etag: str) -> bool:
    """Whether a ``Range`` is honoured: always without ``If-Range``; with it only while it
    names the current ETag exactly (a strong comparison, RFC 9110 13.1.5). A date or an
    older tag means the client's partial copy is stale, so it gets the whole file."""
    return if_range is None or if_range.decode("latin-1").strip() == etag


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
#: Longer numbers are read as "more than any file holds" without being converted: Python
#: refuses to parse more than 4300 digits, and nothing near 20 digits is a real offset.
MAX_RANGE_DIGITS = 20


def _position(digits: str, size: int) -> int:
    """A range number; one of more than :data:`MAX_RANGE_DIGITS` digits counts as
    ``size + 1`` (past the end), which RFC 9110 14.1.2 makes mean the same thing."""
    significant = digits.lstrip("0") or "0"
    if len(significant) > MAX_RANGE_DIGITS:
        return size + 1
    return int(significant)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """A single ``bytes=a-b`` range as (offset, length); None to send the whole file
    (no header, several ranges, or a form we do not serve); False if unsatisfiable.

    Numbers of any length are taken as RFC 9110 reads them: a first position past the end
    is unsatisfiable, a last position past the end means "to the end", a suffix longer
    than the file means the whole file."""
    if header is None:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m[1] and not m[2]):
        return None
    if m[1]:
        first = _position(m[1], size)
        last = _position(m[2], size) if m[2] else size - 1
        if first >= size:
            return False
        if last < first:
            return None
        last = min(last, size - 1)
    else:  # suffix: the last n bytes
        n = _position(m[2], size)
        if n == 0:
            return False
        first = max(0, size - n)
        last = size - 1
    return (first, last - first + 1)
