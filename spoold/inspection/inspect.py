"""From a file on disk to a :class:`~spoold.inspection.distribution.Distribution`, or a rejection.

This is steps 1-3 of "Processing an item": parse the filename, hash the file, open the
archive safely, check a wheel's RECORD against its members, and validate the core
metadata against the filename. It is pure, synchronous code (no reactor): the worker runs
it in a thread and turns :class:`~spoold.errors.Rejected` into ``failed/``.

Cost: each byte of the archive is read and decompressed once. For large files the
sha256/blake2b of the whole file are computed on a second thread while the members are
being read (hashlib and zlib release the GIL), so a multi-core worker pays for the file
hashes almost nothing on top of what RECORD checking costs anyway.

Metadata policy (what "valid" means):

* Always: UTF-8; a ``Metadata-Version`` packaging knows (1.0 - 2.4 and later), or the
  historical 2.0 written by old ``bdist_wheel``; a valid ``Name`` and PEP 440
  ``Version`` matching the filename; a valid ``Requires-Python`` if present (the index
  publishes it, and pip acts on it).
* Metadata-Version 1.2 and later, except 2.0: everything else as strictly as
  ``packaging.metadata.Metadata.from_email(validate=True)`` checks it, with one
  tolerance: a field used with a Metadata-Version older than the one that introduced it
  (``License-File`` under 2.1, written by setuptools and hatchling for years before
  PEP 639) is accepted, because countless published packages carry it.
* Metadata-Version 1.0, 1.1 and 2.0: only the checks under "Always". These come from
  tools that predate the specifications packaging enforces, and pip installs them.
"""

from __future__ import annotations

import base64
import csv
import email.parser
import email.policy
import hashlib
import io
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import packaging.metadata
from packaging.metadata import Metadata, parse_email
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidName, canonicalize_name
from packaging.version import InvalidVersion, Version

from spoold.inspection.archives import (
    ArchiveLimits,
    InvalidArchive,
    Limits,
    Member,
    ZipReader,
    open_source,
    scan_sdist,
)
from spoold.hashing import BackgroundHash, Digests, hash_file
from spoold.inspection.digests import check_declared
from spoold.inspection.distribution import Distribution
from spoold.errors import Rejected, SpooldError, Transient
from spoold.inspection.filenames import ParsedFilename, parse_filename

__all__ = [
    "BACKGROUND_HASH_MIN_SIZE",
    "CoreMetadata",
    "InvalidMetadata",
    "InvalidSdist",
    "InvalidWheel",
    "MetadataMismatch",
    "RecordMismatch",
    "inspect_file",
    "parse_core_metadata",
]

log = logging.getLogger(__name__)

#: Files at least this large are hashed on a second thread; below it a thread costs
#: more than it saves.
BACKGROUND_HASH_MIN_SIZE = 8 << 20


class InvalidWheel(Rejected):
    """The zip is sound but is not a wheel: .dist-info, WHEEL or RECORD is wrong."""

    code = "invalid-wheel"


class RecordMismatch(Rejected):
    """A wheel's RECORD and its members disagree (a hash, a size, a missing entry)."""

    code = "record-mismatch"


class InvalidSdist(Rejected):
    """The archive is sound but is not an sdist: no single top directory or no PKG-INFO."""

    code = "invalid-sdist"


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


def inspect_file(
    path: str | os.PathLike[str],
    filename: str,
    *,
    declared: Mapping[str, str] | None = None,
    limits: Limits = Limits(),
) -> Distribution:
    """Prove that the file at *path* is the distribution *filename* says it is.

    *declared* holds the upload's digest fields (``sha256_digest``, ``md5_digest``,
    ``blake2_256_digest``); all given must match. Raises a
    :class:`~spoold.errors.Rejected` subclass for anything wrong with the item; an
    ``OSError`` opening the file and :class:`~spoold.errors.Transient` for a failed read
    are the environment's fault and are left to the caller.
    """
    parsed = parse_filename(filename)
    md5 = bool(declared and (declared.get("md5_digest") or "").strip())
    size = os.stat(path).st_size
    background: BackgroundHash | None = None
    digests: Digests | None = None
    if size >= BACKGROUND_HASH_MIN_SIZE:
        background = BackgroundHash(path, md5=md5)
    else:
        digests = hash_file(path, md5=md5)
        check_declared(digests, declared)
    try:
        metadata_bytes = _inspect_archive(path, parsed, size, limits)
    except Rejected:
        if background is not None:
            # A transfer that corrupted the file explains any archive error better.
            check_declared(background.result(), declared)
        raise
    if background is not None:
        digests = background.result()
        check_declared(digests, declared)
    assert digests is not None and digests.blake2_256 is not None
    if digests.size != size:
        raise Transient(
            f"{os.fspath(path)!r} changed while it was being inspected; retry it once "
            "whatever writes it has finished."
        )
    metadata = parse_core_metadata(metadata_bytes, source=_metadata_source(parsed))
    _check_matches_filename(metadata, parsed)
    return Distribution(
        filename=parsed.filename,
        project=parsed.project,
        name=metadata.name,
        version=str(metadata.version),
        kind=parsed.kind,
        size=digests.size,
        sha256=digests.sha256,
        blake2_256=digests.blake2_256,
        metadata=metadata_bytes,
        metadata_sha256=hashlib.sha256(metadata_bytes).hexdigest(),
        requires_python=metadata.requires_python,
        summary=metadata.summary,
    )


