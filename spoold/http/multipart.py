"""Parsing an upload form (``multipart/form-data``) from a file, in bounded memory.

An upload body can be a gigabyte and comes from anyone who can reach the port, so the
parser never holds more than one read chunk plus one boundary of it: text fields are kept
only if the caller asks for them (and only up to a size limit), everything else is skipped
as it goes by, and the file part is copied chunk by chunk into a file object the caller
opens when the part starts (so the caller can write it straight into the spool).

Pure code: a seekable binary file in, a :class:`Form` out, a
:class:`~spoold.errors.Rejected` subclass with a message for the uploader when the body is
not a form spoold will read. No network, no reactor; the web layer runs it in a thread.

The format is RFC 7578 as twine (requests-toolbelt), uv (reqwest) and poetry send it:
CRLF line ends, a ``Content-Disposition: form-data; name="..."`` header per part, the file
part with a ``filename``. Both the RFC 2231 ``filename*=`` form and the HTML5 form (raw
UTF-8, ``%22`` for a quote) of non-ASCII names are understood.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import IO

from spoold.http.errors import FormTooLarge, InvalidForm
from spoold.http.headers import extended_value, html5_unescape, parse_header_value
from spoold.http.reader import BufferedReader
from spoold.inspection.filenames import check_filename

__all__ = [
    "FilePart",
    "Form",
    "FormLimits",
    "FormTooLarge",
    "InvalidForm",
    "boundary_of",
    "parse_form",
]


@dataclass(frozen=True, slots=True)
class FormLimits:
    """Bounds on what a form may contain; the defaults fit any real twine/uv/poetry upload."""

    #: Largest kept text field, in bytes (digests and names are far smaller).
    max_field_size: int = 64 * 1024
    #: Most parts in one form (twine sends one per classifier, requirement, URL...).
    max_parts: int = 10_000
    #: Largest header block of one part, in bytes.
    max_part_header: int = 16 * 1024
    #: Most header lines of one part.
    max_part_headers: int = 16
    #: Read size; memory use is about this plus one boundary.
    chunk_size: int = 256 * 1024


@dataclass(frozen=True, slots=True)
class FilePart:
    """The file part of a form, as far as it is known when its bytes start."""

    field: str
    filename: str
    content_type: str


@dataclass(frozen=True, slots=True)
class Form:
    """The parsed form: kept text fields, and what was written of the file part."""

    fields: Mapping[str, str]
    #: None when the form has no file part of the expected name.
    file: FilePart | None = None
    #: Bytes written to the file object (the size of the file part).
    file_size: int = 0
    #: Names of the parts that were skipped (not kept), for diagnostics; each once.
    skipped: frozenset[str] = field(default_factory=frozenset)


#: Called when the file part starts with its description and the fields seen so far;
#: returns the binary file object the part's bytes are written to (the caller closes it).
OpenFile = Callable[[FilePart, Mapping[str, str]], IO[bytes]]

_BCHARS = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")
_HEADER_NAME = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def boundary_of(content_type: str | None) -> str:
    """The boundary parameter of a ``multipart/form-data`` Content-Type header value."""
    if not content_type:
        raise InvalidForm(
            "the upload has no Content-Type; send it as multipart/form-data "
            "(as twine, uv publish and poetry publish do)"
        )
    media, params = parse_header_value(content_type)
    if media != "multipart/form-data":
        raise InvalidForm(
            f"the upload is {media[:100]!r}, not multipart/form-data; use twine, "
            "uv publish or poetry publish, or send the legacy upload form"
        )
    boundary = params.get("boundary")
    if boundary is None:
        raise InvalidForm("the multipart/form-data Content-Type has no boundary parameter")
    if not _BCHARS.match(boundary):
        raise InvalidForm(
            "the multipart boundary is not valid (1 to 70 characters of RFC 2046's set, "
            "not ending in a space)"
        )
    return boundary


def parse_form(
    body: IO[bytes],
    content_type: str | None,
    open_file: OpenFile,
    *,
    file_field: str = "content",
    keep: Collection[str] = (),
    limits: FormLimits = FormLimits(),
) -> Form:
    """Read the form in ``body`` (from its current position to the end).

    ``keep`` names the text fields to return; every other text part is skipped without
    being stored, however large. A kept field may appear only once (a repeated ``name``
    or ``sha256_digest`` is ambiguous, so it is refused), and so may the file part. The
    file part's filename must be a plain file name (no directories, no drive letters):
    browsers and some clients send a full path, and guessing which part of it is meant is
    not worth the risk.

    Raises :class:`InvalidForm` / :class:`FormTooLarge` (both :class:`Rejected`, HTTP 400)
    or :class:`~spoold.errors.InvalidFilename`, and whatever ``open_file`` or the file
    object's ``write`` raise.
    """
    boundary = boundary_of(content_type).encode("ascii")
    reader = BufferedReader(body, limits.chunk_size)
    delimiter = b"\r\n--" + boundary
    keep = frozenset(keep)
    fields: dict[str, str] = {}
    skipped: set[str] = set()
    file_part: FilePart | None = None
    file_size = 0

    # The first delimiter may start the body (no CRLF before it): pretend there was one.
    reader.prepend(b"\r\n")
    if not reader.skip_until(delimiter):
        raise InvalidForm(
            "the upload form has no part: its boundary never appears in the body "
            "(was the body cut short, or the boundary in Content-Type wrong?)"
        )
    parts = 0
    while True:
        if _read_after_delimiter(reader):
            break  # the closing delimiter; anything after it is epilogue and ignored
        parts += 1
        if parts > limits.max_parts:
            raise FormTooLarge(f"the upload form has more than {limits.max_parts} parts")
        headers = _read_part_headers(reader, limits)
        name, filename, part_type = _describe_part(headers)
        if filename is not None and name == file_field:
            if file_part is not None:
                raise InvalidForm(f"the upload form has more than one {file_field!r} file part")
            check_filename(filename)
            file_part = FilePart(name, filename, part_type)
            sink = open_file(file_part, dict(fields))
            file_size = reader.copy_until(delimiter, sink.write, _unterminated(name))
        elif name == file_field:
            raise InvalidForm(
                f"the {file_field!r} part of the upload form is not a file part "
                "(its Content-Disposition has no filename)"
            )
        elif filename is None and name in keep:
            if name in fields:
                raise InvalidForm(f"the upload form has the field {name!r} more than once")
            fields[name] = _read_field(reader, delimiter, name, limits)
        else:
            reader.copy_until(delimiter, None, _unterminated(name))
            if len(skipped) < 256:
                skipped.add(name[:100])
    return Form(fields=fields, file=file_part, file_size=file_size, skipped=frozenset(skipped))


# -- parts ---------------------------------------------------------------------------------


def _unterminated(name: str) -> str:
    return (
        f"the upload form ends inside the part {name[:100]!r} (no closing boundary): "
        "the upload was cut short; send it again"
    )


def _read_after_delimiter(reader: BufferedReader) -> bool:
    """After a delimiter: True for the closing ``--``, False for CRLF (a part follows)."""
    if reader.peek(2) == b"--":
        return True
    line = reader.read_line(1024)
    if line is None:
        raise InvalidForm(
            "the upload form ends without its closing boundary: the upload was cut short; "
            "send it again"
        )
    if line.strip(b" \t"):
        raise InvalidForm("the upload form has text after a boundary where a line end belongs")
    return False


def _read_part_headers(reader: BufferedReader, limits: FormLimits) -> dict[str, str]:
    headers: dict[str, str] = {}
    total = 0
    while True:
        line = reader.read_line(limits.max_part_header - total)
        if line is None:
            raise InvalidForm(
                "the upload form ends inside a part's headers: the upload was cut short"
            )
        if not line:
            return headers
        total += len(line) + 2
        if total > limits.max_part_header or len(headers) >= limits.max_part_headers:
            raise FormTooLarge(
                f"a part of the upload form has more than {limits.max_part_headers} header "
                f"lines or {limits.max_part_header} bytes of headers"
            )
        if line[:1] in (b" ", b"\t"):
            raise InvalidForm("a part header of the upload form is folded over two lines")
        name, colon, value = line.partition(b":")
        if not colon or not _HEADER_NAME.match(name):
            raise InvalidForm(
                f"a part of the upload form has a malformed header line {_show(line)}"
            )
        key = name.decode("ascii").lower()
        if key in headers:
            raise InvalidForm(f"a part of the upload form has the header {key!r} twice")
        headers[key] = value.strip(b" \t").decode("utf-8", "surrogateescape")


def _describe_part(headers: Mapping[str, str]) -> tuple[str, str | None, str]:
    """(field name, filename or None, content type) from a part's headers."""
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise InvalidForm("a part of the upload form has no Content-Disposition header")
    kind, params = parse_header_value(disposition)
    if kind != "form-data":
        raise InvalidForm(
            f"a part of the upload form is {kind[:50]!r}, not form-data (Content-Disposition)"
        )
    name = params.get("name")
    if name is None:
        raise InvalidForm("a part of the upload form has no name in its Content-Disposition")
    _check_text(name, "a part name")
    encoding = headers.get("content-transfer-encoding", "binary").strip().lower()
    if encoding not in ("binary", "8bit", "7bit"):
        raise InvalidForm(
            f"the part {name[:100]!r} uses Content-Transfer-Encoding {encoding[:30]!r}; "
            "send parts as binary"
        )
    filename: str | None
    if "filename*" in params:
        filename = extended_value(params["filename*"])
    else:
        filename = params.get("filename")
    if filename is not None:
        _check_text(filename, "the filename")
        filename = html5_unescape(filename)
    part_type = headers.get("content-type", "text/plain" if filename is None else "application/octet-stream")
    return name, filename, part_type


def _read_field(reader: BufferedReader, delimiter: bytes, name: str, limits: FormLimits) -> str:
    chunks: list[bytearray] = []
    size = 0

    def collect(data: bytearray) -> None:
        nonlocal size
        size += len(data)
        if size > limits.max_field_size:
            raise FormTooLarge(
                f"the field {name[:100]!r} of the upload form is longer than "
                f"{limits.max_field_size} bytes"
            )
        chunks.append(data)

    reader.copy_until(delimiter, collect, _unterminated(name))
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidForm(f"the field {name[:100]!r} of the upload form is not UTF-8") from None


def _check_text(value: str, what: str) -> None:
    """Header values are decoded with surrogateescape; a surrogate means bytes not UTF-8."""
    if any("\udc80" <= c <= "\udcff" for c in value):
        raise InvalidForm(f"{what} in the upload form is not UTF-8")
    if "\x00" in value:
        raise InvalidForm(f"{what} in the upload form contains a NUL character")


def _show(line: bytes) -> str:
    return repr(line[:60].decode("ascii", "backslashreplace"))
