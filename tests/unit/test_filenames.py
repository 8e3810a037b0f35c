"""parse_filename: what a name claims, and which names are refused (and why)."""

from __future__ import annotations

import pytest

from spoold.errors import InvalidFilename
from spoold.inspection.filenames import MAX_FILENAME_LENGTH, ParsedFilename, parse_filename


@pytest.mark.parametrize(
    ("name", "project", "version", "kind", "extension"),
    [
        ("demo-1.0-py3-none-any.whl", "demo", "1.0", "wheel", ".whl"),
        ("Demo_Pkg-2.0.post1-1-cp311-cp311-manylinux_2_17_x86_64.whl", "demo-pkg", "2.0.post1", "wheel", ".whl"),
        ("demo-1.0.tar.gz", "demo", "1.0", "sdist", ".tar.gz"),
        ("demo-1.0.zip", "demo", "1.0", "sdist", ".zip"),
        ("Old.Package-0.9b1.tar.gz", "old-package", "0.9b1", "sdist", ".tar.gz"),
        ("my-project-1.0.tar.gz", "my-project", "1.0", "sdist", ".tar.gz"),
        ("demo-1.0rc1.dev3.tar.gz", "demo", "1.0rc1.dev3", "sdist", ".tar.gz"),
        ("demo-01.00-py3-none-any.whl", "demo", "1.0", "wheel", ".whl"),
    ],
)
def test_accepted(name: str, project: str, version: str, kind: str, extension: str) -> None:
    assert parse_filename(name) == ParsedFilename(name, project, version, kind, extension)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "empty"),
        ("x/demo-1.0.tar.gz", "path separator"),
        ("x\\demo-1.0.tar.gz", "path separator"),
        ("demo-1.0.tar.gz\x00", "NUL"),
        (".demo-1.0.tar.gz", "starts with a dot"),
        ("d\u00e9mo-1.0.tar.gz", "non-ASCII"),
        ("demo-1.0\t.tar.gz", "control"),
        ("demo-1.0\x7f.tar.gz", "control"),
        ("demo-..1.0.tar.gz", "'..'"),
        ("d" * (MAX_FILENAME_LENGTH + 1) + "-1.0.tar.gz", "characters long"),
        ("demo-1.0.egg", "eggs are obsolete"),
        ("demo-1.0.tar.xz", ".tar.gz (PEP 625)"),
        ("demo-1.0.tar", "gzip-compressed"),
        ("demo-1.0.ZIP", "upper-case"),
        ("demo-1.0.txt", "not a distribution filename"),
        ("demo-1.0-py3-none.whl", "not a valid wheel filename"),
        ("demo__x-1.0-py3-none-any.whl", "not a valid wheel filename"),
        ("demo-1.0-py3-none-any-extra-x.whl", "not a valid wheel filename"),
        ("demo.tar.gz", "not a valid sdist filename"),
        ("-1.0.tar.gz", "not a valid sdist filename"),
        ("demo-1.x.tar.gz", "not a valid sdist filename"),
        ("demo_-1.0.tar.gz", "not a valid sdist filename"),
    ],
)
def test_refused(name: str, message: str) -> None:
    with pytest.raises(InvalidFilename) as info:
        parse_filename(name)
    assert message in info.value.message
    assert info.value.code == "invalid-filename"


def test_exactly_max_length_is_accepted() -> None:
    name = "d" * (MAX_FILENAME_LENGTH - len("-1.0.tar.gz")) + "-1.0.tar.gz"
    assert len(name) == MAX_FILENAME_LENGTH
    assert parse_filename(name).kind == "sdist"


def test_long_name_message_is_bounded() -> None:
    with pytest.raises(InvalidFilename) as info:
        parse_filename("x" * 100_000)
    assert len(info.value.message) < 400
