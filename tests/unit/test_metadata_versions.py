"""spoold's pinned Metadata-Version table against what packaging does with real METADATA.

spoold tolerates fields used under a Metadata-Version older than the one that introduced
them, and needs to know which those are; it pins the table instead of reading packaging's
private ones. These tests ask packaging's public API (``parse_email``,
``Metadata.from_email(validate=True)``, the ``RawMetadata`` keys) the same questions,
so a packaging release that adds a version or a field, or moves one, fails here.
"""

from __future__ import annotations

import pytest
from packaging.metadata import InvalidMetadata, Metadata, RawMetadata, parse_email

from spoold.inspection.metadata import METADATA_FIELDS, METADATA_VERSIONS, MetadataField

#: A value packaging parses for each field (the lists and tables need a shape).
SAMPLES = {
    "metadata_version": "2.1",
    "name": "demo",
    "version": "1.0",
    "platforms": "any",
    "summary": "A demo",
    "description": "A longer description.",
    "keywords": "demo,test",
    "home_page": "https://example.invalid/",
    "author": "Someone",
    "author_email": "someone@example.invalid",
    "license": "MIT",
    "supported_platforms": "linux",
    "download_url": "https://example.invalid/demo.tar.gz",
    "classifiers": "Programming Language :: Python",
    "requires": "os",
    "provides": "demo",
    "obsoletes": "olddemo",
    "maintainer": "Else",
    "maintainer_email": "else@example.invalid",
    "requires_dist": "attrs>=20",
    "requires_python": ">=3.8",
    "requires_external": "libc",
    "project_urls": "Source, https://example.invalid/src",
    "provides_dist": "demo",
    "obsoletes_dist": "olddemo",
    "description_content_type": "text/plain",
    "provides_extra": "test",
    "dynamic": "Summary",
    "license_expression": "MIT",
    "license_files": "LICENSE",
    "import_names": "demo",
    "import_namespaces": "demo_ns",
}

BASE = ("metadata_version", "name", "version")


def from_email_errors(text: str) -> list[Exception]:
    try:
        Metadata.from_email(text, validate=True)
    except ExceptionGroup as group:
        return list(_leaves(group))
    return []


def _leaves(group: BaseExceptionGroup[Exception]) -> list[Exception]:
    found: list[Exception] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


def metadata(version: str, *extra: MetadataField) -> str:
    lines = [f"Metadata-Version: {version}", "Name: demo", "Version: 1.0"]
    lines += [f"{field.header}: {SAMPLES[field.raw]}" for field in extra]
    return "\n".join(lines) + "\n"


def test_table_lists_every_field_packaging_parses() -> None:
    fields = [f.raw for f in METADATA_FIELDS]
    assert len(fields) == len(set(fields))
    assert set(fields) == set(RawMetadata.__required_keys__ | RawMetadata.__optional_keys__)
    assert set(SAMPLES) == set(fields)
    assert {f.added for f in METADATA_FIELDS} <= set(METADATA_VERSIONS)


@pytest.mark.parametrize("field", METADATA_FIELDS, ids=lambda f: f.header)
def test_header_is_the_one_packaging_reads_into_the_raw_key(field: MetadataField) -> None:
    raw, unparsed = parse_email(f"{field.header}: {SAMPLES[field.raw]}\n")
    assert field.raw in raw, unparsed
    assert unparsed == {}


@pytest.mark.parametrize(
    "field", [f for f in METADATA_FIELDS if f.raw not in BASE], ids=lambda f: f.header
)
def test_added_version_is_where_packaging_stops_complaining(field: MetadataField) -> None:
    """Under each version, packaging says "introduced in" exactly when the table does."""
    introduced_after = METADATA_VERSIONS.index(field.added)
    for age, version in enumerate(METADATA_VERSIONS):
        complaints = [
            str(exc)
            for exc in from_email_errors(metadata(version, field))
            if isinstance(exc, InvalidMetadata)
            and exc.field == field.header.lower()
            and "introduced in metadata version" in str(exc)
        ]
        if introduced_after > age:
            assert complaints == [
                f"{field.header.lower()} introduced in metadata version {field.added}, "
                f"not {version}"
            ], version
        else:
            assert complaints == [], version


@pytest.mark.parametrize("version", METADATA_VERSIONS)
def test_every_pinned_version_is_valid_to_packaging(version: str) -> None:
    assert from_email_errors(metadata(version)) == []
    assert Metadata.from_email(metadata(version)).metadata_version == version


@pytest.mark.parametrize("version", ["2.0", "1.3", "9.9", "3"])
def test_other_versions_are_not(version: str) -> None:
    errors = from_email_errors(metadata(version))
    assert [str(e) for e in errors] == [f"{version!r} is not a valid metadata version"]


def test_packaging_validates_no_version_missing_from_the_table() -> None:
    """A new Metadata-Version in packaging (a 2.7, a 3.0) must be added to the table."""
    candidates = [f"{major}.{minor}" for major in range(1, 4) for minor in range(10)]
    valid = [v for v in candidates if not from_email_errors(metadata(v))]
    assert valid == list(METADATA_VERSIONS)
