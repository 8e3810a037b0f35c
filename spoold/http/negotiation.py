"""PEP 691 content negotiation for the simple API: which page answers a request.

Pure functions over header strings, so every rule below is a unit test away:

* ``?format=`` wins over ``Accept`` when present (PEP 691, "URL Parameter"). It names one
  content type exactly (no lists, wildcards or q-values); one spoold does not serve is
  answered with 406, because a person who typed it wants to know, not to get something
  else silently.
* ``Accept`` is read as RFC 9110 says: each offer gets the q-value of the most specific
  media range that matches it (``text/html;q=0, */*`` refuses HTML), ``q=0`` means "not
  acceptable", the highest q wins, then the more specific range, then the server's
  preference: HTML first, because a browser or an old client sending ``*/*`` expects the
  PEP 503 page.
* No ``Accept`` at all (or an empty one) means the PEP 503 HTML page (``text/html``): the
  behaviour every client relied on before PEP 691.
* ``application/vnd.pypi.simple.latest+json`` / ``+html`` stand for the newest version the
  server has (v1 here); the response names the concrete version, never ``latest``
  (PEP 691: "the server MUST respond with the concrete version").
* Nothing acceptable is answered with 406 Not Acceptable (one of the three choices PEP 691
  allows; the only one that does not hand a client a format it said it cannot read).
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "JSON_V1",
    "HTML_V1",
    "TEXT_HTML",
    "SUPPORTED",
    "Format",
    "Choice",
    "NotAcceptable",
    "MediaRange",
    "parse_accept",
    "choose",
]

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
JSON_LATEST = "application/vnd.pypi.simple.latest+json"
HTML_LATEST = "application/vnd.pypi.simple.latest+html"

#: Longest Accept header or format value looked at; anything longer is hostile or broken.
MAX_HEADER = 4096
#: Most media ranges looked at in one Accept header.
MAX_RANGES = 64


class Format(enum.Enum):
    """Which stored page answers: ``index.html`` or ``index.v1.json``."""

    HTML = "html"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Choice:
    """The page to send and the concrete ``Content-Type`` to send it with."""

    format: Format
    content_type: str


@dataclass(frozen=True, slots=True)
class NotAcceptable:
    """Nothing the client accepts is served; ``message`` says what is (for the 406 body)."""

    message: str


#: What spoold serves, in order of preference when the client does not care.
#: (requested type, what is sent)
_OFFERS: tuple[tuple[str, Choice], ...] = (
    (TEXT_HTML, Choice(Format.HTML, "text/html; charset=utf-8")),
    (HTML_V1, Choice(Format.HTML, HTML_V1)),
    (JSON_V1, Choice(Format.JSON, JSON_V1)),
    (HTML_LATEST, Choice(Format.HTML, HTML_V1)),
    (JSON_LATEST, Choice(Format.JSON, JSON_V1)),
)
_BY_TYPE = dict(_OFFERS)

#: The types a client can ask for, for messages and docs.
SUPPORTED: tuple[str, ...] = tuple(t for t, _ in _OFFERS)

_DEFAULT = _BY_TYPE[TEXT_HTML]


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One element of an Accept header: ``type/subtype`` (either may be ``*``) and q."""

    type: str
    subtype: str
    q: float

    def matches(self, media_type: str) -> bool:
        main, _, sub = media_type.partition("/")
        if self.type == "*":
            return True
        return self.type == main and self.subtype in ("*", sub)

    @property
    def specificity(self) -> int:
        """2 for ``a/b``, 1 for ``a/*``, 0 for ``*/*`` (RFC 9110 12.5.1 precedence)."""
        if self.type == "*":
            return 0
        return 1 if self.subtype == "*" else 2


def _token(text: str) -> bool:
    return bool(text) and all(c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in text)


_QVALUE = re.compile(r"^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$")


def _parse_q(value: str) -> float | None:
    """RFC 9110 qvalue (``0``, ``0.5``, ``1.000``); anything else is invalid (None)."""
    value = value.strip()
    return float(value) if _QVALUE.match(value) else None


def parse_accept(header: str) -> list[MediaRange]:
    """Parse an Accept header leniently: malformed elements are skipped, not fatal.

    Leniency matters more than pedantry here: a client with one odd element in its header
    should still get the page it can read. Parameters other than ``q`` are ignored (no
    simple API type has any), and so is everything after ``q`` (accept-ext).
    """
    ranges: list[MediaRange] = []
    for element in header[:MAX_HEADER].split(",")[:MAX_RANGES]:
        media, *params = element.split(";")
        media = media.strip().lower()
        main, slash, sub = media.partition("/")
        if not slash or not _token(main) or not _token(sub) or (main == "*" and sub != "*"):
            continue
        q: float | None = 1.0
        for param in params:
            name, eq, value = param.partition("=")
            if name.strip().lower() == "q":
                q = _parse_q(value) if eq else None
                break
        if q is None:
            continue
        ranges.append(MediaRange(main, sub, q))
    return ranges


def _quality(ranges: Sequence[MediaRange], media_type: str) -> tuple[float, int]:
    """q of the most specific matching range (and that specificity); (0, -1) if none."""
    best: MediaRange | None = None
    for r in ranges:
        if r.matches(media_type) and (best is None or r.specificity > best.specificity):
            best = r
    return (best.q, best.specificity) if best is not None else (0.0, -1)


def _not_acceptable(asked: str) -> NotAcceptable:
    return NotAcceptable(
        f"spoold cannot answer with {asked}; it serves {', '.join(SUPPORTED)} "
        "(ask with an Accept header or ?format=)"
    )


@functools.lru_cache(maxsize=512)
def choose(accept: str | None, format_param: str | None = None) -> Choice | NotAcceptable:
    """Pick the representation for a request's ``Accept`` header and ``?format=`` value.

    Memoized: clients send the same few headers again and again, and this runs on every
    index request.

    ``format_param`` is the decoded query value; a ``+`` that a form decoder turned into
    a space (``?format=application/vnd.pypi.simple.v1+json`` typed into a browser) is read
    back as ``+``.
    """
    if format_param is not None:
        wanted = format_param.strip().replace(" ", "+").lower()[:200]
        choice = _BY_TYPE.get(wanted)
        if choice is None:
            return _not_acceptable(f"format {wanted!r}" if wanted else "an empty format")
        return choice
    if accept is None or not accept.strip():
        return _DEFAULT
    ranges = parse_accept(accept)
    if not ranges:
        # Only malformed elements: the client said something, but nothing we can read.
        return _not_acceptable(f"Accept: {accept[:200]!r}")
    best: tuple[float, int, int] | None = None
    chosen: Choice | None = None
    for preference, (media_type, choice) in enumerate(_OFFERS):
        q, specificity = _quality(ranges, media_type)
        if q <= 0:
            continue
        key = (q, specificity, -preference)
        if best is None or key > best:
            best, chosen = key, choice
    if chosen is None:
        return _not_acceptable(f"Accept: {accept[:200]!r}")
    return chosen
