"""``Authorization: Basic`` credentials (RFC 7617): parsed, never shown."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

__all__ = ["MAX_CREDENTIAL", "Credentials", "parse_basic"]

#: Longest user name or password looked at in an Authorization header.
MAX_CREDENTIAL = 1024


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password from a request; the password never appears in a repr."""

    user: str
    password: str = field(repr=False)


def parse_basic(header: bytes | str | None) -> Credentials | None:
    """The credentials of an ``Authorization: Basic ...`` header, or None if there are
    none or they are malformed (both answered with 401 and a challenge)."""
    if header is None:
        return None
    if isinstance(header, str):
        header = header.encode("latin-1", "replace")
    scheme, _, value = header.strip().partition(b" ")
    if scheme.lower() != b"basic" or len(value) > 4 * MAX_CREDENTIAL:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        text = decoded.decode("latin-1")  # RFC 7617 leaves the charset to the client
    user, colon, password = text.partition(":")
    if not colon or not user:
        return None
    return Credentials(user, password)
