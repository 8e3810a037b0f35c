"""The upload form policy without HTTP: which forms are taken, and what reaches the spool."""

from __future__ import annotations

import hashlib
import io
import json
import os

import pytest
from requests_toolbelt import MultipartEncoder

from spoold.errors import Rejected
from spoold.http.upload_form import UPLOAD_FIELDS, UploadRefused, check_form, receive_upload
from spoold.inspection.digests import DECLARED_FIELDS
from spoold.spool.records import ItemMeta
from spoold.inspection.filenames import parse_filename
from spoold.spool.queue import META, PAYLOAD, Spool
from spoold.testing.dists import build_wheel

FILENAME, DATA, _ = build_wheel("demo", "1.0")
PARSED = parse_filename(FILENAME)
GOOD = {
    ":action": "file_upload", "protocol_version": "1", "name": "Demo", "version": "1.0",
    "filetype": "bdist_wheel", "sha256_digest": hashlib.sha256(DATA).hexdigest(),
}


def test_a_twine_form_is_accepted() -> None:
    check_form(GOOD, PARSED)
    check_form({**GOOD, "version": "1.0.0"}, PARSED)  # the same version, spelled differently
    check_form({k: v for k, v in GOOD.items() if k != "protocol_version"}, PARSED)


@pytest.mark.parametrize(
    ("change", "message"),
    [({":action": None}, "no ':action' field"),
     ({":action": "submit"}, "only supports ':action' = 'file_upload'"),
     ({"protocol_version": "2"}, "protocol_version 1, not '2'"),
     ({"filetype": None}, "'filetype' field must be 'sdist' or 'bdist_wheel' and is missing"),
     ({"filetype": "bdist_egg"}, "not 'bdist_egg'"),
     ({"filetype": "sdist"}, "says sdist but demo-1.0-py3-none-any.whl is a wheel"),
     ({"name": None}, "no 'name' field"),
     ({"name": "other"}, "names the project 'other'"),
     ({"version": None}, "no 'version' field"),
     ({"version": "two"}, "'two' is not a valid version"),
     ({"version": "9" * 5000}, "is not a valid version"),  # more digits than int() takes
     ({"version": "2.0"}, "says version '2.0'"),
     ({"sha256_digest": "  "}, "has no digest")],
)
def test_forms_spoold_refuses(change: dict[str, str | None], message: str) -> None:
    fields = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(UploadRefused, match=message) as info:
        check_form(fields, PARSED)  # type: ignore[arg-type]
    assert info.value.code == "bad-upload" and info.value.http_status == 400


def test_upload_fields_are_what_the_policy_reads() -> None:
    assert set(GOOD) <= UPLOAD_FIELDS and set(DECLARED_FIELDS) <= UPLOAD_FIELDS
    assert "description" not in UPLOAD_FIELDS


def _body(fields: list[tuple[str, object]]) -> tuple[io.BytesIO, str]:
    encoder = MultipartEncoder(fields)
    return io.BytesIO(encoder.to_string()), encoder.content_type


def _listing(spool: Spool) -> tuple[list[str], list[str]]:
    return sorted(os.listdir(spool.new)), sorted(os.listdir(spool.tmp))


@pytest.mark.parametrize("content_first", [False, True])
def test_receive_upload_delivers_into_new(spool: Spool, content_first: bool) -> None:
    content = ("content", (FILENAME, io.BytesIO(DATA), "application/octet-stream"))
    fields = [*GOOD.items(), ("description", "skipped")]
    body, content_type = _body([content, *fields] if content_first else [*fields, content])
    received = receive_upload(body, content_type, spool, ItemMeta(uploader="alice"))
    assert (received.filename, received.project, received.version) == (FILENAME, "demo", "1.0")
    assert received.size == len(DATA) and received.sha256 == hashlib.sha256(DATA).hexdigest()
    new, tmp = _listing(spool)
    assert new == [received.item] and tmp == []  # staged or not, nothing is left in tmp/
    assert (spool.new / received.item / PAYLOAD).read_bytes() == DATA
    meta = json.loads((spool.new / received.item / META).read_text())
    assert meta == {"sha256_digest": GOOD["sha256_digest"], "uploader": "alice", "name": "Demo",
                    "version": "1.0", "filetype": "bdist_wheel", "via": "upload"}


@pytest.mark.parametrize(
    ("fields", "data", "message"),
    [([*GOOD.items()], None, "no 'content' file part"),
     ([*{**GOOD, "sha256_digest": hashlib.sha256(b"").hexdigest()}.items()], b"", "is empty"),
     ([*{**GOOD, "sha256_digest": "0" * 64}.items()], DATA, "does not match"),
     ([*{**GOOD, "name": "other"}.items()], DATA, "names the project 'other'")],
)
def test_receive_upload_leaves_nothing_behind_when_refused(
    spool: Spool, fields: list[tuple[str, str]], data: bytes | None, message: str
) -> None:
    parts: list[tuple[str, object]] = list(fields)
    if data is not None:
        parts.append(("content", (FILENAME, io.BytesIO(data), "application/octet-stream")))
    body, content_type = _body(parts)
    with pytest.raises(Rejected, match=message):
        receive_upload(body, content_type, spool, ItemMeta(uploader="alice"))
    assert _listing(spool) == ([], [])
