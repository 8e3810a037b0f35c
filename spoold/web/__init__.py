"""The HTTP adapter: Twisted web resources over the spool, the storage and the worker.

The resources do no blocking work on the reactor thread: storage reads, stats, password
checks, form parsing and spool deliveries all go through a :data:`Run` callable (in
production ``deferToThreadPool`` on the daemon's pool; in tests a synchronous stand-in).
What they need from the rest of spoold is written down here as small protocols, so a
test can hand them fakes and the daemon the real things:

* :class:`StorageReader` -- the serving half of :class:`spoold.storage.Storage`;
* :class:`Waiter` -- the worker's ``wait_for(item)``.

:func:`spoold.web.site.build_site` puts it all together.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from twisted.internet.defer import Deferred
from twisted.web.resource import Resource
from twisted.web.server import Request

from spoold.spool.outcome import Outcome
from spoold.storage.base import Page, StoredObject
from spoold.threads import Run

__all__ = [
    "LeafResource",
    "Run",
    "StorageReader",
    "Waiter",
    "decode_segments",
    "finish_text",
    "is_gone",
    "reason_phrase",
    "send_text",
]



class StorageReader(Protocol):
    """What serving needs from a storage backend (:class:`spoold.storage.Storage` has it)."""

    def read_page(self, key: str) -> Page | None: ...

    def local_path(self, key: str) -> Path | None: ...

    def presigned_url(self, key: str, expires: int = 300) -> str | None: ...

    def stat(self, key: str) -> StoredObject | None: ...

    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]: ...

    def ping(self) -> None: ...


class Waiter(Protocol):
    """Something that learns what became of a spool item (the worker)."""

    def wait_for(self, item: str) -> Deferred[Outcome]: ...


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


def send_text(
    request: Request,
    status: int,
    message: str,
    *,
    reason: str | None = None,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> bytes:
    """Set up a plain-text answer and return its body (for ``render_*`` or ``write``).

    ``reason``: a reason phrase to use instead of the standard one (uploads put their
    message there for twine).
    """
    request.setResponseCode(status, reason_phrase(reason) if reason is not None else None)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    request.setHeader(b"x-content-type-options", b"nosniff")
    for name, value in headers:
        request.setHeader(name, value)
    body = (message.rstrip("\n") + "\n").encode("utf-8")
    request.setHeader(b"content-length", str(len(body)).encode("ascii"))
    return body


def finish_text(request: Request, status: int, message: str, **kwargs: Any) -> None:
    """:func:`send_text` for asynchronous answers: write and finish (unless gone)."""
    if is_gone(request):
        return
    body = send_text(request, status, message, **kwargs)
    if request.method != b"HEAD":
        request.write(body)
    request.finish()


def finish_body(request: Request, body: bytes, content_type: str, *, cache_control: str = "no-store") -> None:
    """Answer 200 with ``body`` (asynchronously: unless the client is gone; no body for HEAD)."""
    if is_gone(request):
        return
    request.setHeader(b"content-type", content_type.encode("ascii"))
    request.setHeader(b"cache-control", cache_control.encode("ascii"))
    request.setHeader(b"content-length", str(len(body)).encode("ascii"))
    if request.method != b"HEAD":
        request.write(body)
    request.finish()


def is_gone(request: Request) -> bool:
    """Whether the client went away (writing or finishing then is an error in Twisted)."""
    return bool(getattr(request, "_disconnected", False)) or bool(getattr(request, "finished", False))


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


class LeafResource(Resource):
    """A leaf resource that answers methods it lacks with a plain-text 405 and ``Allow``
    (Twisted's own 405 page is HTML, and its HEAD fallback fails without a GET)."""

    isLeaf = True
    #: The methods this resource answers; HEAD is implied by GET.
    methods: tuple[bytes, ...] = (b"GET",)

    def render(self, request: Request) -> bytes | int:
        allowed = self.methods + ((b"HEAD",) if b"GET" in self.methods else ())
        if request.method not in allowed:
            result: bytes | int = send_text(
                request, 405,
                f"{request.method.decode('latin-1')[:20]} is not allowed here; use "
                + " or ".join(m.decode() for m in allowed),
                headers=[(b"allow", b", ".join(allowed))],
            )
        elif request.method == b"HEAD":
            result = self.render_GET(request)  # type: ignore[attr-defined]
        else:
            result = super().render(request)
        if request.method == b"HEAD" and isinstance(result, bytes):
            return b""  # the headers (Content-Length included) stay; the body goes
        return result
