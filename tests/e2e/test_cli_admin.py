"""The maintenance commands wired into `spoold` (handlers are tested in test_publish)."""

from __future__ import annotations

import json
import subprocess
import sys

from testlib.distbuild import write_wheel  # noqa: E402

from spoold.inspection.inspect import inspect_file  # noqa: E402
from spoold.index import publish  # noqa: E402
from spoold.storage import open_storage  # noqa: E402


def spoold(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spoold", *args], capture_output=True, text=True)


def test_yank_unyank_remove_reindex_from_the_command_line(tmp_path):
    root = tmp_path / "storage"
    storage = open_storage(str(root))
    for version in ("1.0", "2.0"):
        wheel = write_wheel(tmp_path, "demo", version)
        publish(storage, inspect_file(wheel, wheel.name), wheel)
    page = root / "simple" / "demo" / "index.v1.json"

    def files() -> dict[str, object]:
        return {f["filename"]: f["yanked"] for f in json.loads(page.read_text())["files"]}

    result = spoold("yank", "--storage", str(root), "--reason", "broken <build>", "demo", "1.0")
    assert result.returncode == 0, result.stderr
    assert files()["demo-1.0-py3-none-any.whl"] == "broken <build>"
    assert "data-yanked=\"broken &lt;build&gt;\"" in (root / "simple/demo/index.html").read_text()

    assert spoold("unyank", "--storage", str(root), "demo", "1.0").returncode == 0
    assert files()["demo-1.0-py3-none-any.whl"] is False

    page.unlink()
    (root / "simple/demo/index.html").unlink()
    assert spoold("reindex", "--storage", str(root)).returncode == 0
    assert set(files()) == {"demo-1.0-py3-none-any.whl", "demo-2.0-py3-none-any.whl"}

    assert spoold("remove", "--storage", str(root), "demo", "demo-2.0-py3-none-any.whl").returncode == 0
    assert set(files()) == {"demo-1.0-py3-none-any.whl"}


def test_admin_mistakes_are_one_line_errors(tmp_path):
    root = tmp_path / "storage"
    # A storage that is not there is a configuration error, never "no published files".
    for command in (["yank", "nothing", "1.0"], ["unyank", "nothing", "1.0"],
                    ["remove", "nothing", "x-1.0.tar.gz"], ["reindex"]):
        result = spoold(command[0], "--storage", str(root), *command[1:])
        assert result.returncode == 78 and "Traceback" not in result.stderr
        assert "does not exist" in result.stderr and result.stderr.count("\n") == 1
    assert not root.exists(), "a maintenance command created the storage directory"
    (tmp_path / "a-file").write_text("")
    result = spoold("reindex", "--storage", str(tmp_path / "a-file"))
    assert result.returncode == 78 and "not a directory" in result.stderr
    result = spoold("remove", "--storage", "s3x://bucket", "demo", "x.whl")
    assert result.returncode == 78 and "unsupported scheme" in result.stderr
    assert result.stderr.count("\n") == 1
