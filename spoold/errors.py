"""The error hierarchy every layer raises from.

The split that matters is *whose fault* an error is, because that decides what happens to
a spool item:

* :class:`Rejected` -- the item's own fault (bad name, broken archive, wrong digest, a
  filename already published with other bytes). The item goes to ``failed/`` with
  ``code`` and ``message`` as its reason; an upload gets a 4xx with the message.
* :class:`Transient` -- the environment's fault (storage unreachable, throttled). The
  item is never rejected for it: it waits in ``deferred/`` and is retried with backoff.
* :class:`ConfigError` -- the operator's fault (missing or unwritable spool, bad URL).
  Commands print the message on one line and exit non-zero.

Messages are written for the person who has to act on them: what is wrong, and what to do.
"""

from __future__ import annotations


class SpooldError(Exception):
    """Base class of every error spoold raises on purpose."""

    #: A short, stable, machine-readable identifier (kebab-case) for logs, metrics and
    #: the reason files in ``failed/``.
    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class ConfigError(SpooldError):
    """The operator must fix a setting, a path or a permission."""

    code = "config"


class Rejected(SpooldError):
    """The item itself is at fault; retrying the same bytes can never succeed.

    ``http_status`` is the status an upload of this item is answered with.
    """

    code = "rejected"
    http_status: int = 400


class InvalidFilename(Rejected):
    """The name is not a distribution filename spoold will accept, or is unsafe."""

    code = "invalid-filename"


class FileExists(Rejected):
    """A file of that name is already published with different bytes (Warehouse rule)."""

    code = "file-exists"
    http_status = 409


class Transient(SpooldError):
    """A fault outside the item (storage down, throttled); the item is retried later."""

    code = "transient"