def _metadata_source(parsed: ParsedFilename) -> str:
    return "METADATA" if parsed.kind == "wheel" else "PKG-INFO"


def _inspect_archive(
    path: str | os.PathLike[str], parsed: ParsedFilename, size: int, limits: Limits
) -> bytes:
    """Check the archive and return the exact metadata bytes.

    The last ``except`` is a safety net: a hostile file must never crash a worker with
    an unexpected exception type, so anything the archive modules raise that was not
    foreseen becomes a rejection (and is logged with its traceback, to be foreseen next
    time).
    """
    if size == 0:
        raise InvalidArchive(
            f"{parsed.filename!r} is empty (0 bytes); the upload or copy was cut short. "
            "Send the file again."
        )
    with open_source(path) as stream:
        try:
            if parsed.kind == "wheel":
                return _inspect_wheel(stream, parsed, size, limits)
            return _inspect_sdist(stream, parsed, size, limits)
        except SpooldError:
            raise
        except Exception as exc:
            log.exception("unexpected error inspecting %r", parsed.filename)
            raise InvalidArchive(
                f"{parsed.filename!r} could not be read as a {parsed.kind} "
                f"({type(exc).__name__}: {str(exc)[:200]}). Rebuild it with a standard "
                "build tool."
            ) from None


# -- wheels ----------------------------------------------------------------------------

#: Files in .dist-info that RECORD need not list (the wheel spec: RECORD and its
#: signatures cannot contain their own hashes).
_RECORD_EXEMPT = ("RECORD", "RECORD.jws", "RECORD.p7s")

#: Hashes RECORD may use: "sha256 or better"; md5 and sha1 are refused by the spec.
_RECORD_ALGORITHMS = frozenset(
    {"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512", "blake2b", "blake2s"}
)


@dataclass(frozen=True, slots=True)
class _RecordEntry:
    algorithm: str | None
    digest: str | None
    size: int | None


def _inspect_wheel(stream: io.BufferedIOBase, parsed: ParsedFilename, size: int, limits: Limits) -> bytes:
    with ZipReader(stream, archive_size=size, limits=limits, links="reject") as zf:  # type: ignore[arg-type]
        dist_info = _find_dist_info(zf.members, parsed)
        files = {m.name: m for m in zf.members if not m.is_dir}
        required = {}
        for leaf in ("RECORD", "METADATA", "WHEEL"):
            member = files.get(f"{dist_info}/{leaf}")
            if member is None:
                raise InvalidWheel(
                    f"The wheel has no {dist_info}/{leaf}; every wheel must have one. "
                    "Rebuild it with a standard build backend."
                )
            required[leaf] = member
        for leaf in ("METADATA", "WHEEL"):
            member = required[leaf]
            if member.size > limits.max_metadata_size:
                raise ArchiveLimits(
                    f"{member.name} is {member.size} bytes; at most "
                    f"{limits.max_metadata_size} are accepted. Keep long READMEs short "
                    "or link to them."
                )
        record = _parse_record(
            zf.read(required["RECORD"], limits.max_record_size, what="RECORD"),
            f"{dist_info}/RECORD",
        )
        _cross_check_record(record, files, dist_info)
        wanted = {required["METADATA"].name, required["WHEEL"].name}
        captured: dict[str, bytes] = {}
        for member in zf.members:
            if member.is_dir or member is required["RECORD"]:
                continue
            entry = record.get(member.name)
            if entry is None or entry.algorithm is None:
                # Only RECORD's signatures get here (checked in _cross_check_record).
                for _chunk in zf.chunks(member):
                    pass
                continue
            data = _hash_member(zf, member, entry, member.name in wanted)
            if data is not None:
                captured[member.name] = data
    _check_wheel_file(captured[required["WHEEL"].name], required["WHEEL"].name)
    return captured[required["METADATA"].name]


