"""Wheels: the .dist-info directory, RECORD checked against every member, WHEEL.

A wheel is installed by unpacking it, so what matters is that its members are exactly the
files its RECORD lists, byte for byte: every member is hashed as it is read (the single
pass that also verifies each zip CRC), RECORD and the member list are compared before any
member is read, and the ``.dist-info`` directory must match the filename, so a renamed or
edited wheel is refused with the reason.
"""

from __future__ import annotations

import base64
import csv
import email.parser
import email.policy
import hashlib
import io
import re
from dataclasses import dataclass

from packaging.utils import canonicalize_name
from packaging.version import Version

from spoold.errors import Rejected
from spoold.inspection.archive import ArchiveLimits, InvalidArchive, Limits, Member
from spoold.inspection.filenames import ParsedFilename
from spoold.inspection.zipreader import ZipReader

__all__ = ["InvalidWheel", "RecordMismatch", "inspect_wheel"]


class InvalidWheel(Rejected):
    """The zip is sound but is not a wheel: .dist-info, WHEEL or RECORD is wrong."""

    code = "invalid-wheel"


class RecordMismatch(Rejected):
    """A wheel's RECORD and its members disagree (a hash, a size, a missing entry)."""

    code = "record-mismatch"


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


def inspect_wheel(stream: io.BufferedIOBase, parsed: ParsedFilename, size: int, limits: Limits) -> bytes:
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
        except ValueError:  # InvalidVersion, or more digits than int() takes
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
