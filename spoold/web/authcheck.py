"""``GET /_auth``: the access decision for a reverse proxy (nginx ``auth_request``).

nginx serves the index straight from the storage tree; for a private index it first asks
spoold, in a subrequest carrying the client's ``Authorization`` (and ``Cookie``) and the
original URI (``X-Original-URI``), whether the request may be served -- and caches the
answer for a short time, keyed by the credentials and the project, so most reads cost
nginx a cache lookup, not a Python request. ``auth_request`` understands only 2xx
(allowed), 401 and 403, so:

* 200 (empty): allowed;
* 401 with the ``Basic realm="spoold"`` challenge: no or bad credentials;
* 403: anything else -- nginx then passes the request itself to spoold, which answers it
  as it answers any read: a project this reader may not see exactly like a project that
  does not exist (nginx sends its own misses there too), too many failed logins 429, the
  root of a reader limited to some projects listing only those. ``X-Spoold-Denied``
  (``hidden``, ``throttled``, ``filtered``) says which, for logs and tests.
"""

from __future__ import annotations

from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET, Request

from spoold.access.authenticate import AuthResult
from spoold.access.policy import may_read
from spoold.http.paths import project_of_uri
from spoold.web.guard import CHALLENGE, Guard
from spoold.web.responses import LeafResource, finish_text

__all__ = ["AuthCheckResource"]


class AuthCheckResource(LeafResource):
    def __init__(self, guard: Guard) -> None:
        super().__init__()
        self.guard = guard

    def render_GET(self, request: Request) -> bytes | int:
        request.setHeader(b"cache-control", b"private, max-age=10")
        uri = request.getHeader(b"x-original-uri") or b"/"
        project = project_of_uri(uri)
        if self.guard.public:
            return _allowed(request)
        d = self.guard.principal(request)
        d.addCallback(self._decide, request, project)
        d.addErrback(self._failed, request)
        return NOT_DONE_YET

    def _decide(self, result: AuthResult, request: Request, project: str | None) -> None:
        if result.principal is None and result.status == 429:
            finish_text(request, 403, result.message, headers=[
                (b"x-spoold-denied", b"throttled"), *result.headers])
            return
        if result.principal is None:
            finish_text(request, 401, result.message, headers=[CHALLENGE])
            return
        decision = may_read(result.principal, project, public=False)
        path = uri_path(request.getHeader(b"x-original-uri") or b"/")
        if decision and result.principal.projects and path.startswith("/simple/") and project is None:
            if path == "/simple/":
                finish_text(request, 403, "filtered", headers=[(b"x-spoold-denied", b"filtered")])
            else:  # the stored root files themselves: not for a limited reader
                finish_text(request, 403, "Not found", headers=[(b"x-spoold-denied", b"hidden")])
            return
        if decision.status == 401:
            finish_text(request, 401, decision.message, headers=[CHALLENGE])
        elif decision.status == 404:
            finish_text(request, 403, "Not found", headers=[(b"x-spoold-denied", b"hidden")])
        else:
            request.write(_allowed(request))
            request.finish()

    def _failed(self, failure: Failure, request: Request) -> None:
        finish_text(request, 503, "cannot check the credentials now")


def _allowed(request: Request) -> bytes:
    request.setResponseCode(200)
    request.setHeader(b"content-length", b"0")
    return b""


def uri_path(uri: bytes) -> str:
    return uri.decode("latin-1").split("?", 1)[0]
