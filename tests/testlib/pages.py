"""Parsing PEP 503 HTML pages back, as a client would (for tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Link:
    attrs: dict[str, str | None]
    text: str = ""


@dataclass
class ParsedPage:
    meta: dict[str, str | None] = field(default_factory=dict)
    title: str = ""
    links: list[Link] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = ParsedPage()
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "meta" and values.get("name"):
            self.page.meta[str(values["name"])] = values.get("content")
        elif tag == "a":
            self.page.links.append(Link(values))
        self._in = tag

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "a":
            self.page.links[-1].text += data
        elif self._in == "title":
            self.page.title += data


def parse_html_page(data: bytes) -> ParsedPage:
    """Parse a page the way a client would (html.parser, entities decoded)."""
    parser = _Parser()
    parser.feed(data.decode("utf-8"))
    parser.close()
    return parser.page
