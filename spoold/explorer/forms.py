"""The explorer's HTTP rules as pure functions: form bodies, origins, redirects, base URL.

* :func:`parse_form` -- an ``application/x-www-form-urlencoded`` body, bounded;
* :func:`same_origin` -- a POST's ``Origin`` (or, lacking one, ``Referer``) must be this
  site; a request with neither is judged by its CSRF token alone (older browsers, privacy
  extensions that strip Referer);
* :func:`safe_next` -- where to go after logging in: a path on this site, never
  ``//evil.example`` or ``/\\evil.example`` (which browsers read as another host);
* :func:`base_url` -- the index's URL as the request names it, for install commands and
  the JSON API's absolute URLs. ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` are
  believed only from the peers in ``forwarded_allow`` (loopback by default: the shipped
  nginx site runs on the same host and sets ``Host`` and ``X-Forwarded-Proto``), so a
  client cannot make spoold print another host in its pages. Hosts are checked against a
  strict pattern; a bad one gives the listening address instead.
* :func:`wants_html` -- whether the client is a browser asking for a page (then an
  anonymous request is sent to the login page; pip and uv get the 401 challenge).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, urlsplit

__all__ = ["MAX_FORM", "base_url", "login_location", "parse_form", "peer_trusted", "safe_next",
           "same_origin", "wants_html"]

#: Largest form body read (login, tokens, yank reasons are small).
MAX_FORM = 64 * 1024
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})*\.?"
                   r"|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")


def parse_form(body: bytes, *, limit: int = 50) -> dict[str, str]:
    """The first value of each field (at most ``limit`` fields); undecodable bytes replaced."""
    text = body[:MAX_FORM].decode("utf-8", "replace")
    fields: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True, max_num_fields=None)[:limit]:
        fields.setdefault(key, value)
    return fields


def _origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def same_origin(origin: str | None, referer: str | None, expected: str) -> bool:
    """Whether a state-changing request comes from this site's own pages."""
    expected = expected.rstrip("/").lower()
    if origin is not None:
        return origin.strip().lower() == expected  # "null" (sandboxed, file:) never matches
    if referer is not None:
        return _origin_of(referer.strip()) == expected
    return True


def safe_next(value: str | None, default: str = "/") -> str:
    if not value or len(value) > 2000:
        return default
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(ord(c) < 0x21 or ord(c) == 0x7F or c == "\\" for c in value):
        return default
    return value


def login_location(path: str) -> str:
    """``/login?next=<path>`` for a page the reader must log in to see."""
    return "/login?next=" + quote(safe_next(path), safe="/")


def base_url(host: str | None, *, secure: bool, fallback: str,
             forwarded_proto: str | None = None, forwarded_host: str | None = None,
             trusted: bool = False) -> str:
    """``scheme://host[:port]`` of the index as this request reached it."""
    scheme = "https" if secure else "http"
    if trusted:
        proto = (forwarded_proto or "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            scheme = proto
        forwarded = (forwarded_host or "").split(",")[0].strip()
        if forwarded and _HOST.match(forwarded):
            host = forwarded
    if not host or not _HOST.match(host.strip()):
        host = fallback
    return f"{scheme}://{host.strip()}"


def wants_html(accept: str | None) -> bool:
    """A browser's navigation: ``text/html`` (or ``application/xhtml+xml``) accepted."""
    if not accept:
        return False
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        if media.strip().lower() in ("text/html", "application/xhtml+xml"):
            q = re.search(r"q\s*=\s*([0-9.]*)", params)
            try:
                weight = float(q[1]) if q is not None else 1.0
            except ValueError:
                weight = 0.0
            if weight > 0:
                return True
    return False


def peer_trusted(peer: str, allowed: Iterable[str]) -> bool:
    return peer in set(allowed)
