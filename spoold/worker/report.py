"""The worker's log line for each handled item."""

from __future__ import annotations

import time

from twisted.logger import Logger

from spoold.spool.outcome import Result
from spoold.worker.processing import Handled

__all__ = ["log_handled"]

log = Logger(namespace="spoold.worker.service")


def log_handled(handled: Handled) -> None:
    ms = handled.seconds * 1000
    outcome = handled.outcome
    filename = handled.claim.filename
    if outcome is None:
        wait = (handled.retry_at or time.time()) - time.time()
        log.warn("deferred {filename} in {ms:.1f} ms: {reason} (retry in {wait:.0f} s)",
                 filename=filename, ms=ms, reason=handled.deferred_reason, wait=max(wait, 0))
    elif outcome.result is Result.ERROR:
        log.error("internal error on {filename} (kept in cur/, retried after a restart):\n{tb}",
                  filename=filename, tb=handled.traceback)
    elif outcome.result is Result.REJECTED:
        log.warn("rejected {filename} in {ms:.1f} ms: [{code}] {message}",
                 filename=filename, ms=ms, code=outcome.code, message=outcome.message)
    else:
        log.info("{result} {filename} project={project} version={version} in {ms:.1f} ms",
                 result=outcome.result.value, filename=filename, project=outcome.project,
                 version=outcome.version, ms=ms)
