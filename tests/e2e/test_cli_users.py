"""`spoold user add` as an operator runs it: a folder that does not exist yet, Ctrl-D."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from spoold.access.htpasswd import Htpasswd


def user_add(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    # A session of its own: no controlling terminal, so getpass reads stdin (as at a
    # prompt where the operator pressed Ctrl-D) instead of waiting on the test's tty.
    return subprocess.run(
        [sys.executable, "-m", "spoold", "user", "add", *args],
        input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True, text=True, start_new_session=True, timeout=60,
        env={**os.environ, "SPOOLD_CONFIG": ""})


def test_user_add_creates_the_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "spoold" / "htpasswd"
    result = user_add("alice", "--htpasswd", str(path), "--password-stdin", stdin="correct horse\n")
    assert result.returncode == 0, result.stderr
    assert f"added alice in {path}" in result.stdout
    assert stat.S_IMODE(os.stat(path.parent).st_mode) & 0o077 == 0
    assert Htpasswd(path).verify("alice", "correct horse")


def test_ctrl_d_at_the_password_prompt_is_one_line_and_status_1(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    result = user_add("alice", "--htpasswd", str(path))  # stdin at its end: what Ctrl-D gives
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1:] == ["spoold user: error: no password given (the input ended); nothing was changed"]
    assert not path.exists()
