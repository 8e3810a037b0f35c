"""What `spoold import` finds in its sources, and the upload time it believes."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from spoold.cli.import_sources import SourceError, candidates


def touch(path: Path, when: int = 1_600_000_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, (when, when))
    return path


def test_a_tree_offers_every_visible_regular_file_with_its_mtime(tmp_path: Path) -> None:
    touch(tmp_path / "a-1.0.tar.gz")
    touch(tmp_path / "b" / "b-1.0-py3-none-any.whl", 1_500_000_000)
    touch(tmp_path / ".hidden" / "c-1.0.tar.gz")
    touch(tmp_path / ".d-1.0.tar.gz")
    (tmp_path / "link-1.0.tar.gz").symlink_to(tmp_path / "a-1.0.tar.gz")
    found = list(candidates(tmp_path))
    assert [(c.filename, c.upload_time.timestamp(), c.origin) for c in found] == [
        ("a-1.0.tar.gz", 1_600_000_000, "directory"), ("b-1.0-py3-none-any.whl", 1_500_000_000, "directory")]


def test_a_devpi_export_names_its_files_and_their_upload_times(tmp_path: Path) -> None:
    touch(tmp_path / "u" / "i" / "x" / "1" / "x-1.tar.gz")
    touch(tmp_path / "u" / "i" / "x" / "2" / "x-2.tar.gz")
    touch(tmp_path / "u" / "i" / "x" / "3" / "x-3.tar.gz")
    touch(tmp_path / "outside.tar.gz")
    files = [
        {"type": "releasefile", "relpath": "u/i/x/1/x-1.tar.gz",
         "log": [{"what": "overwrite"}, {"what": "upload", "when": [2019, 1, 2, 3, 4, 5]}]},
        {"type": "releasefile", "relpath": "u/i/x/2/x-2.tar.gz",
         "entrymapping": {"last_modified": "Wed, 02 Jan 2019 03:04:05 GMT"}},
        {"type": "releasefile", "relpath": "u/i/x/3/x-3.tar.gz", "log": [{"what": "upload", "when": "bad"}]},
        {"type": "releasefile", "relpath": "../outside.tar.gz"},
        {"type": "releasefile", "relpath": "u/i/x/4/missing.tar.gz"},
        {"type": "doczip", "relpath": "u/i/x.zip"},
    ]
    (tmp_path / "dataindex.json").write_text(json.dumps({"indexes": {"u/i": {"files": files}}}))
    found = {c.filename: c.upload_time for c in candidates(tmp_path)}
    assert found == {
        "x-1.tar.gz": datetime(2019, 1, 2, 3, 4, 5, tzinfo=UTC),
        "x-2.tar.gz": datetime(2019, 1, 2, 3, 4, 5, tzinfo=UTC),
        "x-3.tar.gz": datetime.fromtimestamp(1_600_000_000, UTC),  # no usable record: the mtime
    }


def test_sources_that_are_not_what_they_claim(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        list(candidates(tmp_path / "nope"))
    (tmp_path / "dataindex.json").write_text("{not json")
    with pytest.raises(SourceError, match="not a devpi export"):
        list(candidates(tmp_path))
    assert [c.filename for c in candidates(touch(tmp_path / "one-1.0.tar.gz"))] == ["one-1.0.tar.gz"]
