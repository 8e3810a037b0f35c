"""Header text: ``type; name="value"`` parameters, RFC 2231 and HTML5 encodings, the
request line, and a reason phrase safe for the status line.

Pure functions over text, used by the form parser for ``Content-Type`` and each part's
``Content-Disposition``. Strict where leniency would let two readers of the same bytes
disagree (a parameter given twice, an unclosed quote): that is how smuggling starts.
Errors are :class:`~spoold.http.errors.InvalidForm` (HTTP 400), since a form is the only
thing spoold reads parameters from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from spoold.http.errors import InvalidForm

__all__ = [
    "RequestLine",
    "extended_value",
    "html5_unescape",
    "parse_header_value",
    "parse_request_line",
    "reason_phrase",
]


def html5_unescape(value: str) -> str:
    """HTML5 / urllib3 2 encode ``"``, CR and LF in names as ``%22``, ``%0D``, ``%0A``."""
    return value.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")


def extended_value(value: str) -> str:
    """``utf-8''na%C3%AFve.whl`` -> ``naïve.whl`` (RFC 2231 / 5987 extended value)."""
    charset, quote1, rest = value.partition("'")
    _language, quote2, encoded = rest.partition("'")
    if not quote1 or not quote2:
        raise InvalidForm("the filename* parameter of the file part is malformed")
    if charset.lower() not in ("utf-8", "us-ascii"):
        raise InvalidForm(f"the filename* parameter uses charset {charset[:30]!r}; use UTF-8")
    try:
        return unquote(encoded, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise InvalidForm("the filename* parameter of the file part is not UTF-8") from None


def parse_header_value(value: str) -> tuple[str, dict[str, str]]:
    """``type; a=b; c="d \\" e"`` -> ("type", {"a": "b", "c": 'd " e'}); keys lowercased.

    Quoted strings may hold ``;`` and the escapes ``\\"`` and ``\\\\``. A parameter given twice is
    refused (which one a server picks is how smuggling attacks start).
    """
    i = 0
    n = len(value)

    def skip_ws() -> None:
        nonlocal i
        while i < n and value[i] in " \t":
            i += 1

    start = i
    while i < n and value[i] != ";":
        i += 1
    main = value[start:i].strip().lower()
    params: dict[str, str] = {}
    while i < n:
        i += 1  # the ';'
        skip_ws()
        start = i
        while i < n and value[i] not in "=;":
            i += 1
        key = value[start:i].strip().lower()
        if i >= n or value[i] == ";":
            if key:
                raise InvalidForm(f"the header parameter {key[:50]!r} has no value")
            continue
        i += 1  # the '='
        skip_ws()
        if i < n and value[i] == '"':
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise InvalidForm("a quoted header parameter is not closed")
                c = value[i]
                if c == "\\" and i + 1 < n and value[i + 1] in '"\\':
                    # Only \" and \\ are escapes: browsers send Windows paths
                    # (C:\dir\file) unescaped, and those backslashes must survive so the
                    # path is seen and refused.
                    chars.append(value[i + 1])
                    i += 2
                    continue
                if c == '"':
                    i += 1
                    break
                chars.append(c)
                i += 1
            item = "".join(chars)
            skip_ws()
            if i < n and value[i] != ";":
                raise InvalidForm("a header parameter has text after its closing quote")
        else:
            start = i
            while i < n and value[i] != ";":
                i += 1
            item = value[start:i].strip()
        if not key:
            raise InvalidForm("a header parameter has no name")
        if key in params:
            raise InvalidForm(f"the header parameter {key[:50]!r} is given twice")
        params[key] = item
    return main, params


# -- the request line ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestLine:
    """``POST /legacy/?x=1 HTTP/1.1``, as the client sent it (bytes: not yet decoded)."""

    method: bytes
    target: bytes
    version: bytes

    @property
    def path(self) -> bytes:
        """The target without its query (``/legacy/``)."""
        return self.target.split(b"?", 1)[0]


def parse_request_line(line: bytes) -> RequestLine | None:
    """The three words of a request line; None when it has not exactly three (Twisted
    answers such a line with 400 itself, so callers only need to not trust it)."""
    parts = line.split(b" ")
    if len(parts) != 3 or not all(parts):
        return None
    return RequestLine(*parts)


# -- writing ---------------------------------------------------------------------------

_UNSAFE_REASON = re.compile(r"[^\x20-\x7e]+")


def reason_phrase(message: str, limit: int = 400) -> bytes:
    """A message made safe for the HTTP status line: printable ASCII, one line, bounded.

    twine prints the reason phrase, not the body, so the rejection message goes there;
    anything that could break the status line (CR, LF, non-ASCII) is replaced.
    """
    text = _UNSAFE_REASON.sub(" ", message).strip()
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return (text or "Error").encode("ascii")
