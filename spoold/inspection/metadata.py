"""Core metadata (METADATA / PKG-INFO): what spoold accepts, and why.

The index publishes a distribution's metadata byte for byte (PEP 658) and pip acts on it,
so it is validated here, once, under the policy below; the rest of spoold only reads the
few fields in :class:`CoreMetadata`.

Metadata policy (what "valid" means):

* Always: UTF-8; a ``Metadata-Version`` packaging validates (1.0 - 2.6, pinned in
  :data:`METADATA_VERSIONS`), or the historical 2.0 written by old ``bdist_wheel``; a
  valid ``Name`` and PEP 440 ``Version`` matching the filename; a valid
  ``Requires-Python`` if present (the index publishes it, and pip acts on it).
* Metadata-Version 1.2 and later, except 2.0: everything else as strictly as
  ``packaging.metadata.Metadata.from_email(validate=True)`` checks it, with one
  tolerance: a field used with a Metadata-Version older than the one that introduced it
  (``License-File`` under 2.1, written by setuptools and hatchling for years before
  PEP 639) is accepted, because countless published packages carry it; and
  ``Description-Content-Type: UNKNOWN``, the placeholder setuptools 36.4 to 38.x wrote
  for an unset field (into PKG-INFO and the wheels built from it, under 1.2 and 2.1:
  py 1.5.2, pluggy 0.6.0), is accepted as if the field were absent. pip ignores it.
* Metadata-Version 1.0, 1.1 and 2.0: only the checks under "Always". These come from
  tools that predate the specifications packaging enforces, and pip installs them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import packaging.metadata
from packaging.metadata import Metadata, parse_email
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidName, canonicalize_name
from packaging.version import Version

from spoold.errors import Rejected
from spoold.inspection.filenames import ParsedFilename

__all__ = [
    "CoreMetadata",
    "InvalidMetadata",
    "MetadataMismatch",
    "check_matches_filename",
    "metadata_source",
    "parse_core_metadata",
]


class InvalidMetadata(Rejected):
    """METADATA / PKG-INFO is not valid core metadata."""

    code = "invalid-metadata"


class MetadataMismatch(Rejected):
    """The metadata names another project or version than the filename."""

    code = "metadata-mismatch"


@dataclass(frozen=True, slots=True)
class CoreMetadata:
    """The fields of METADATA / PKG-INFO the index uses, already validated."""

    metadata_version: str
    name: str
    version: Version
    requires_python: str | None
    summary: str | None


#: Versions written by tools that predate what packaging enforces; see the module doc.
_LENIENT_VERSIONS = frozenset({"1.0", "1.1", "2.0"})


class MetadataField(NamedTuple):
    """One core metadata field, and the Metadata-Version that introduced it."""

    #: The key in :class:`packaging.metadata.RawMetadata`.
    raw: str
    #: The header, as the core metadata specification spells it.
    header: str
    added: str


#: The Metadata-Versions that packaging validates (all but 2.0, which PEP 426 withdrew),
#: oldest first; the table below says which field each introduced. Both are pinned here,
#: from the core metadata specification, rather than read from packaging's private
#: tables; tests/unit/test_metadata_versions.py checks them against what packaging
#: does, so a packaging release that adds a version or a field fails that test until
#: the table is updated.
METADATA_VERSIONS: tuple[str, ...] = ("1.0", "1.1", "1.2", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6")

METADATA_FIELDS: tuple[MetadataField, ...] = (
    MetadataField("metadata_version", "Metadata-Version", "1.0"),
    MetadataField("name", "Name", "1.0"),
    MetadataField("version", "Version", "1.0"),
    MetadataField("platforms", "Platform", "1.0"),
    MetadataField("summary", "Summary", "1.0"),
    MetadataField("description", "Description", "1.0"),
    MetadataField("keywords", "Keywords", "1.0"),
    MetadataField("home_page", "Home-page", "1.0"),
    MetadataField("author", "Author", "1.0"),
    MetadataField("author_email", "Author-email", "1.0"),
    MetadataField("license", "License", "1.0"),
    # PEP 314
    MetadataField("supported_platforms", "Supported-Platform", "1.1"),
    MetadataField("download_url", "Download-URL", "1.1"),
    MetadataField("classifiers", "Classifier", "1.1"),
    MetadataField("requires", "Requires", "1.1"),
    MetadataField("provides", "Provides", "1.1"),
    MetadataField("obsoletes", "Obsoletes", "1.1"),
    # PEP 345
    MetadataField("maintainer", "Maintainer", "1.2"),
    MetadataField("maintainer_email", "Maintainer-email", "1.2"),
    MetadataField("requires_dist", "Requires-Dist", "1.2"),
    MetadataField("requires_python", "Requires-Python", "1.2"),
    MetadataField("requires_external", "Requires-External", "1.2"),
    MetadataField("project_urls", "Project-URL", "1.2"),
    MetadataField("provides_dist", "Provides-Dist", "1.2"),
    MetadataField("obsoletes_dist", "Obsoletes-Dist", "1.2"),
    # PEP 566
    MetadataField("description_content_type", "Description-Content-Type", "2.1"),
    MetadataField("provides_extra", "Provides-Extra", "2.1"),
    # PEP 643
    MetadataField("dynamic", "Dynamic", "2.2"),
    # PEP 639
    MetadataField("license_expression", "License-Expression", "2.4"),
    MetadataField("license_files", "License-File", "2.4"),
    # PEP 794
    MetadataField("import_names", "Import-Name", "2.5"),
    MetadataField("import_namespaces", "Import-Namespace", "2.5"),
)

_KNOWN_VERSIONS = METADATA_VERSIONS
#: Values old tools wrote for unset fields (raw key -> value), taken as "absent".
_PLACEHOLDERS: Mapping[str, str] = {"description_content_type": "UNKNOWN"}
_FIELDS_BY_RAW: Mapping[str, MetadataField] = {f.raw: f for f in METADATA_FIELDS}
_MAX_PROBLEMS = 10


def parse_core_metadata(data: bytes, *, source: str = "METADATA") -> CoreMetadata:
    """Validate core metadata bytes under spoold's policy (module docstring).

    *source* names the file in messages. Raises :class:`InvalidMetadata` listing every
    problem found, not just the first.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMetadata(
            f"{source} is not valid UTF-8 (byte {data[exc.start]:#04x} at offset "
            f"{exc.start}); core metadata must be UTF-8. Save README and other text "
            "that goes into the metadata as UTF-8 and rebuild."
        ) from None
    try:
        raw, unparsed = parse_email(text)
    except Exception as exc:  # packaging/email on garbage; never let it escape
        raise InvalidMetadata(
            f"{source} cannot be parsed as core metadata ({type(exc).__name__}: {exc})."
        ) from None
    metadata_version = raw.get("metadata_version")
    if metadata_version is None:
        raise InvalidMetadata(
            f"{source} has no (single) Metadata-Version field; it is not core metadata."
        )
    if metadata_version not in _KNOWN_VERSIONS and metadata_version not in _LENIENT_VERSIONS:
        raise InvalidMetadata(
            f"{source} has Metadata-Version {metadata_version[:20]!r}, which spoold does "
            f"not know (it accepts {', '.join(_KNOWN_VERSIONS)}). Upgrade spoold's "
            "packaging or build with an older backend."
        )
    if metadata_version in _LENIENT_VERSIONS:
        return _lenient(raw, unparsed, metadata_version, source)
    return _strict(text, raw, metadata_version, source)