def _find_dist_info(members: tuple[Member, ...], parsed: ParsedFilename) -> str:
    found = sorted({m.parts[0] for m in members if m.parts[0].endswith(".dist-info")
                    and (len(m.parts) > 1 or m.is_dir)})
    expected = f"{parsed.project.replace('-', '_')}-{parsed.version}.dist-info"
    if not found:
        raise InvalidWheel(
            f"The wheel has no .dist-info directory (expected {expected}/); it is not a "
            "wheel. Rebuild it with a standard build backend."
        )
    if len(found) > 1:
        raise InvalidWheel(
            f"The wheel has {len(found)} .dist-info directories ({', '.join(found[:5])}); "
            f"exactly one, {expected}/, is allowed."
        )
    (dist_info,) = found
    if not _dist_info_matches(dist_info, parsed):
        raise InvalidWheel(
            f"The wheel's {dist_info}/ does not match the filename (expected {expected}/); "
            "do not rename wheels, rebuild them."
        )
    return dist_info


def _dist_info_matches(dist_info: str, parsed: ParsedFilename) -> bool:
    """Compare ``{name}-{version}.dist-info`` with the filename, both normalized.

    Old tools did not escape every name, so every '-' is tried as the separator.
    """
    stem = dist_info[: -len(".dist-info")]
    expected = Version(parsed.version)
    for match in re.finditer("-", stem):
        name, version = stem[: match.start()], stem[match.end():]
        if canonicalize_name(name) != parsed.project:
            continue
        try:
            if Version(version) == expected:
                return True
        except InvalidVersion:
            continue
    return False


def _parse_record(data: bytes, where: str) -> dict[str, _RecordEntry]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidWheel(f"{where} is not UTF-8 ({exc.reason} at byte {exc.start}).") from None
    entries: dict[str, _RecordEntry] = {}
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise InvalidWheel(f"{where} is not valid CSV ({exc}).") from None
    for number, row in enumerate(rows, 1):
        if not row:
            continue
        if len(row) != 3:
            raise InvalidWheel(
                f"{where} line {number} has {len(row)} fields; each line must be "
                "path,hash,size."
            )
        path, hash_field, size_field = row
        if path in entries:
            raise RecordMismatch(f"{where} lists {path!r} twice.")
        algorithm = digest = None
        if hash_field:
            algorithm, sep, digest = hash_field.partition("=")
            if not sep or not digest:
                raise InvalidWheel(
                    f"{where} line {number}: hash {hash_field[:100]!r} is not algorithm=digest."
                )
            if algorithm not in _RECORD_ALGORITHMS:
                raise InvalidWheel(
                    f"{where} line {number}: hash algorithm {algorithm[:30]!r} is not "
                    "accepted; RECORD must use sha256 or better."
                )
            digest = digest.rstrip("=")
        size: int | None = None
        if size_field:
            if not size_field.isdigit() or not size_field.isascii():
                raise InvalidWheel(
                    f"{where} line {number}: size {size_field[:30]!r} is not a number."
                )
            size = int(size_field)
        entries[path] = _RecordEntry(algorithm, digest, size)
    return entries


def _cross_check_record(
    record: dict[str, _RecordEntry], files: dict[str, Member], dist_info: str
) -> None:
    """Every file listed with a hash, every listed file present (before reading any)."""
    exempt = {f"{dist_info}/{leaf}" for leaf in _RECORD_EXEMPT}
    for name in files:
        if name in exempt:
            continue
        entry = record.get(name)
        if entry is None:
            raise RecordMismatch(
                f"{name!r} is in the wheel but not in {dist_info}/RECORD; RECORD must list "
                "every file. Rebuild the wheel instead of editing it."
            )
        if entry.algorithm is None:
            raise RecordMismatch(
                f"{dist_info}/RECORD lists {name!r} without a hash; every file but RECORD "
                "itself must have one."
            )
    for name in record:
        if name not in files:
            raise RecordMismatch(
                f"{dist_info}/RECORD lists {name[:200]!r}, which is not in the wheel. "
                "Rebuild the wheel instead of editing it."
            )


def _hash_member(
    zf: ZipReader, member: Member, entry: _RecordEntry, keep: bool
) -> bytes | None:
    assert entry.algorithm is not None
    if entry.size is not None and entry.size != member.size:
        raise RecordMismatch(
            f"RECORD says {member.name!r} is {entry.size} bytes but the wheel holds "
            f"{member.size}. Rebuild the wheel instead of editing it."
        )
    hasher = hashlib.new(entry.algorithm)
    parts: list[bytes] | None = [] if keep else None
    length = 0
    for chunk in zf.chunks(member):
        hasher.update(chunk)
        length += len(chunk)
        if parts is not None:
            parts.append(chunk)
    if length != member.size:  # pragma: no cover - zipfile raises on short members
        raise InvalidArchive(f"The member {member.name!r} is truncated.")
    actual = base64.urlsafe_b64encode(hasher.digest()).rstrip(b"=").decode("ascii")
    if actual != entry.digest:
        raise RecordMismatch(
            f"The {entry.algorithm} of {member.name!r} does not match RECORD "
            f"(RECORD: {str(entry.digest)[:100]}, actual: {actual}). The wheel was "
            "modified after it was built; rebuild it."
        )
    return b"".join(parts) if parts is not None else None


