"""Who a request is, and whether it may read: the web side of :mod:`spoold.access`.

:meth:`Guard.principal` turns the ``Authorization`` header into a principal -- from
memory on the reactor thread when it can (a cached token, a remembered password), else on
the password-check thread pool. :meth:`Guard.reader` adds the read decision of
:func:`spoold.access.policy.may_read` and answers the refusals itself: 401 with the
``Basic realm="spoold"`` challenge (so pip, uv and poetry send what they have: URL,
keyring, netrc), or 429 with ``Retry-After``. A project the principal may not see is not
refused here: the resource answers it exactly as a project that does not exist
(:meth:`Guard.sees`), after the same storage read, so that neither the answer nor its
timing tells the two apart.

With public reads nothing is parsed at all: the read path stays as cheap as it was.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure
from twisted.web.server import Request
from twisted.logger import Logger

from spoold.access.authenticate import AuthResult, Authenticator
from spoold.access.credentials import parse_authorization
from spoold.access.policy import may_read, may_see
from spoold.access.principal import ANONYMOUS, Principal
from spoold.threads import Run
from spoold.web.request import peer_host
from spoold.web.responses import finish_text

__all__ = ["CHALLENGE", "Guard"]

log = Logger()

CHALLENGE = (b"www-authenticate", b'Basic realm="spoold", charset="UTF-8"')


class Guard:
    def __init__(self, authenticator: Authenticator | None, auth_run: Run, *, public: bool) -> None:
        self.authenticator = authenticator
        self.auth_run = auth_run
        self.public = public

    def principal(self, request: Request) -> Deferred[AuthResult]:
        """Who the request is (anonymous without credentials), or why its credentials fail."""
        known = self.known(request)
        if known is not None:
            return succeed(known)
        credentials = parse_authorization(request.getHeader(b"authorization"))
        assert self.authenticator is not None and credentials is not None
        return self.auth_run(self.authenticator.check, credentials, peer_host(request))

    def known(self, request: Request) -> AuthResult | None:
        """:meth:`principal` when memory can tell (no credentials, a cached token, a
        remembered password, a throttled sender), on the reactor without a Deferred;
        None when only the thread pool's check can. A refusal it returns has been
        counted (a failed login): answer it, never ask again for the same request."""
        credentials = parse_authorization(request.getHeader(b"authorization"))
        if credentials is None:
            return AuthResult(ANONYMOUS)
        if self.authenticator is None:
            return AuthResult(None, 401, "This server checks no credentials")
        return self.authenticator.quick(credentials, peer_host(request))

    def decide(self, request: Request, result: AuthResult, project: str | None) -> Principal | None:
        """:meth:`reader`'s decision on a known result: the principal, or None after
        answering the refusal (401 with the challenge, 429)."""
        return self._decide(result, request, project)

    def reader(self, request: Request, project: str | None) -> Deferred[Principal | None]:
        """The principal if it may read ``project`` (None: the root index), else None
        after answering the request. Whether the project is visible to it is
        :meth:`sees`'s to say."""
        if self.public:
            return succeed(ANONYMOUS)
        d = self.principal(request)
        d.addCallback(self._decide, request, project)
        d.addErrback(self._failed, request)
        return d

    def sees(self, principal: Principal, project: str) -> bool:
        return may_see(principal, project, public=self.public)

    def _decide(self, result: AuthResult, request: Request, project: str | None) -> Principal | None:
        if result.principal is None:
            refuse(request, result.status, result.message, result.headers)
            return None
        decision = may_read(result.principal, project, public=self.public)
        if decision.status == 401:
            refuse(request, 401, decision.message, (CHALLENGE,))
            return None
        return result.principal  # allowed, or hidden: the resource answers as "absent"

    def _failed(self, failure: Failure, request: Request) -> None:
        log.failure("checking a request's credentials failed", failure)
        finish_text(request, 503, "The server could not check the credentials; try again later",
                    headers=[(b"retry-after", b"5")])
        return None


def refuse(request: Request, status: int, message: str, headers: Any = ()) -> None:
    """401 (with the challenge) or 429 (with Retry-After), never a body that says more."""
    finish_text(request, status, message, headers=list(headers))