def _lenient(
    raw: packaging.metadata.RawMetadata,
    unparsed: dict[str, list[str]],
    metadata_version: str,
    source: str,
) -> CoreMetadata:
    problems: list[str] = []
    name = raw.get("name")
    version: Version | None = None
    if name is None:
        problems.append("Name is missing" + (" or repeated" if "name" in unparsed else ""))
    else:
        try:
            canonicalize_name(name, validate=True)
        except InvalidName:
            problems.append(f"Name {name[:100]!r} is not a valid project name")
    raw_version = raw.get("version")
    if raw_version is None:
        problems.append("Version is missing" + (" or repeated" if "version" in unparsed else ""))
    else:
        try:
            version = Version(raw_version)
        except ValueError:  # InvalidVersion, or more digits than int() takes
            problems.append(f"Version {raw_version[:100]!r} is not a valid PEP 440 version")
    requires_python = _requires_python(raw, problems)
    if problems:
        raise InvalidMetadata(_problems_message(source, problems))
    assert name is not None and version is not None
    summary = raw.get("summary")
    if summary is not None:
        summary = " ".join(summary.split())
    return CoreMetadata(metadata_version, name, version, requires_python, summary)


def _requires_python(raw: packaging.metadata.RawMetadata, problems: list[str]) -> str | None:
    value = raw.get("requires_python")
    if value is None:
        return None
    try:
        SpecifierSet(value)
    except InvalidSpecifier:
        problems.append(f"Requires-Python {value[:100]!r} is not a valid version specifier")
        return None
    return value.strip()


