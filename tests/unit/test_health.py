"""The /health report: one schema, derived flags, and the exact JSON body."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from spoold import __version__
from spoold.http.health import Bugs, HealthReport, StorageHealth, health_report
from spoold.storage import StorageUnavailable

COUNTS = {"incoming": 0, "tmp": 1, "new": 2, "cur": 0, "deferred": 0, "done": 5, "failed": 0}


class Spool:
    def __init__(self, counts: Mapping[str, int] = COUNTS) -> None:
        self._counts = dict(counts)

    def counts(self) -> dict[str, int]:
        return dict(self._counts)


def test_the_json_body_is_exactly_what_health_always_answered() -> None:
    report = HealthReport(COUNTS, version="1.2.3")
    assert report.as_json() == (
        '{"bugs": {"count": 0, "last": null}, "ok": true, "queues": {"cur": 0, "deferred": 0, "done": 5, "failed": 0, '
        '"incoming": 0, "new": 2, "tmp": 1}, "storage": {"error": null, "reachable": true}, '
        '"version": "1.2.3"}\n'
    )
    down = HealthReport({"new": 1}, StorageHealth("bucket gone"), version="1.2.3")
    assert down.as_json() == (
        '{"bugs": {"count": 0, "last": null}, "ok": false, "queues": {"new": 1}, "storage": {"error": "bucket gone", '
        '"reachable": false}, "version": "1.2.3"}\n'
    )


def test_ok_and_reachable_follow_the_storage_error() -> None:
    assert StorageHealth().reachable and not StorageHealth("timed out").reachable
    assert HealthReport({}).ok
    assert not HealthReport({}, StorageHealth("timed out")).ok
    assert HealthReport({}).version == __version__


def test_the_report_is_a_value() -> None:
    counts = dict(COUNTS)
    report = HealthReport(counts)
    counts["new"] = 99
    assert report.queues["new"] == 2  # a copy, not a view of the caller's dict
    with pytest.raises(TypeError):
        report.queues["new"] = 3  # type: ignore[index]
    assert report == HealthReport(COUNTS)


def test_health_report_measures_queues_and_storage() -> None:
    report = health_report(Spool(), lambda: None)
    assert report == HealthReport(COUNTS)


class _Silent(Exception):
    def __str__(self) -> str:
        return ""


class _SilentUnavailable(StorageUnavailable):
    def __str__(self) -> str:
        return ""


@pytest.mark.parametrize(
    ("error", "message"),
    [(StorageUnavailable("cannot reach bucket pypi: timed out"), "cannot reach bucket pypi: timed out"),
     (_SilentUnavailable("x"), "_SilentUnavailable"), (TimeoutError(), "TimeoutError")],
)
def test_a_storage_failure_is_unreachable_with_a_message(error: Exception, message: str) -> None:
    def ping() -> None:
        raise error

    report = health_report(Spool(), ping)
    assert not report.ok
    assert report.storage == StorageHealth(message)
    assert report.queues == COUNTS


def test_a_bug_in_the_check_is_a_bug_not_an_unreachable_storage() -> None:
    def ping() -> None:
        raise KeyError("region")

    report = health_report(Spool(), ping)
    assert report.storage.reachable and not report.ok
    assert report.bugs == Bugs(1, "the storage check failed with KeyError: 'region'")


def test_the_workers_bugs_are_reported() -> None:
    report = health_report(Spool(), lambda: None, Bugs(2, "demo-1.0.tar.gz: TypeError: x"))
    assert not report.ok and report.storage.reachable
    assert '"bugs": {"count": 2, "last": "demo-1.0.tar.gz: TypeError: x"}' in report.as_json()
