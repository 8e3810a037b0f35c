"""The HTTP adapter: Twisted web resources over the spool, the storage and the worker.

The resources do no blocking work on the reactor thread: storage reads, stats, password
checks, form parsing and spool deliveries all go through a :data:`Run` callable (in
production ``deferToThreadPool`` on the daemon's pool; in tests a synchronous stand-in).
What they need from the rest of spoold is written down as small protocols in
:mod:`spoold.web.protocols`; the helpers every resource answers with are in
:mod:`spoold.web.responses`. Both are re-exported here, with the pure rules they use
from :mod:`spoold.http` (:func:`reason_phrase`, :func:`decode_segments`).

:func:`spoold.web.site.build_site` puts it all together.
"""

from __future__ import annotations

from spoold.http.headers import reason_phrase
from spoold.http.paths import decode_segments
from spoold.threads import Run
from spoold.web.protocols import StorageReader, Waiter
from spoold.web.responses import LeafResource, finish_body, finish_text, is_gone, send_text

__all__ = [
    "LeafResource",
    "Run",
    "StorageReader",
    "Waiter",
    "decode_segments",
    "finish_body",
    "finish_text",
    "is_gone",
    "reason_phrase",
    "send_text",
]