def _strict(
    text: str, raw: packaging.metadata.RawMetadata, metadata_version: str, source: str
) -> CoreMetadata:
    anachronisms = _anachronistic_fields(raw, metadata_version)
    placeholders = {
        _FIELDS_BY_RAW[key].header.lower() for key, value in _PLACEHOLDERS.items() if raw.get(key) == value
    }
    problems: list[str] = []
    try:
        Metadata.from_email(text, validate=True)
    except ExceptionGroup as group:
        problems = [
            _describe_problem(exc)
            for exc in _leaves(group)
            if not (
                isinstance(exc, packaging.metadata.InvalidMetadata)
                and (
                    exc.field in placeholders
                    or (exc.field in anachronisms.values() and "introduced in metadata version" in str(exc))
                )
            )
        ]
    except Exception as exc:  # anything else packaging raises on hostile text
        raise InvalidMetadata(
            f"{source} cannot be validated ({type(exc).__name__}: {exc})."
        ) from None
    # packaging skips the values of anachronistic fields; tolerated is not unchecked.
    metadata = Metadata.from_raw(raw, validate=False)
    for key in anachronisms:
        if _FIELDS_BY_RAW[key].header.lower() in placeholders:
            continue
        try:
            getattr(metadata, key)
        except packaging.metadata.InvalidMetadata as exc:
            problems.append(_describe_problem(exc))
        except ExceptionGroup as group:
            problems.extend(_describe_problem(e) for e in _leaves(group))
    if problems:
        raise InvalidMetadata(_problems_message(source, problems))
    return CoreMetadata(
        metadata_version,
        metadata.name,
        metadata.version,
        _requires_python(raw, problems),
        metadata.summary,
    )


def _anachronistic_fields(
    raw: packaging.metadata.RawMetadata, metadata_version: str
) -> dict[str, str]:
    """Fields (raw key -> email name, lower-case as packaging names it in errors)
    introduced after *raw*'s Metadata-Version."""
    age = _KNOWN_VERSIONS.index(metadata_version)
    found = {}
    for key in raw:
        spec = _FIELDS_BY_RAW.get(key)
        if spec is not None and _KNOWN_VERSIONS.index(spec.added) > age:
            found[key] = spec.header.lower()
    return found


def _leaves(group: BaseExceptionGroup[Exception]) -> Iterator[Exception]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _describe_problem(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


def _problems_message(source: str, problems: list[str]) -> str:
    shown = problems[:_MAX_PROBLEMS]
    more = len(problems) - len(shown)
    listing = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
    return (
        f"{source} is not valid core metadata: {listing}. Fix the project's metadata "
        "(pyproject.toml, setup.cfg or setup.py) and rebuild."
    )


def check_matches_filename(metadata: CoreMetadata, parsed: ParsedFilename) -> None:
    source = metadata_source(parsed)
    if canonicalize_name(metadata.name) != parsed.project:
        raise MetadataMismatch(
            f"The filename is for project {parsed.project!r} but {source} says Name: "
            f"{metadata.name!r}. Do not rename distribution files; rebuild instead."
        )
    if metadata.version != Version(parsed.version):
        raise MetadataMismatch(
            f"The filename is for version {parsed.version} but {source} says Version: "
            f"{metadata.version}. Do not rename distribution files; rebuild instead."
        )


def metadata_source(parsed: ParsedFilename) -> str:
    """The name of the metadata file in *parsed*'s kind of archive, for messages."""
    return "METADATA" if parsed.kind == "wheel" else "PKG-INFO"
