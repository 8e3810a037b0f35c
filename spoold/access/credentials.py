"""The credentials of a request: ``Authorization`` headers parsed, secrets never shown.

Accepted, as the contract says (and as twine, uv, poetry and pip send them):

* ``Basic user:password`` -- a user of the htpasswd file;
* ``Basic __token__:TOKEN`` -- a token as the password of the user ``__token__``;
* ``Basic TOKEN:`` -- a token as the user name with an empty password
  (``https://TOKEN@host/simple/``, as pip documents);
* ``Bearer TOKEN``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from spoold.access.tokens import split_token

__all__ = ["MAX_CREDENTIAL", "TOKEN_USER", "Credentials", "parse_authorization"]

#: Longest user name, password or token looked at in an Authorization header.
MAX_CREDENTIAL = 1024
TOKEN_USER = "__token__"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presented: a user and password, or a token (never in a repr)."""

    user: str | None = None
    password: str | None = None
    token: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, token={'...' if self.token else None})"


def parse_authorization(header: bytes | str | None) -> Credentials | None:
    """The credentials of an Authorization header; None if there are none or they are
    malformed (both are answered as "no credentials": 401 with the challenge)."""
    if header is None:
        return None
    if isinstance(header, str):
        header = header.encode("latin-1", "replace")
    scheme, _, value = header.strip().partition(b" ")
    value = value.strip()
    if len(value) > 4 * MAX_CREDENTIAL:
        return None
    if scheme.lower() == b"bearer":
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            return None
        return Credentials(token=text) if text else None
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        text = decoded.decode("latin-1")  # RFC 7617 leaves the charset to the client
    user, colon, password = text.partition(":")
    if not colon or not user or len(user) > MAX_CREDENTIAL or len(password) > MAX_CREDENTIAL:
        return None
    if user == TOKEN_USER:
        return Credentials(token=password) if password else None
    if not password and split_token(user) is not None:
        return Credentials(token=user)
    return Credentials(user=user, password=password)