_WHEEL_VERSION = re.compile(r"\s*(\d+)\.(\d+)\s*")


def _check_wheel_file(data: bytes, where: str) -> None:
    try:
        text = data.decode("utf-8")
        message = email.parser.Parser(policy=email.policy.compat32).parsestr(
            text, headersonly=True
        )
        value = message.get("Wheel-Version")
    except Exception as exc:  # email is lenient; anything it raises means garbage
        raise InvalidWheel(f"{where} cannot be read ({type(exc).__name__}: {exc}).") from None
    if value is None:
        raise InvalidWheel(f"{where} has no Wheel-Version field.")
    match = _WHEEL_VERSION.fullmatch(str(value))
    if match is None or match.group(1) != "1":
        raise InvalidWheel(
            f"{where} says Wheel-Version {str(value)[:30]!r}; only wheel format 1.x is "
            "accepted."
        )


# -- sdists ----------------------------------------------------------------------------


def _inspect_sdist(stream: io.BufferedIOBase, parsed: ParsedFilename, size: int, limits: Limits) -> bytes:
    scan = scan_sdist(
        stream,  # type: ignore[arg-type]
        parsed.extension,
        archive_size=size,
        limits=limits,
        capture=lambda parts: len(parts) == 2 and parts[1] == "PKG-INFO",
    )
    tops = sorted({m.parts[0] for m in scan.members})
    if not tops:
        raise InvalidSdist(f"{parsed.filename!r} is an empty archive.")
    if len(tops) > 1:
        raise InvalidSdist(
            f"The sdist has {len(tops)} top-level entries ({', '.join(tops[:5])}); an "
            "sdist holds exactly one directory, {name}-{version}/. Build it with "
            "`python -m build --sdist`."
        )
    top = tops[0]
    if not any(len(m.parts) > 1 or m.is_dir for m in scan.members):
        raise InvalidSdist(
            f"The sdist has no top-level directory, only the file {top!r}; build it with "
            "`python -m build --sdist`."
        )
    data = scan.captured.get(f"{top}/PKG-INFO")
    if data is None:
        raise InvalidSdist(
            f"The sdist has no {top}/PKG-INFO; every sdist must carry its core metadata "
            "there. Build it with `python -m build --sdist`."
        )
    return data


# -- core metadata ---------------------------------------------------------------------

#: Versions written by tools that predate what packaging enforces; see the module doc.
_LENIENT_VERSIONS = frozenset({"1.0", "1.1", "2.0"})
_KNOWN_VERSIONS: tuple[str, ...] = tuple(
    getattr(
        packaging.metadata,
        "_VALID_METADATA_VERSIONS",
        ("1.0", "1.1", "1.2", "2.1", "2.2", "2.3", "2.4"),
    )
)
_RAW_TO_EMAIL: Mapping[str, str] = getattr(packaging.metadata, "_RAW_TO_EMAIL_MAPPING", {})
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
        except InvalidVersion:
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
    problems: list[str] = []
    try:
        Metadata.from_email(text, validate=True)
    except ExceptionGroup as group:
        problems = [
            _describe_problem(exc)
            for exc in _leaves(group)
            if not (
                isinstance(exc, packaging.metadata.InvalidMetadata)
                and exc.field in anachronisms.values()
                and "introduced in metadata version" in str(exc)
            )
        ]
    except Exception as exc:  # anything else packaging raises on hostile text
        raise InvalidMetadata(
            f"{source} cannot be validated ({type(exc).__name__}: {exc})."
        ) from None
    # packaging skips the values of anachronistic fields; tolerated is not unchecked.
    metadata = Metadata.from_raw(raw, validate=False)
    for key in anachronisms:
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
    """Fields (raw key -> email name) introduced after *raw*'s Metadata-Version."""
    age = _KNOWN_VERSIONS.index(metadata_version)
    found = {}
    for key in raw:
        validator = Metadata.__dict__.get(key)
        added = getattr(validator, "added", None)
        if added in _KNOWN_VERSIONS and _KNOWN_VERSIONS.index(added) > age:
            email_name = _RAW_TO_EMAIL.get(key)
            if email_name is not None:
                found[key] = email_name
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


def _check_matches_filename(metadata: CoreMetadata, parsed: ParsedFilename) -> None:
    source = _metadata_source(parsed)
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
