"""Prometheus metrics of one spoold process, in a registry of its own.

A dedicated :class:`~prometheus_client.CollectorRegistry` (not the global one) so that
tests and several sites in one process never see each other's numbers, and so that
``/metrics`` shows spoold's series only. Label values are bounded sets (result names,
error codes, HTTP status codes, a fixed list of methods and folders): a hostile client
must not be able to create series.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from spoold.spool.folders import FOLDERS
from spoold.spool.outcome import Outcome

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")

#: Publishing takes from milliseconds (a small wheel, local storage) to minutes (a big
#: sdist behind a slow S3 outage): buckets across that range.
_PUBLISH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    """The collectors; the web layer and the worker record into the same instance."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.uploads = Counter(
            "spoold_uploads",
            "Items finished (published, unchanged, rejected), and uploads refused before "
            "they reached the spool (rejected).",
            ["result"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "spoold_rejections",
            "Rejected uploads and items, by reason code.",
            ["code"],
            registry=self.registry,
        )
        self.publish_seconds = Histogram(
            "spoold_publish_seconds",
            "Seconds a worker took to inspect and publish (or reject) an item.",
            buckets=_PUBLISH_BUCKETS,
            registry=self.registry,
        )
        self.upload_wait_seconds = Histogram(
            "spoold_upload_wait_seconds",
            "Seconds an upload waited for its outcome once its body was in the spool.",
            buckets=_PUBLISH_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "spoold_queue_depth",
            "Items in each spool folder, as of the last /metrics or /health request.",
            ["folder"],
            registry=self.registry,
        )
        self.requests = Counter(
            "spoold_http_requests",
            "HTTP requests answered, by method and status code.",
            ["method", "status"],
            registry=self.registry,
        )
        self.storage_up = Gauge(
            "spoold_storage_reachable",
            "1 if the last storage check succeeded, else 0.",
            registry=self.registry,
        )
        for result in ("published", "unchanged", "rejected"):
            self.uploads.labels(result=result)

    def record_outcome(self, outcome: Outcome, seconds: float | None = None) -> None:
        """Count a finished item (the worker calls this once per item it decides)."""
        self.uploads.labels(result=outcome.result.value).inc()
        if not outcome.ok:
            self.rejections.labels(code=_code(outcome.code)).inc()
        if seconds is not None and seconds >= 0:
            self.publish_seconds.observe(seconds)

    def record_rejection(self, code: str) -> None:
        """An upload refused before it reached the spool (bad form, digest, auth...);
        the worker never sees these, so they are counted here and only here."""
        self.uploads.labels(result="rejected").inc()
        self.rejections.labels(code=_code(code)).inc()

    def record_request(self, method: bytes | str | None, status: int) -> None:
        name = method.decode("ascii", "replace") if isinstance(method, bytes) else (method or "")
        name = name.upper() if name.upper() in _METHODS else "other"
        code = str(status) if 100 <= status <= 599 else "other"
        self.requests.labels(method=name, status=code).inc()

    def set_queue_depths(self, counts: Mapping[str, int]) -> None:
        for folder in FOLDERS:
            if folder in counts:
                self.queue_depth.labels(folder=folder).set(counts[folder])

    def render(self) -> bytes:
        """The Prometheus text exposition of everything in the registry."""
        return generate_latest(self.registry)


def _code(code: str) -> str:
    return code if _CODE.match(code or "") else "other"
