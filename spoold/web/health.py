"""``GET /health`` (JSON for load balancers and people) and ``GET /metrics`` (Prometheus).

The report itself, its schema and its JSON, is :mod:`spoold.http.health`. Both read the
spool's queue depths in a thread (a directory listing per folder); health
also checks the storage with its ``ping`` (a ``HEAD`` on the bucket for S3), also in a
thread. ``/health`` answers 200 whenever spoold itself runs, as the contract says, and
reports what is wrong in the body (``"ok": false``, the storage error): an index whose
storage is briefly down still takes uploads into the spool, so a load balancer should not
take it out of rotation for that.
"""

from __future__ import annotations

import json

from collections.abc import Callable

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET, Request

from spoold.access.authenticate import AuthResult
from spoold.http.health import Bugs, HealthReport, health_report
from spoold.metrics import CONTENT_TYPE, Metrics
from spoold.spool.queue import Spool
from spoold.threads import Run
from spoold.web.guard import Guard
from spoold.web.responses import LeafResource, finish_body, finish_text

__all__ = ["HealthResource", "MetricsResource"]

log = Logger()


class HealthResource(LeafResource):

    def __init__(self, spool: Spool, ping: Callable[[], None], run: Run, metrics: Metrics | None = None,
                 bugs: Callable[[], Bugs] = Bugs, guard: Guard | None = None) -> None:
        super().__init__()
        #: With private reads, the details (queues, errors, version) need read rights;
        #: ``{"ok": ...}`` is for anyone (load balancers).
        self.guard = guard
        self.spool = spool
        self.ping = ping
        self.run = run
        self.metrics = metrics
        #: The worker's count of items that hit a bug (read on the reactor thread).
        self.bugs = bugs

    def render_GET(self, request: Request) -> int:
        d = self.run(health_report, self.spool, self.ping, self.bugs())
        d.addCallbacks(self._report, self._failed, callbackArgs=(request,), errbackArgs=(request,))
        return NOT_DONE_YET

    def _report(self, report: HealthReport, request: Request) -> None:
        if self.metrics is not None:
            self.metrics.set_queue_depths(report.queues)
            self.metrics.storage_up.set(1 if report.storage.reachable else 0)
        if self.guard is None or self.guard.public:
            finish_body(request, report.as_json().encode(), "application/json")
            return
        request.setHeader(b"vary", b"Authorization")

        def answer(result: AuthResult) -> None:
            full = result.principal is not None and result.principal.authenticated
            body = report.as_json() if full else json.dumps({"ok": report.ok}) + "\n"
            finish_body(request, body.encode(), "application/json")

        self.guard.principal(request).addCallbacks(answer, self._failed, errbackArgs=(request,))

    def _failed(self, failure: Failure, request: Request) -> None:
        log.failure("health check failed", failure)
        finish_text(request, 500, f"The health check failed: {failure.getErrorMessage()}")


class MetricsResource(LeafResource):

    def __init__(self, spool: Spool, metrics: Metrics, run: Run) -> None:
        super().__init__()
        self.spool = spool
        self.metrics = metrics
        self.run = run

    def _collect(self) -> bytes:
        self.metrics.set_queue_depths(self.spool.counts())
        return self.metrics.render()

    def render_GET(self, request: Request) -> int:
        d = self.run(self._collect)
        d.addCallbacks(self._send, self._failed, callbackArgs=(request,), errbackArgs=(request,))
        return NOT_DONE_YET

    def _send(self, body: bytes, request: Request) -> None:
        finish_body(request, body, CONTENT_TYPE)

    def _failed(self, failure: Failure, request: Request) -> None:
        log.failure("collecting metrics failed", failure)
        finish_text(request, 500, f"Collecting metrics failed: {failure.getErrorMessage()}")
