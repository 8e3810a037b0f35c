"""What a URL path may name: project names and the path segments they come in.

Checked before storage sees a key, so no request can name anything outside the index
(``..``, separators smuggled in as ``%2F``, control characters, markup).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["decode_segments", "is_project_name"]

_PROJECT_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,198}[A-Za-z0-9])?$")


def is_project_name(name: str) -> bool:
    """A valid project name (PEP 508 / core metadata ``Name``)."""
    return bool(_PROJECT_NAME.match(name))


def decode_segments(segments: Iterable[bytes]) -> list[str] | None:
    """Path segments (already percent-decoded by Twisted) as text, or None if any is
    not UTF-8 or holds a character no project or file name has (``/`` from ``%2F``,
    ``\\``, NUL, controls). Callers answer None with 404."""
    out: list[str] = []
    for raw in segments:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if any(c in "/\\" or ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            return None
        out.append(text)
    return out
