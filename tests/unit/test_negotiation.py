"""PEP 691 content negotiation: what each client's Accept header gets."""

from __future__ import annotations

import pytest

from spoold.http.negotiation import (
    HTML_V1,
    JSON_V1,
    Choice,
    Format,
    NotAcceptable,
    choose,
    parse_accept,
)

HTML = Choice(Format.HTML, "text/html; charset=utf-8")
HTML1 = Choice(Format.HTML, HTML_V1)
JSON1 = Choice(Format.JSON, JSON_V1)

# What real clients send.
PIP = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
UV = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, HTML),
        ("", HTML),
        ("   ", HTML),
        (PIP, JSON1),
        (UV, JSON1),
        (BROWSER, HTML),
        ("*/*", HTML),
        ("text/html", HTML),
        ("text/*", HTML),
        (JSON_V1, JSON1),
        (HTML_V1, HTML1),
        ("application/*", HTML1),
        # latest is an alias; the answer names the concrete version
        ("application/vnd.pypi.simple.latest+json", JSON1),
        ("application/vnd.pypi.simple.latest+html", HTML1),
        # q-values decide, whatever the order
        (f"text/html;q=0.5, {JSON_V1};q=0.9", JSON1),
        (f"{JSON_V1};q=0.2, text/html", HTML),
        # a more specific range overrides a wildcard (RFC 9110 12.5.1)
        ("text/html;q=0, */*", HTML1),
        (f"{JSON_V1};q=0, text/html;q=0, */*", HTML1),
        # equal q: the more specific range wins over */*
        (f"*/*, {JSON_V1}", JSON1),
        # case-insensitive types, odd whitespace, parameters ignored
        ("APPLICATION/VND.PYPI.SIMPLE.V1+JSON", JSON1),
        (f"  {JSON_V1} ;  q=1.0 ", JSON1),
        ("text/html; charset=utf-8; level=1", HTML),
        # malformed elements are skipped, the rest still counts
        (f"garbage, {JSON_V1}", JSON1),
        (f"text/html;q=2, {JSON_V1};q=0.5", JSON1),
        (f"text/html;q=abc, {JSON_V1};q=0.5", JSON1),
        (f"*/html, {JSON_V1};q=0.5", JSON1),
    ],
)
def test_accept(accept: str | None, expected: Choice) -> None:
    assert choose(accept) == expected


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "application/vnd.pypi.simple.v2+json",
        "image/png",
        f"{JSON_V1};q=0, text/html;q=0, {HTML_V1};q=0",
        "*/*;q=0",
        "garbage",
        ";;;,,,",
    ],
)
def test_not_acceptable(accept: str) -> None:
    result = choose(accept)
    assert isinstance(result, NotAcceptable)
    assert JSON_V1 in result.message and "text/html" in result.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (JSON_V1, JSON1),
        (HTML_V1, HTML1),
        ("text/html", HTML),
        ("application/vnd.pypi.simple.latest+json", JSON1),
        # a browser's query decoder turns an unescaped + into a space
        ("application/vnd.pypi.simple.v1 json", JSON1),
    ],
)
def test_format_parameter_wins_over_accept(value: str, expected: Choice) -> None:
    assert choose("text/html", value) == expected
    assert choose(PIP, value) == expected


@pytest.mark.parametrize("value", ["json", "", "*/*", f"{JSON_V1}, text/html", "application/json"])
def test_format_parameter_must_name_one_served_type(value: str) -> None:
    assert isinstance(choose(JSON_V1, value), NotAcceptable)


def test_hostile_headers_are_bounded() -> None:
    # Only the first 4 KiB of a header is read: padding pushes the real type out of it.
    assert isinstance(choose(", " * 100_000 + JSON_V1), NotAcceptable)
    assert len(parse_accept(",".join(["text/html"] * 1000))) == 64
    message = choose("x/<script>" * 1000)
    assert isinstance(message, NotAcceptable) and len(message.message) < 600


def test_parse_accept_q_values() -> None:
    ranges = parse_accept("a/b;q=0.5, c/*;q=0, */*;Q=1.000, d/e;q=0.1234, f/g;q=1.5")
    assert [(r.type, r.subtype, r.q) for r in ranges] == [
        ("a", "b", 0.5),
        ("c", "*", 0.0),
        ("*", "*", 1.0),
    ]
