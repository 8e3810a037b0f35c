"""meta.json and reason records: one schema each, hostile files refused, old files read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from spoold.spool import ItemMeta, Reason, Spool
from spoold.spool.records import MAX_RECORD, read_record, write_record


def test_item_meta_round_trips_and_omits_what_is_unknown() -> None:
    meta = ItemMeta(via="upload", uploader="alice", sha256_digest="ab" * 32)
    assert meta.to_json() == {"via": "upload", "uploader": "alice", "sha256_digest": "ab" * 32}
    assert ItemMeta.from_json(meta.to_json()) == meta
    assert ItemMeta.from_json({}) == ItemMeta()


def test_item_meta_ignores_unknown_keys_and_refuses_wrong_types() -> None:
    assert ItemMeta.from_json({"uploader": "bob", "future": [1]}) == ItemMeta(uploader="bob")
    with pytest.raises(ValueError, match="uploader must be a string"):
        ItemMeta.from_json({"uploader": 5})
    with pytest.raises(ValueError, match="not a JSON object"):
        ItemMeta.from_json(["uploader"])


def test_declared_digests_are_the_upload_fields() -> None:
    meta = ItemMeta(md5_digest="cd" * 16, sha256_digest="ab" * 32, uploader="x")
    assert meta.declared == {"sha256_digest": "ab" * 32, "md5_digest": "cd" * 16}


def test_reason_round_trips() -> None:
    reason = Reason("1.2_3,x-1.0.tar.gz", "x-1.0.tar.gz", "file-exists", "File already exists",
                    time=1.5, attempts=2, http_status=409, meta=ItemMeta(uploader="al"))
    assert Reason.from_json(json.loads(json.dumps(reason.to_json()))) == reason


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({}, ("unknown", "no reason was recorded", None, 400)),
        ({"code": "x", "error": "y", "time": "soon", "http_status": 200}, ("x", "y", None, 400)),
        ({"code": "x", "error": "y", "time": 7, "http_status": 409, "meta": {"uploader": 1}},
         ("x", "y", 7.0, 409)),
    ],
)
def test_reasons_written_by_hand_or_by_older_versions_are_read(doc: dict, expected: tuple) -> None:
    reason = Reason.from_json(doc, item="i", filename="f")
    assert (reason.code, reason.error, reason.time, reason.http_status) == expected
    assert reason.meta == ItemMeta() and reason.filename == "f"


def test_read_record_refuses_what_is_not_a_small_regular_file(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"a": 1}')
    assert read_record(good) == {"a": 1}
    link = tmp_path / "link.json"
    link.symlink_to(good)
    with pytest.raises(ValueError, match="symbolic link"):
        read_record(link)  # O_NOFOLLOW: a link is never followed
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        read_record(fifo)  # O_NONBLOCK: opening a FIFO with no writer does not hang
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_RECORD + 1))
    with pytest.raises(ValueError, match="larger than"):
        read_record(big)
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError):
        read_record(bad)


def test_write_record_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    write_record(target, {"code": "x"}, tmp=tmp_path / ".r.json.tmp")
    assert json.loads(target.read_text()) == {"code": "x"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_a_meta_json_of_the_wrong_shape_fails_the_item(spool: Spool) -> None:
    item = spool.deliver_bytes(b"x", "foo-1.0.tar.gz", ItemMeta(uploader="a"))
    (spool.new / item / "meta.json").write_text('{"uploader": ["not", "a", "name"]}')
    assert spool.claim(item) is None
    (failure,) = spool.status().failures
    assert failure.code == "invalid-item" and "uploader must be a string" in failure.error
