"""The errors of the pure HTTP layer: an upload form spoold will not read.

Both are :class:`~spoold.errors.Rejected` (HTTP 400): the uploader's fault, with a message
saying what to fix. They live apart from :mod:`spoold.http.multipart` so the header and
reader modules the parser is built from can raise them too.
"""

from __future__ import annotations

from spoold.errors import Rejected

__all__ = ["FormTooLarge", "InvalidForm"]


class InvalidForm(Rejected):
    """The body is not a well-formed ``multipart/form-data`` upload form."""

    code = "invalid-form"


class FormTooLarge(InvalidForm):
    """A part of the form is larger, or the form has more parts, than spoold reads."""

    code = "form-too-large"
