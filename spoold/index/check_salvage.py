"""What a project's HTML page still tells when its manifest is lost: for the rebuild.

The PEP 503 page is rendered from the same manifest, so it keeps what only the manifest
knew and the stored files cannot: which files were yanked (and why), the sha256 clients
were told (a stored file that no longer matches it is not listed again), and the display
name. Upload times are not on it; a rebuild uses the files' modification times.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser

__all__ = ["Salvage", "SalvagedLink", "salvage_page"]

_TITLE = "Links for "
_SHA256 = re.compile(r"#sha256=([0-9a-f]{64})$")


@dataclass(frozen=True, slots=True)
class SalvagedLink:
    sha256: str
    #: None: not yanked; a string (maybe empty) is the yank reason.
    yanked: str | None


@dataclass(frozen=True, slots=True)
class Salvage:
    name: str
    links: Mapping[str, SalvagedLink]


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.links: dict[str, SalvagedLink] = {}
        self._tag: str | None = None
        self._attrs: dict[str, str | None] = {}
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag, self._attrs, self._text = tag, dict(attrs), ""

    def handle_data(self, data: str) -> None:
        if self._tag in ("a", "title"):
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._tag == "title":
            self.title = self._text
        elif tag == "a" and self._tag == "a":
            found = _SHA256.search(self._attrs.get("href") or "")
            if found and self._text:
                yanked = (self._attrs["data-yanked"] or "") if "data-yanked" in self._attrs else None
                self.links[self._text] = SalvagedLink(found.group(1), yanked)
        self._tag = None


def salvage_page(data: bytes | None) -> Salvage | None:
    """The links of a spoold project page, or None if there is no such page to read."""
    if not data:
        return None
    try:
        parser = _Parser()
        parser.feed(data.decode("utf-8"))
        parser.close()
    except (UnicodeDecodeError, AssertionError):
        return None
    if not parser.title.startswith(_TITLE):
        return None
    return Salvage(parser.title[len(_TITLE):], parser.links)
