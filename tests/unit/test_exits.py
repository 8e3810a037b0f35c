"""One exit-status scheme for every command, and one-line errors."""

from __future__ import annotations

import io

import pytest

from spoold.cli.exits import ExitStatus, run
from spoold.errors import ConfigError, Rejected, SpooldError
from spoold.storage import StorageUnavailable


def fails_with(exc: BaseException):  # type: ignore[no-untyped-def]
    def action() -> int:
        raise exc

    return action


@pytest.mark.parametrize(
    ("exc", "status", "text"),
    [
        (ConfigError("no spool at /x"), 78, "spoold demo: error: no spool at /x\n"),
        (StorageUnavailable("bucket down"), 75,
         "spoold demo: error: bucket down (nothing was lost; run it again)\n"),
        (Rejected("bad file"), 1, "spoold demo: error: bad file\n"),
        (SpooldError("two\nlines"), 1, "spoold demo: error: two lines\n"),
        (PermissionError(13, "Permission denied", "/etc/x"), 1,
         "spoold demo: error: /etc/x: Permission denied\n"),
        (ZeroDivisionError("x"), 70, "spoold demo: error: internal error (ZeroDivisionError: x); "
         "this is a bug in spoold, please report it\n"),
    ],
)
def test_errors_end_in_one_line_and_their_status(exc: BaseException, status: int, text: str) -> None:
    err = io.StringIO()
    assert run("demo", fails_with(exc), err) == status
    assert err.getvalue() == text


def test_success_and_interruption() -> None:
    assert run("demo", lambda: ExitStatus.OK) == 0
    assert run("demo", fails_with(KeyboardInterrupt())) == 130


def test_the_numbers_are_the_documented_ones() -> None:
    assert {s.name: int(s) for s in ExitStatus} == {
        "OK": 0, "FAILED": 1, "USAGE": 2, "SOFTWARE": 70, "TEMPFAIL": 75, "CONFIG": 78,
        "INTERRUPTED": 130,
    }
