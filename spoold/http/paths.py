"""What a URL path may name: project names, index pages and distribution files.

Checked before storage sees a key, so no request can name anything outside the index
(``..``, separators smuggled in as ``%2F``, control characters, markup). The routes are
values (:class:`ServePage`, :class:`Redirect`, :class:`NotFound`) the resources act on,
so every path rule is a unit test away.
"""

from __future__ import annotations

import functools

import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from spoold.storage.base import InvalidKey, check_key
from spoold.storage.keys import file_key

__all__ = [
    "NotFound",
    "Redirect",
    "ServePage",
    "decode_segments",
    "is_project_name",
    "package_file_key",
    "simple_route",
]

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


@dataclass(frozen=True, slots=True)
class ServePage:
    """Serve the index page of ``project`` (None: the root index)."""

    project: str | None


@dataclass(frozen=True, slots=True)
class Redirect:
    """301 to ``location``, relative to the requested URL (so any mount prefix works)."""

    location: str


@dataclass(frozen=True, slots=True)
class NotFound:
    """404 with ``message`` as the body."""

    message: str = "Not found"


def simple_route(postpath: Iterable[bytes]) -> ServePage | Redirect | NotFound:
    """Where a path under ``/simple`` leads (``postpath``: its segments after ``simple``).

    Only the normalized ``/simple/<project>/`` is served; other spellings of a project,
    and the URLs without their final slash, redirect to it (pip follows). Remembered for
    the common shapes (one to two short segments): every index read asks.
    """
    segments = tuple(postpath)
    if len(segments) <= 2 and sum(map(len, segments)) <= 256:
        return _simple_route(segments)
    return _route(segments)


@functools.lru_cache(maxsize=1 << 16)
def _simple_route(postpath: tuple[bytes, ...]) -> ServePage | Redirect | NotFound:
    return _route(postpath)


def _route(postpath: Iterable[bytes]) -> ServePage | Redirect | NotFound:
    segments = decode_segments(postpath)
    if segments is None:
        return NotFound()
    if segments == []:  # /simple
        return Redirect("simple/")
    if segments == [""]:
        return ServePage(None)
    if len(segments) > 2 or (len(segments) == 2 and segments[1] != ""):
        return NotFound()
    name = segments[0]
    if name in ("index.html", "index.v1.json"):
        # The stored root files, which a static server serves; spoold serves the root at
        # /simple/ only (negotiated, and filtered for a reader limited to some projects).
        return NotFound()
    if not is_project_name(name):
        return NotFound(f"No project named {name[:200]!r}: not a valid project name")
    project = canonicalize_name(name)
    if len(segments) == 1:  # /simple/Name (no slash)
        return Redirect(f"{project}/")
    if project != name:
        return Redirect(f"../{project}/")
    return ServePage(project)


def package_file_key(postpath: Iterable[bytes]) -> str | None:
    """The storage key of ``/packages/<project>/<file>`` (``postpath``: the segments
    after ``packages``), or None when the path names no file spoold could have stored:
    anything but exactly two segments, a project name not in normalized form, an empty
    name, a dotfile, a name longer than 255 or one storage refuses as a key."""
    segments = decode_segments(postpath)
    if segments is None or len(segments) != 2:
        return None
    project, filename = segments
    if (
        not is_project_name(project)
        or canonicalize_name(project) != project
        or not filename
        or filename.startswith(".")
        or len(filename) > 255
    ):
        return None
    try:
        return check_key(file_key(project, filename))
    except InvalidKey:
        return None
