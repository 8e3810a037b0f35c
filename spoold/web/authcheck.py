"""``GET /_auth``: the access decision for a reverse proxy (nginx ``auth_request``).

nginx serves the index straight from the storage tree; for a private index it first asks
spoold, in a subrequest carrying the client's ``Authorization`` (and ``Cookie``), whether
the request may be served, and caches the answer for a short time keyed by those
credentials alone. That is sound because every answer here holds for any URI:

* 200 (empty): these credentials may read everything (a user, a token not limited to some
  projects; anybody on a public index);
* 401 with the ``Basic realm="spoold"`` challenge: no or bad credentials (nginx caches no
  401);
* 403: "not from the tree" -- nginx then passes the request itself to spoold, which
  answers it as it answers any read: a token limited to some projects gets those (and the
  root index listing only them), and any other project exactly as one that does not exist;
  too many failed logins get 429. ``X-Spoold-Denied`` (``limited``, ``throttled``) says
  which, for logs and tests.

Caching by credentials, not by credentials and project, means one check per reader every
10 s however many projects it reads (pip resolving a requirements file of a hundred
projects costs one Python request, not a hundred). A limited token pays a Python request
per read instead, which is the price of a decision that depends on the project.
"""

from __future__ import annotations

from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET, Request

from spoold.access.authenticate import AuthResult
from spoold.access.policy import reads_everything
from spoold.web.guard import CHALLENGE, Guard
from spoold.web.responses import LeafResource, finish_text

__all__ = ["AuthCheckResource"]


class AuthCheckResource(LeafResource):
    def __init__(self, guard: Guard) -> None:
        super().__init__()
        self.guard = guard

    def render_GET(self, request: Request) -> bytes | int:
        request.setHeader(b"cache-control", b"private, max-age=10")
        if self.guard.public:
            return _allowed(request)
        d = self.guard.principal(request)
        d.addCallback(self._decide, request)
        d.addErrback(self._failed, request)
        return NOT_DONE_YET

    def _decide(self, result: AuthResult, request: Request) -> None:
        if result.principal is None and result.status == 429:
            finish_text(request, 403, result.message, headers=[
                (b"x-spoold-denied", b"throttled"), *result.headers])
        elif result.principal is None or not result.principal.authenticated:
            finish_text(request, 401, result.message or "Authentication required", headers=[CHALLENGE])
        elif reads_everything(result.principal, public=False):
            request.write(_allowed(request))
            request.finish()
        else:
            finish_text(request, 403, "Answered by spoold", headers=[(b"x-spoold-denied", b"limited")])

    def _failed(self, failure: Failure, request: Request) -> None:
        finish_text(request, 503, "cannot check the credentials now")


def _allowed(request: Request) -> bytes:
    request.setResponseCode(200)
    request.setHeader(b"content-length", b"0")
    return b""
