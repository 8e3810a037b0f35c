"""``POST /`` and ``POST /legacy/``: the legacy upload API, as twine, uv and poetry use it.

The steps, and why each runs where it does:

1. *Reactor*: Basic credentials are required (401 with a challenge otherwise; 403 with
   the command to run when no htpasswd file is configured at all).
2. *Thread*: the password is checked (bcrypt is slow; a recent success is remembered by
   :class:`spoold.access.htpasswd.Htpasswd`).
3. *Thread*: the form is parsed from the request body, which :mod:`spoold.web.site`
   already buffered in the spool's ``tmp/`` (same filesystem, bounded memory). The file
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
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET, Request

from spoold.access.htpasswd import Credentials, parse_basic
from spoold.hashing import Hasher
from spoold.inspection.digests import DECLARED_FIELDS, check_declared
from spoold.errors import Rejected, SpooldError, Transient
from spoold.inspection.filenames import ParsedFilename, parse_filename
from spoold.metrics import Metrics
from spoold.http.multipart import FilePart, FormLimits, parse_form
from spoold.spool.outcome import Outcome, Result
from spoold.spool.queue import Spool
from spoold.web import LeafResource, Run, Waiter, finish_text, is_gone, send_text

__all__ = [
    "UPLOAD_FIELDS",
    "Authenticator",
    "Received",
    "Refusal",
    "UploadPolicy",
    "UploadRefused",
    "UploadResource",
    "check_form",
    "receive_upload",
]

log = Logger()

#: The form fields spoold reads; all others (description, classifiers...) are skipped.
UPLOAD_FIELDS = frozenset(
    {":action", "protocol_version", "name", "version", "filetype", *DECLARED_FIELDS}
)
#: Fields that must come before the file part for it to go straight into a delivery.
_REQUIRED = frozenset({":action", "name", "version", "filetype"})
_FILETYPES = {"sdist": "sdist", "bdist_wheel": "wheel"}
REALM = "spoold"


class UploadRefused(Rejected):
    """The form is well formed but not an upload spoold accepts (wrong action, missing or
    contradictory fields)."""

    code = "bad-upload"


class Clock(Protocol):
    """The part of the reactor the upload resource uses (``MemoryReactorClock`` in tests)."""

    def seconds(self) -> float: ...

    def callLater(self, delay: float, f: Any, *args: Any, **kwargs: Any) -> Any: ...


class Authenticator(Protocol):
    """Checks a user's password; blocking (bcrypt), so it is called in a thread."""

    def verify(self, user: str, password: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class UploadPolicy:
    form: FormLimits = field(default_factory=FormLimits)
    #: Seconds an upload waits for its outcome before it is answered with 503 (the item
    #: stays queued and is published later); None waits as long as the client does.
    wait_timeout: float | None = 900.0
    retry_after: int = 30


@dataclass(frozen=True, slots=True)
class Received:
    """An upload now in ``new/``: its item name, for waiting on the outcome."""

    item: str
    filename: str
    project: str
    version: str
    size: int
    sha256: str


def check_form(fields: Mapping[str, str], parsed: ParsedFilename) -> None:
    """Refuse forms that are not a legacy ``file_upload`` matching the file's name.

    The same rules as PyPI (Warehouse), so a package that uploads here uploads there:
    the action and protocol, a filetype agreeing with the file, the name and version of
    the form agreeing with the filename, and at least one digest to check the bytes by.
    """
    action = fields.get(":action")
    if action is None:
        raise UploadRefused("the upload form has no ':action' field; use twine, uv publish or poetry publish")
    if action != "file_upload":
        raise UploadRefused(
            f"spoold only supports ':action' = 'file_upload', not {action[:50]!r} "
            "(registering a project first is not needed)"
        )
    protocol = fields.get("protocol_version")
    if protocol is not None and protocol != "1":
        raise UploadRefused(f"spoold speaks upload protocol_version 1, not {protocol[:20]!r}")
    filetype = fields.get("filetype")
    if filetype not in _FILETYPES:
        raise UploadRefused(
            "the 'filetype' field must be 'sdist' or 'bdist_wheel'"
            + (f", not {filetype[:30]!r}" if filetype else " and is missing")
        )
    if _FILETYPES[filetype] != parsed.kind:
        raise UploadRefused(
            f"the 'filetype' field says {filetype} but {parsed.filename} is a{'n sdist' if parsed.kind == 'sdist' else ' wheel'}"
        )
    name = fields.get("name")
    if not name:
        raise UploadRefused("the upload form has no 'name' field")
    if canonicalize_name(name) != parsed.project:
        raise UploadRefused(
            f"the form names the project {name[:100]!r} but the file {parsed.filename} "
            f"is for {parsed.project!r}"
        )
    version = fields.get("version")
    if not version:
        raise UploadRefused("the upload form has no 'version' field")
    try:
        same = Version(version) == Version(parsed.version)
    except InvalidVersion:
        raise UploadRefused(f"the 'version' field {version[:50]!r} is not a valid version") from None
    if not same:
        raise UploadRefused(
            f"the form says version {version[:50]!r} but the file {parsed.filename} is "
            f"version {parsed.version}"
        )
    if not any(fields.get(f, "").strip() for f in DECLARED_FIELDS):
        raise UploadRefused(
            "the upload form has no digest (sha256_digest, blake2_256_digest or md5_digest); "
            "spoold checks every upload against one"
        )


def _meta(fields: Mapping[str, str], uploader: str) -> dict[str, Any]:
    """What the worker gets with the item (``meta.json``): declared digests and origin."""
    meta: dict[str, Any] = {
        k: fields[k].strip().lower() for k in DECLARED_FIELDS if fields.get(k, "").strip()
    }
    meta.update(
        uploader=uploader,
        name=fields.get("name", ""),
        version=fields.get("version", ""),
        filetype=fields.get("filetype", ""),
        via="upload",
    )
    return meta


class _HashingWriter:
    """Writes through to the destination while hashing (one pass over the bytes)."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.hasher = Hasher(md5=True)

    def write(self, data: bytes | bytearray) -> int:
        self.hasher.update(data)
        self.target.write(data)
        return len(data)


def receive_upload(
    body: IO[bytes],
    content_type: str | None,
    spool: Spool,
    uploader: str,
    *,
    limits: FormLimits | None = None,
) -> Received:
    """Parse an upload form from ``body`` and deliver its file into the spool.

    Blocking; run it in a thread. The file part is written straight into a spool
    delivery when the form's fields came before it (as every known client sends them),
    and through a temporary file in ``tmp/`` otherwise. The delivery is committed into
    ``new/`` only after the form and the digests check out; on any error nothing is left
    behind. Raises :class:`~spoold.errors.Rejected` subclasses for the uploader's faults.
    """
    limits = limits or FormLimits()
    with contextlib.ExitStack() as stack:
        state: dict[str, Any] = {}

        def open_file(part: FilePart, fields: Mapping[str, str]) -> IO[bytes]:
            parsed = parse_filename(part.filename)  # a bad name fails before the copy
            state["parsed"] = parsed
            if _REQUIRED <= set(fields) and any(f in fields for f in DECLARED_FIELDS):
                check_form(fields, parsed)
                delivery = stack.enter_context(spool.delivery(part.filename, _meta(fields, uploader)))
                state["delivery"] = delivery
                target: Any = delivery
            else:
                target = stack.enter_context(tempfile.TemporaryFile(dir=spool.tmp))
                state["staged"] = target
            writer = _HashingWriter(target)
            state["writer"] = writer
            return writer  # type: ignore[return-value]

        form = parse_form(body, content_type, open_file, keep=UPLOAD_FIELDS, limits=limits)
        if form.file is None:
            raise UploadRefused(
                "the upload form has no 'content' file part; nothing was uploaded"
            )
        parsed: ParsedFilename = state["parsed"]
        check_form(form.fields, parsed)
        digests = state["writer"].hasher.digests()
        check_declared(digests, {k: form.fields[k] for k in DECLARED_FIELDS if k in form.fields})
        if digests.size == 0:
            raise UploadRefused(f"the file {parsed.filename} is empty")
        delivery = state.get("delivery")
        if delivery is None:
            staged = state["staged"]
            staged.seek(0)
            delivery = stack.enter_context(spool.delivery(form.file.filename, _meta(form.fields, uploader)))
            shutil.copyfileobj(staged, delivery, 1 << 20)
        received = Received(
            item=delivery.item,
            filename=form.file.filename,
            project=parsed.project,
            version=parsed.version,
            size=digests.size,
            sha256=digests.sha256,
        )
    # Leaving the ExitStack committed the delivery into new/ (or aborted it on error).
    return received


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer given without looking at the body."""

    status: int
    #: For metrics (``spoold_rejections_total{code=...}``).
    code: str
    message: str
    reason: str
    headers: tuple[tuple[bytes, bytes], ...] = ()


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
        auth: Authenticator | None,
        run: Run,
        reactor: Clock,
        metrics: Metrics | None = None,
        policy: UploadPolicy | None = None,
        auth_run: Run | None = None,
    ) -> None:
        super().__init__()
        self.spool = spool
        self.waiter = waiter
        self.auth = auth
        self.run = run
        #: Where password checks run: bcrypt is deliberately slow, so give it threads of
        #: its own and a flood of bad passwords cannot starve the workers' pool.
        self.auth_run = auth_run or run
        self.reactor = reactor
        self.metrics = metrics or Metrics()
        self.policy = policy or UploadPolicy()

    def precheck(self, authorization: bytes | None) -> Refusal | None:
        """The refusal an upload gets whatever its body (no htpasswd, no credentials).

        Cheap and without I/O, so the site can answer it as soon as the headers are in,
        before a large body is received for nothing; ``render_POST`` applies it again.
        """
        if self.auth is None:
            return Refusal(
                403, "uploads-disabled",
                "Uploads are disabled: this server has no htpasswd file. Add a user with "
                "`spoold user add NAME --htpasswd FILE` and start the server with "
                "`--htpasswd FILE` (or `htpasswd = \"FILE\"` in the config file).",
                reason="Uploads are disabled: no htpasswd file is configured; add a user with "
                       "`spoold user add NAME --htpasswd FILE` and restart with --htpasswd FILE",
            )
        if parse_basic(authorization) is None:
            return _challenge("Authentication required: upload with a user name and password "
                              "from the server's htpasswd file")
        return None

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
        assert self.auth is not None
        credentials = parse_basic(request.getHeader(b"authorization"))
        assert credentials is not None
        d: Deferred[Any] = self.auth_run(self.auth.verify, credentials.user, credentials.password)
        d.addCallback(self._authenticated, request, credentials, body)
        d.addErrback(self._failed, request)
        d.addBoth(_closing(body))
        return NOT_DONE_YET

    def _authenticated(
        self, ok: bool, request: Request, credentials: Credentials, body: IO[bytes] | None
    ) -> Deferred[Any] | None:
        if not ok:
            _close(body)
            refusal = _challenge("Invalid user name or password")
            self.metrics.record_rejection(refusal.code)
            finish_text(request, refusal.status, refusal.message, reason=refusal.reason,
                        headers=refusal.headers)
            return None
        # From here on the upload is delivered even if the uploader has left: its bytes
        # are complete, and twine may well retry, which publishing shrugs off.
        content_type = request.getHeader(b"content-type")
        d: Deferred[Any] = self.run(
            self._receive, body,
            content_type.decode("latin-1") if content_type is not None else None,
            credentials.user,
        )
        d.addCallback(self._delivered, request)
        return d

    def _receive(self, body: IO[bytes] | None, content_type: str | None, user: str) -> Received:
        if body is None:
            raise UploadRefused("the upload has no body")
        try:
            return receive_upload(body, content_type, self.spool, user, limits=self.policy.form)
        finally:
            with contextlib.suppress(Exception):
                body.close()

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
