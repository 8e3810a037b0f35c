"""``POST /`` and ``POST /legacy/``: the legacy upload API, as twine, uv and poetry use it.

The steps, and why each runs where it does:

1. *Reactor*: credentials are required -- a user's password or a token with the upload
   scope (401 with a challenge otherwise; 403 when the server checks no credentials).
2. *Thread*: they are checked (:class:`spoold.access.authenticate.Authenticator`: bcrypt,
   or a remembered success, or a token record) -- before the body is read, by
   :mod:`spoold.web.admission`, which also caps the bodies in flight and keeps free
   space in the spool (on the reactor, without a thread trip, when the credentials are
   known from memory and the free space from a moment ago); a request that arrives
   already checked is not checked again.
   Once the form names the project, the sender's right to upload there is decided
   (:func:`spoold.access.policy.may_upload`: the token's projects, the project's roles)
   before a byte of the file is copied; the worker decides it again when it publishes,
   where two users creating one project at the same moment are told apart.
3. *Thread*: the form is parsed from the request body, which :mod:`spoold.web.request`
   already buffered in the spool's ``tmp/`` (same filesystem, bounded memory), by
   :func:`spoold.http.upload_form.receive_upload`. The file
   part is copied straight into a spool delivery while its digests are computed; the
   declared digests, name, version and filetype are checked before the delivery is
   committed into ``new/``, so a corrupt upload never enters the queue.
4. *Reactor*: wait for the worker's :class:`~spoold.spool.outcome.Outcome` and answer: 200
   when published (or already published with the same bytes), else the rejection's
   status (400, or 409 "File already exists") with the message both as the body and as
   the reason phrase, which is what twine prints. Never a redirect: clients re-send a
   POST body to a redirect target only sometimes, and twine refuses to follow.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET, Request

from spoold.access.authenticate import Authenticator, AuthResult
from spoold.access.credentials import Credentials, parse_authorization
from spoold.access.events import Event
from spoold.access.policy import Forbidden, may_upload
from spoold.access.principal import Principal, Scope
from spoold.access.store import AccessStore
from spoold.errors import Rejected, SpooldError, Transient
from spoold.http.admission import Refusal
from spoold.http.multipart import FormLimits
from spoold.http.upload_form import Received, UploadRefused, receive_upload
from spoold.inspection.filenames import ParsedFilename
from spoold.spool.records import ItemMeta
from spoold.storage.keys import project_json_key
from spoold.metrics import Metrics
from spoold.spool.outcome import Outcome, Result
from spoold.spool.queue import Spool
from spoold.threads import Run
from spoold.web.protocols import Waiter
from spoold.web.request import peer_host
from spoold.web.responses import LeafResource, finish_text, is_gone, send_text

__all__ = [
    "Clock",
    "Forbidden",
    "Refusal",
    "UploadPolicy",
    "UploadResource",
]

log = Logger()

REALM = "spoold"


class Clock(Protocol):
    """The part of the reactor the upload resource uses (``MemoryReactorClock`` in tests)."""

    def seconds(self) -> float: ...

    def callLater(self, delay: float, f: Any, *args: Any, **kwargs: Any) -> Any: ...




@dataclass(frozen=True, slots=True)
class UploadPolicy:
    form: FormLimits = field(default_factory=FormLimits)
    #: Seconds an upload waits for its outcome before it is answered with 503 (the item
    #: stays queued and is published later); None waits as long as the client does.
    wait_timeout: float | None = 900.0
    retry_after: int = 30


def _challenge(message: str) -> Refusal:
    return Refusal(401, "unauthorized", message, message,
                   ((b"www-authenticate", f'Basic realm="{REALM}", charset="UTF-8"'.encode()),))


class UploadResource(LeafResource):
    """The upload endpoint (POST only); a leaf."""

    methods = (b"POST",)

    def __init__(
        self,
        *,
        spool: Spool,
        waiter: Waiter,
        authenticator: Authenticator | None,
        run: Run,
        reactor: Clock,
        metrics: Metrics | None = None,
        policy: UploadPolicy | None = None,
        auth_run: Run | None = None,
        access: AccessStore | None = None,
    ) -> None:
        super().__init__()
        self.spool = spool
        self.waiter = waiter
        self.authenticator = authenticator
        #: Roles, and the audit trail; None: every authenticated upload may go anywhere.
        self.access = access
        self.run = run
        #: Where password checks run: bcrypt is deliberately slow, so give it threads of
        #: its own and a flood of bad passwords cannot starve the workers' pool.
        self.auth_run = auth_run or run
        self.reactor = reactor
        self.metrics = metrics or Metrics()
        self.policy = policy or UploadPolicy()

    def precheck(self, authorization: bytes | None) -> Refusal | None:
        """The refusal an upload gets whatever its body (no accounts, no credentials).

        Cheap and without I/O, so the site can answer it as soon as the headers are in,
        before a large body is received for nothing; ``render_POST`` applies it again.
        """
        if self.authenticator is None:
            return Refusal(
                403, "uploads-disabled",
                "Uploads are disabled: this server checks no credentials. Start it with an "
                "htpasswd file (`htpasswd = \"FILE\"` in the config file, or --htpasswd FILE).",
                reason="Uploads are disabled: this server checks no credentials; start it with "
                       "--htpasswd FILE",
            )
        if parse_authorization(authorization) is None:
            return _challenge("Authentication required: upload with a user name and password, "
                              "or a token as the password of the user __token__")
        return None

    def verify(self, credentials: Credentials, address: str | None) -> Principal | Refusal:
        """Who uploads, or the refusal (401, 429, 403 for a token that cannot upload; 503
        while the htpasswd file cannot be read). Blocking (bcrypt): call it in a thread."""
        assert self.authenticator is not None
        return self._judge(self.authenticator.check(credentials, address))

    def verify_quick(self, credentials: Credentials, address: str | None) -> Principal | Refusal | None:
        """:meth:`verify`'s answer from memory alone (a password checked moments ago, a
        cached token record), or None when only :meth:`verify` can tell. No I/O, no
        bcrypt: safe on the reactor thread."""
        assert self.authenticator is not None
        result = self.authenticator.quick(credentials, address)
        return None if result is None else self._judge(result)

    def _judge(self, result: AuthResult) -> Principal | Refusal:
        assert self.authenticator is not None
        if result.principal is not None:
            if not result.principal.can(Scope.UPLOAD):
                message = (f"token {result.principal.token_id} allows read only: uploading "
                           "needs a token with the upload scope")
                return Refusal(403, "forbidden", message, message)
            return result.principal
        if result.status == 401 and getattr(self.authenticator.passwords, "problem", None) is not None:
            # Nobody can upload; "invalid password" would send the uploader the wrong way.
            message = ("Uploads are unavailable: the server cannot read its list of uploaders "
                       "(the htpasswd file); the operator must fix it, see the server log")
            return Refusal(503, "htpasswd-unreadable", message, message,
                           ((b"retry-after", str(self.policy.retry_after).encode()),))
        if result.status == 401:
            return _challenge(result.message or "Invalid user name or password")
        return Refusal(result.status, "throttled" if result.status == 429 else "unauthorized",
                       result.message, result.message, result.headers)

    def render_POST(self, request: Request) -> bytes | int:
        # Take the body from the request: Twisted closes request.content when the client
        # disconnects, but a complete upload is still delivered and published then.
        body: IO[bytes] | None = request.content
        request.content = io.BytesIO()
        refusal = self.precheck(request.getHeader(b"authorization"))
        if refusal is not None:
            _close(body)
            self.metrics.record_rejection(refusal.code)
            return send_text(request, refusal.status, refusal.message, reason=refusal.reason,
                             headers=refusal.headers)
        # Checked before the body was read (spoold.web.admission): not paid for twice.
        verified: Principal | None = getattr(request, "verified", None)
        if verified is not None:
            d: Deferred[Any] = succeed(verified)
        else:
            credentials = parse_authorization(request.getHeader(b"authorization"))
            assert credentials is not None
            d = self.auth_run(self.verify, credentials, peer_host(request))
        d.addCallback(self._authenticated, request, body)
        d.addErrback(self._failed, request)
        d.addBoth(_closing(body))
        return NOT_DONE_YET

    def _authenticated(
        self, checked: Principal | Refusal, request: Request, body: IO[bytes] | None
    ) -> Deferred[Any] | None:
        if isinstance(checked, Refusal):
            _close(body)
            self.metrics.record_rejection(checked.code)
            finish_text(request, checked.status, checked.message, reason=checked.reason,
                        headers=checked.headers)
            return None
        # From here on the upload is delivered even if the uploader has left: its bytes
        # are complete, and twine may well retry, which publishing shrugs off.
        content_type = request.getHeader(b"content-type")
        agent = request.getHeader(b"user-agent")
        origin = ItemMeta(
            uploader=checked.user, token=checked.token_id, address=peer_host(request),
            user_agent=agent.decode("latin-1")[:200] if agent else None,
        )
        d: Deferred[Any] = self.run(
            self._receive, body,
            content_type.decode("latin-1") if content_type is not None else None,
            checked, origin,
        )
        d.addCallback(self._delivered, request)
        return d

    def _receive(self, body: IO[bytes] | None, content_type: str | None, principal: Principal,
                 origin: ItemMeta) -> Received:
        if body is None:
            raise UploadRefused("the upload has no body")
        named: list[ParsedFilename] = []

        def authorize(parsed: ParsedFilename) -> None:
            named.append(parsed)
            self._authorize(principal, parsed)

        try:
            return receive_upload(body, content_type, self.spool, origin, limits=self.policy.form,
                                  authorize=authorize)
        except Rejected as e:
            self._record_rejection(principal, origin, e, named[0] if named else None)
            raise
        finally:
            with contextlib.suppress(Exception):
                body.close()

    def _authorize(self, principal: Principal, parsed: ParsedFilename) -> None:
        """May ``principal`` upload to the file's project? (Blocking: reads its roles.)"""
        roles = exists = None
        if self.access is not None:
            roles = self.access.roles(parsed.project)
            exists = roles is not None or self.access.storage.stat(project_json_key(parsed.project)) is not None
        decision = may_upload(principal, parsed.project, roles, exists=bool(exists))
        if not decision:
            raise Forbidden(decision.message)

    def _record_rejection(self, principal: Principal, origin: ItemMeta, error: Rejected,
                          parsed: ParsedFilename | None) -> None:
        if self.access is None:
            return
        try:
            self.access.record(Event(
                "upload-rejected", principal.describe(), address=origin.address,
                project=parsed.project if parsed else None,
                filename=parsed.filename if parsed else None,
                user_agent=origin.user_agent, detail=f"{error.code}: {error.message}"[:500]))
        except Exception:  # the audit trail must not turn a 4xx into a 500
            log.failure("cannot record an upload rejection in the audit trail")

    def _delivered(self, received: Received, request: Request) -> Deferred[Any] | None:
        log.info("upload of {filename} is in the spool as {item}",
                 filename=received.filename, item=received.item)
        if is_gone(request):
            return None  # the uploader left; the worker still publishes the item
        started = self.reactor.seconds()
        waiting: Deferred[Outcome] = self.waiter.wait_for(received.item)
        request.notifyFinish().addErrback(lambda _: waiting.cancel())
        timeout = self.policy.wait_timeout
        timer = None
        if timeout is not None:
            timer = self.reactor.callLater(timeout, waiting.cancel)

        def answered(outcome: Outcome) -> None:
            if timer is not None and timer.active():
                timer.cancel()
            # The worker counts the outcome itself; here only the uploader's wait.
            self.metrics.upload_wait_seconds.observe(max(0.0, self.reactor.seconds() - started))
            self._answer(outcome, request)

        def not_answered(failure: Failure) -> None:
            if timer is not None and timer.active():
                timer.cancel()
            if is_gone(request):
                return None
            if failure.check(CancelledError):
                finish_text(
                    request, 503,
                    f"{received.filename} is in the queue but was not published within "
                    f"{timeout:g} seconds (is the storage reachable?); it will be published "
                    "when it can be. Check with `spoold status` or retry the upload later.",
                    headers=[(b"retry-after", str(self.policy.retry_after).encode())],
                )
                return None
            return self._failed(failure, request)

        waiting.addCallbacks(answered, not_answered)
        return None

    def _answer(self, outcome: Outcome, request: Request) -> None:
        if outcome.ok:
            what = ("published" if outcome.result is Result.PUBLISHED
                    else "already published with the same bytes")
            finish_text(request, 200, f"OK: {outcome.filename} {what}")
            return
        status = outcome.http_status if 400 <= outcome.http_status <= 599 else 400
        message = outcome.message or "the upload was rejected"
        if outcome.code == "file-exists" or status == 409:
            status = 409
            if "file already exists" not in message.lower():
                message = f"File already exists: {message}"
        finish_text(request, status, message, reason=message)

    def _failed(self, failure: Failure, request: Request) -> None:
        if failure.check(Rejected):
            error: Rejected = failure.value  # type: ignore[assignment]
            self.metrics.record_rejection(error.code)
            if not is_gone(request):
                finish_text(request, error.http_status, error.message, reason=error.message)
            return
        if failure.check(Transient, OSError):
            # A full disk or an unwritable spool is not the uploader's fault: 503 makes
            # twine retry, and the operator sees the cause in the log.
            log.failure("an upload could not be spooled", failure)
            if not is_gone(request):
                text = failure.value.strerror if isinstance(failure.value, OSError) else str(failure.value)
                finish_text(request, 503, f"The server cannot take the upload now ({text}); try again later",
                            headers=[(b"retry-after", str(self.policy.retry_after).encode())])
            return
        if failure.check(SpooldError):
            log.failure("an upload failed", failure)
            if not is_gone(request):
                finish_text(request, 503, f"The server cannot take the upload now: {failure.value}")
            return
        log.failure("an upload failed with an internal error", failure)
        if not is_gone(request):
            finish_text(request, 500, "Internal error while receiving the upload; see the server log")


def _close(body: IO[bytes] | None) -> None:
    if body is not None:
        with contextlib.suppress(Exception):
            body.close()


def _closing(body: IO[bytes] | None) -> Any:
    """A Deferred callback that closes the body whatever happened, and passes through."""

    def close(result: Any) -> Any:
        _close(body)
        return result

    return close
