from __future__ import annotations

import itertools

import pytest

from spoold.spool import names

from spoold.errors import InvalidFilename
from spoold.spool.names import (
    MAX_FILENAME_LENGTH,
    ItemName,
    Owner,
    check_filename,
    display,
    host_tag,
    is_hidden_or_partial,
    new_uid,
    placeholder_filename,
)


def test_uids_are_unique_within_a_process():
    assert len({new_uid() for _ in range(10_000)}) == 10_000


def test_item_name_round_trip_keeps_filename_and_info():
    name = ItemName(
        "foo-1.0-py3-none-any.whl", uid=new_uid(), attempts=2, defers=3, due=1_800_000_123,
        owner=Owner("build-01", 4242, 99),
    )
    parsed = ItemName.parse(str(name))
    assert parsed == name
    assert parsed.filename == "foo-1.0-py3-none-any.whl"


@pytest.mark.parametrize("filename", ["a,b-1.0.tar.gz", "x;a=1,y-1.0.zip", "1.2.3,foo.whl"])
def test_filename_with_separators_survives(filename):
    name = ItemName(filename).with_uid(new_uid())
    assert ItemName.parse(str(name)).filename == filename


def test_plain_names_parse_as_filename_only():
    assert ItemName.parse("foo-1.0.tar.gz") == ItemName("foo-1.0.tar.gz")
    assert str(ItemName("foo-1.0.tar.gz")) == "foo-1.0.tar.gz"


def test_longest_name_fits_in_255_bytes(monkeypatch):
    # Realistic maxima: seconds until the year 2286, Linux's largest pid, a process
    # started 300 years after boot (ticks at 100 Hz), a 32-bit per-process counter.
    monkeypatch.setattr(names, "_counter", itertools.count(2**32 - 1))
    uid = new_uid(now=9_999_999_999.999999, pid=4_194_304, host="h" * 40)
    owner = Owner(host_tag("x" * 40), 4_194_304, 10**12 - 1)
    name = ItemName("f" * MAX_FILENAME_LENGTH, uid=uid, attempts=99, defers=999, owner=owner)
    deferred = ItemName("f" * MAX_FILENAME_LENGTH, uid=uid, attempts=99, defers=999, due=10**11)
    assert len(str(name).encode()) <= 255
    assert len(str(deferred).encode()) <= 255
    assert ItemName.parse(str(name)) == name


@pytest.mark.parametrize(
    ("filename", "why"),
    [
        ("", "empty"),
        ("../x-1.0.tar.gz", "path separator"),
        ("a/b-1.0.tar.gz", "path separator"),
        ("a\\b-1.0.tar.gz", "path separator"),
        ("x\x00-1.0.tar.gz", "NUL"),
        ("x\n-1.0.tar.gz", "control"),
        (".hidden-1.0.tar.gz", "dot"),
        ("..", "dot"),
        ("a" * (MAX_FILENAME_LENGTH + 1), "at most"),
        ("caf\udce9-1.0.tar.gz", "non-ASCII"),
        ("caf\u00e9-1.0.tar.gz", "non-ASCII"),
        ("a b-1.0.tar.gz", "whitespace"),
        ("a..b-1.0.tar.gz", "'..'"),
    ],
)
def test_unsafe_filenames_are_refused_with_the_reason(filename, why):
    with pytest.raises(InvalidFilename, match=why):
        check_filename(filename)


def test_hidden_and_partial_names():
    for name in [".foo.whl.Ab12Cd", "foo.whl.part", "foo.whl.filepart", "foo.whl~", ".x"]:
        assert is_hidden_or_partial(name)
    assert not is_hidden_or_partial("foo-1.0-py3-none-any.whl")


def test_display_and_placeholder_handle_undecodable_names():
    raw = b"caf\xe9/../x".decode("utf-8", "surrogateescape")
    assert display(raw) == "caf\\xe9/../x"
    placeholder = placeholder_filename(raw)
    check_filename(placeholder)
    assert "/" not in placeholder
