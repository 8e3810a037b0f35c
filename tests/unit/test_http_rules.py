"""The pure HTTP rules: conditional requests, ranges, paths, request lines, reason phrases."""

from __future__ import annotations

import pytest

from spoold.http.conditional import etag_matches, parse_range, range_applies
from spoold.http.headers import RequestLine, parse_request_line, reason_phrase
from spoold.http.paths import (
    NotFound,
    Redirect,
    ServePage,
    decode_segments,
    is_project_name,
    package_file_key,
    simple_route,
)

# -- If-None-Match and Range ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "matches"),
    [(None, False), (b'"a"', True), (b'W/"a"', True), (b'"b", "a"', True), (b" * ", True),
     (b'"b"', False), (b"", False), (b",,", False), (b'"a-longer"', False)],
)
def test_etag_matches_weakly(header: bytes | None, matches: bool) -> None:
    assert etag_matches(header, '"a"') is matches
    assert etag_matches(header, 'W/"a"') is matches  # weak comparison both ways


def test_parse_range() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-0", 10) == (0, 1)
    assert parse_range("bytes=5-2", 10) is None
    assert parse_range("bytes=-0", 10) is False
    assert parse_range("bytes=-20", 10) == (0, 10)
    assert parse_range("items=0-1", 10) is None
    assert parse_range("bytes=-", 10) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [("bytes=2-", (2, 8)), (" bytes=3-4 ", (3, 2)), ("bytes=9-100", (9, 1)), ("bytes=10-", False),
     ("bytes=-3", (7, 3)), ("bytes=0-1,4-5", None), ("bytes=a-b", None)],
)
def test_parse_range_forms(header: str, expected: object) -> None:
    assert parse_range(header, 10) == expected


BIG = "9" * 5000  # past Python's 4300-digit limit for int()


@pytest.mark.parametrize(
    ("header", "expected"),
    [(f"bytes={BIG}-", False), (f"bytes={BIG}-{BIG}", False), (f"bytes=2-{BIG}", (2, 8)),
     (f"bytes=-{BIG}", (0, 10)), ("bytes=" + "0" * 5000 + "3-4", (3, 2)),
     ("bytes=99999999999999999999-", False), ("bytes=0-99999999999999999999", (0, 10)),
     ("bytes=-999999999999999999999", (0, 10))],
)
def test_range_numbers_of_any_length_are_read_as_rfc_9110_says(header: str, expected: object) -> None:
    """Positions past the end, however many digits: unsatisfiable as a first position,
    "to the end" as a last one, the whole file as a suffix; never a ValueError."""
    assert parse_range(header, 10) == expected


def test_range_applies_only_while_if_range_names_the_current_etag() -> None:
    assert range_applies(None, '"a"')
    assert range_applies(b' "a" ', '"a"')
    for stale in (b'"b"', b'W/"a"', b"Tue, 01 Jan 2030 00:00:00 GMT", b""):
        assert not range_applies(stale, '"a"'), stale


# -- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "valid"),
    [("demo", True), ("Foo_Bar.baz-2", True), ("a", True), ("a" * 200, True), ("a" * 201, False),
     ("-bad", False), ("bad-", False), ("", False), ("<script>", False), ("dèmo", False)],
)
def test_is_project_name(name: str, valid: bool) -> None:
    assert is_project_name(name) is valid


def test_decode_segments() -> None:
    assert decode_segments([b"foo-bar", b"", "naïve".encode()]) == ["foo-bar", "", "naïve"]
    assert decode_segments([]) == []
    for bad in (b"a/b", b"a\\b", b"a\x00", b"a\x1f", b"a\x7f", b"\xff"):
        assert decode_segments([b"ok", bad]) is None, bad


def _postpath(rest: str) -> list[bytes]:
    """Twisted's ``postpath`` for what follows ``/simple`` or ``/packages`` in a URL:
    split on ``/``, then each segment percent-decoded."""
    from urllib.parse import unquote_to_bytes

    return [unquote_to_bytes(p) for p in rest.split("/")[1:]]


@pytest.mark.parametrize(
    ("rest", "route"),
    [("", Redirect("simple/")), ("/", ServePage(None)), ("/foo-bar/", ServePage("foo-bar")),
     ("/foo-bar", Redirect("foo-bar/")), ("/Foo_Bar/", Redirect("../foo-bar/")),
     ("/Foo__Bar", Redirect("foo-bar/")), ("/foo-bar/index.html", NotFound()), ("/a/b/", NotFound()),
     ("/a%2Fb/", NotFound()), ("/%FF/", NotFound()),
     ("/-bad-/", NotFound("No project named '-bad-': not a valid project name")),
     ("/%3Cx%3E/", NotFound("No project named '<x>': not a valid project name"))],
)
def test_simple_route(rest: str, route: object) -> None:
    assert simple_route(_postpath(rest)) == route


def test_simple_route_bounds_the_name_in_its_message() -> None:
    route = simple_route([b"<" * 500, b""])
    assert isinstance(route, NotFound) and len(route.message) < 260


@pytest.mark.parametrize(
    ("rest", "key"),
    [("/foo-bar/foo_bar-1.0-py3-none-any.whl", "packages/foo-bar/foo_bar-1.0-py3-none-any.whl"),
     ("/foo-bar/foo_bar-1.0-py3-none-any.whl.metadata", "packages/foo-bar/foo_bar-1.0-py3-none-any.whl.metadata"),
     ("/Foo_Bar/foo_bar-1.0-py3-none-any.whl", None), ("/foo-bar/..%2F..%2Fetc%2Fpasswd", None),
     ("/foo-bar/%2E%2E", None), ("/foo-bar/.hidden", None), ("/foo-bar/a/b", None), ("/foo-bar/", None),
     ("/foo-bar", None), ("/", None), ("", None), ("/foo-bar/%FF.whl", None), ("/foo-bar/x%00.whl", None),
     ("/foo-bar/x%5Cy.whl", None), ("/foo-bar/" + "a" * 256, None), ("/-x-/a.whl", None)],
)
def test_package_file_key(rest: str, key: str | None) -> None:
    assert package_file_key(_postpath(rest)) == key


# -- the request line and the reason phrase ----------------------------------------------------


def test_parse_request_line() -> None:
    line = parse_request_line(b"POST /legacy/?x=1&y=2 HTTP/1.1")
    assert line == RequestLine(b"POST", b"/legacy/?x=1&y=2", b"HTTP/1.1")
    assert line.path == b"/legacy/"
    assert parse_request_line(b"GET / HTTP/1.0") == RequestLine(b"GET", b"/", b"HTTP/1.0")
    for bad in (b"", b"GET /", b"GET  / HTTP/1.1", b"NOT HTTP AT ALL", b"GET / HTTP/1.1 "):
        assert parse_request_line(bad) is None, bad


def test_reason_phrase_is_one_bounded_line_of_ascii() -> None:
    assert reason_phrase("File already exists: demo-1.0.whl") == b"File already exists: demo-1.0.whl"
    assert reason_phrase("bad\r\nSet-Cookie: x=1\tünïcode") == b"bad Set-Cookie: x=1 n code"
    assert reason_phrase("  \r\n ") == b"Error"
    long = reason_phrase("x" * 1000, limit=50)
    assert len(long) == 50 and long.endswith(b"...")
