"""Declared digests: what an uploader says the bytes hash to, checked against what came.

twine, uv and poetry send ``sha256_digest`` (and ``md5_digest`` / ``blake2_256_digest``)
with every upload; a mismatch means the bytes were corrupted or replaced in transit, the
uploader's fault to fix by uploading again. The hashing itself is :mod:`spoold.hashing`.
"""

from __future__ import annotations

from collections.abc import Mapping

from spoold.errors import Rejected
from spoold.hashing import Digests

__all__ = [
    "DECLARED_FIELDS",
    "DigestMismatch",
    "check_declared",
]

#: The upload form fields twine sends, and the attribute of :class:`Digests` each checks.
DECLARED_FIELDS: Mapping[str, str] = {
    "sha256_digest": "sha256",
    "blake2_256_digest": "blake2_256",
    "md5_digest": "md5",
}

_HEX_LENGTHS = {"sha256": 64, "blake2_256": 64, "md5": 32}


class DigestMismatch(Rejected):
    """The bytes received are not the bytes the uploader hashed (corrupted or replaced)."""

    code = "digest-mismatch"


def check_declared(actual: Digests, declared: Mapping[str, str] | None) -> None:
    """Raise :class:`DigestMismatch` unless every declared digest matches *actual*.

    *declared* holds upload form fields (``sha256_digest``, ``md5_digest``,
    ``blake2_256_digest``); other keys and empty values are ignored, as twine leaves some
    out. A declared md5 needs ``actual.md5``: compute it with ``md5=True``.
    """
    if not declared:
        return
    problems: list[str] = []
    for field, attribute in DECLARED_FIELDS.items():
        value = declared.get(field)
        if value is None:
            continue
        value = value.strip().lower()
        if not value:
            continue
        computed = getattr(actual, attribute)
        if computed is None:
            raise ValueError(f"{field} was declared but {attribute} was not computed")
        if len(value) != _HEX_LENGTHS[attribute] or not _is_hex(value):
            problems.append(
                f"{field} {value[:80]!r} is not a {_HEX_LENGTHS[attribute]}-digit hex digest"
            )
        elif value != computed:
            problems.append(f"{field} was {value} but the received file's is {computed}")
    if problems:
        raise DigestMismatch(
            "The file received does not match the digests sent with it ("
            + "; ".join(problems)
            + "). It was corrupted or changed in transit; upload it again."
        )


def _is_hex(value: str) -> bool:
    return all(c in "0123456789abcdef" for c in value)
