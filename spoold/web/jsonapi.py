"""``GET /pypi/<project>/json`` and ``GET /pypi/<project>/<version>/json``: Warehouse's JSON API.

The documents are rendered when the project changes and stored (``pypi/<project>/json``,
``pypi/<project>/<version>/json``; :mod:`spoold.index.explorer_docs`), so serving one is a
storage read (kept in memory for ``page_cache`` seconds like the index pages), making its
relative URLs absolute for the host the request names (:func:`spoold.index.jsonapi.absolutize`)
and setting ``X-PyPI-Last-Serial`` from the document. The same access rules as the index:
401 with the challenge without credentials on a private index, and a project the reader
may not see is a 404 exactly like a project that does not exist, after the same read. A
non-normalized project name or version is a 301 to the normalized URL (as PyPI does);
``.../json/`` is served like ``.../json``.
"""

from __future__ import annotations

import hashlib

from packaging.utils import canonicalize_name
from packaging.version import Version
from twisted.web.server import NOT_DONE_YET, Request

from spoold.http.conditional import etag_matches
from spoold.http.paths import decode_segments, is_project_name
from spoold.index.jsonapi import absolutize, last_serial_of
from spoold.storage.base import Page
from spoold.storage.keys import pypi_project_key, pypi_release_key
from spoold.web.explorer_kit import Explorer
from spoold.web.responses import LeafResource, finish_text, is_gone, send_text

__all__ = ["JsonApi"]


class JsonApi(LeafResource):
    def __init__(self, explorer: Explorer) -> None:
        super().__init__()
        self.ex = explorer

    def render_GET(self, request: Request) -> bytes | int:
        segments = decode_segments(request.postpath) or []
        if segments[-1:] == [""]:
            segments = segments[:-1]
        if len(segments) not in (2, 3) or segments[-1] != "json" or not is_project_name(segments[0]):
            return send_text(request, 404, "Not found")
        name = segments[0]
        project = canonicalize_name(name)
        version: str | None = None
        if len(segments) == 3:
            try:
                version = str(Version(segments[1]))
            except ValueError:  # InvalidVersion, or more digits than int() takes
                version = None
            if version is None:
                return send_text(request, 404, f"No release {segments[1]!r} of {project}")
        if project != name or (version is not None and version != segments[1]):
            location = f"/pypi/{project}/" + (f"{version}/" if version else "") + "json"
            return send_text(request, 301, f"Moved to {location}",
                             headers=[(b"location", location.encode("ascii"))])
        d = self.ex.guard.reader(request, project)
        d.addCallback(lambda principal: None if principal is None
                      else self._read(request, project, version, principal))
        d.addErrback(self.ex._failed, request)
        return NOT_DONE_YET

    def _read(self, request: Request, project: str, version: str | None, principal: object) -> None:
        key = pypi_project_key(project) if version is None else pypi_release_key(project, version)
        cached = self.ex.cache.get((project, key))
        if cached is not None:
            self._found(cached, request, project, version, principal)
            return
        ticket = self.ex.cache.ticket()
        d = self.ex.run(self.ex.storage.read_page, key)

        def remember(page: Page | None) -> Page | None:
            if page is not None:
                self.ex.cache.put((project, key), page, len(page.data), ticket)
            return page

        d.addCallback(remember)
        d.addCallback(self._found, request, project, version, principal)
        d.addErrback(self.ex._failed, request)

    def _found(self, page: Page | None, request: Request, project: str, version: str | None,
               principal: object) -> None:
        if is_gone(request):
            return
        if page is None or not self.ex.guard.sees(principal, project):
            what = f"release {version} of {project!r}" if version else f"project named {project!r}"
            finish_text(request, 404, f"No {what} on this index")
            return
        base = self.ex.base(request)
        # The bytes depend on the host named (absolute URLs): so does the tag.
        etag = page.etag[:-1] + "-" + hashlib.sha256(base.encode()).hexdigest()[:8] + '"'
        request.setHeader(b"etag", etag.encode("ascii"))
        private = not self.ex.public
        request.setHeader(b"cache-control", b"private, max-age=0, must-revalidate" if private
                          else b"max-age=0, must-revalidate")
        if private:
            request.setHeader(b"vary", b"Authorization, Cookie")
        else:
            request.setHeader(b"access-control-allow-origin", b"*")
            request.setHeader(b"access-control-expose-headers", b"X-PyPI-Last-Serial")
        request.setHeader(b"x-content-type-options", b"nosniff")
        serial = last_serial_of(page.data)
        if serial is not None:
            request.setHeader(b"x-pypi-last-serial", str(serial).encode("ascii"))
        if etag_matches(request.getHeader(b"if-none-match"), etag):
            request.setResponseCode(304)
            request.finish()
            return
        data = absolutize(page.data, base, project_doc=version is None)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"content-length", str(len(data)).encode("ascii"))
        if request.method != b"HEAD":
            request.write(data)
        request.finish()
