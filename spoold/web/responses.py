"""Answering a request: plain-text and body responses, and the leaf that answers 405.

Shared by every resource so that all of spoold's answers look alike: plain text with
``nosniff``, a ``Content-Length``, no body for HEAD, and nothing written to a client that
went away (Twisted raises if a request is finished after its connection is lost).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request

from spoold.http.headers import reason_phrase

__all__ = [
    "LeafResource",
    "finish_body",
    "finish_text",
    "is_gone",
    "send_text",
]


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
    """Whether the request is over: answered, or its client went away (writing or
    finishing then is an error in Twisted).

    The client's leaving is known for :class:`spoold.web.request.SpooldRequest` (its
    ``gone``), which every request of spoold's site is.
    """
    return bool(getattr(request, "gone", False)) or bool(request.finished)


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
