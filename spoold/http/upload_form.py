"""The upload form policy: which legacy upload forms spoold takes, and delivering one.

Pure synchronous code, no Twisted: a form body (a file) in, a spool delivery in ``new/``
out, or a :class:`~spoold.errors.Rejected` subclass with a message for the uploader. The
web layer (:mod:`spoold.web.upload`) runs :func:`receive_upload` in a thread once the
body is on disk and the credentials are checked.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import IO, Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from spoold.errors import Rejected
from spoold.hashing import Hasher
from spoold.http.multipart import FilePart, FormLimits, parse_form
from spoold.inspection.digests import DECLARED_FIELDS, check_declared
from spoold.inspection.filenames import ParsedFilename, parse_filename
from spoold.spool.queue import Spool
from spoold.spool.records import ItemMeta

__all__ = [
    "UPLOAD_FIELDS",
    "Received",
    "UploadRefused",
    "check_form",
    "receive_upload",
]

#: The form fields spoold reads; all others (description, classifiers...) are skipped.
UPLOAD_FIELDS = frozenset(
    {":action", "protocol_version", "name", "version", "filetype", *DECLARED_FIELDS}
)
#: Fields that must come before the file part for it to go straight into a delivery.
_REQUIRED = frozenset({":action", "name", "version", "filetype"})
_FILETYPES = {"sdist": "sdist", "bdist_wheel": "wheel"}


class UploadRefused(Rejected):
    """The form is well formed but not an upload spoold accepts (wrong action, missing or
    contradictory fields)."""

    code = "bad-upload"


@dataclass(frozen=True, slots=True)
class Received:
    """An upload now in ``new/``: its item name, for waiting on the outcome."""

    item: str
    filename: str
    project: str
    version: str
    size: int
    sha256: str


def check_form(fields: Mapping[str, str], parsed: ParsedFilename) -> None:
    """Refuse forms that are not a legacy ``file_upload`` matching the file's name.

    The same rules as PyPI (Warehouse), so a package that uploads here uploads there:
    the action and protocol, a filetype agreeing with the file, the name and version of
    the form agreeing with the filename, and at least one digest to check the bytes by.
    """
    action = fields.get(":action")
    if action is None:
        raise UploadRefused("the upload form has no ':action' field; use twine, uv publish or poetry publish")
    if action != "file_upload":
        raise UploadRefused(
            f"spoold only supports ':action' = 'file_upload', not {action[:50]!r} "
            "(registering a project first is not needed)"
        )
    protocol = fields.get("protocol_version")
    if protocol is not None and protocol != "1":
        raise UploadRefused(f"spoold speaks upload protocol_version 1, not {protocol[:20]!r}")
    filetype = fields.get("filetype")
    if filetype not in _FILETYPES:
        raise UploadRefused(
            "the 'filetype' field must be 'sdist' or 'bdist_wheel'"
            + (f", not {filetype[:30]!r}" if filetype else " and is missing")
        )
    if _FILETYPES[filetype] != parsed.kind:
        raise UploadRefused(
            f"the 'filetype' field says {filetype} but {parsed.filename} is a{'n sdist' if parsed.kind == 'sdist' else ' wheel'}"
        )
    name = fields.get("name")
    if not name:
        raise UploadRefused("the upload form has no 'name' field")
    if canonicalize_name(name) != parsed.project:
        raise UploadRefused(
            f"the form names the project {name[:100]!r} but the file {parsed.filename} "
            f"is for {parsed.project!r}"
        )
    version = fields.get("version")
    if not version:
        raise UploadRefused("the upload form has no 'version' field")
    try:
        same = Version(version) == Version(parsed.version)
    except ValueError:  # InvalidVersion, or more digits than int() takes
        raise UploadRefused(f"the 'version' field {version[:50]!r} is not a valid version") from None
    if not same:
        raise UploadRefused(
            f"the form says version {version[:50]!r} but the file {parsed.filename} is "
            f"version {parsed.version}"
        )
    if not any(fields.get(f, "").strip() for f in DECLARED_FIELDS):
        raise UploadRefused(
            "the upload form has no digest (sha256_digest, blake2_256_digest or md5_digest); "
            "spoold checks every upload against one"
        )


def _meta(fields: Mapping[str, str], origin: ItemMeta) -> ItemMeta:
    """What the worker gets with the item (``meta.json``): who sent it (``origin``: the
    uploader, token, address, client) and the form's declared digests and fields."""
    digests = {k: fields[k].strip().lower() for k in DECLARED_FIELDS if fields.get(k, "").strip()}
    return replace(
        origin,
        via="upload",
        name=fields.get("name") or None,
        version=fields.get("version") or None,
        filetype=fields.get("filetype") or None,
        **digests,
    )


class _HashingWriter:
    """Writes through to the destination while hashing (one pass over the bytes)."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.hasher = Hasher(md5=True)

    def write(self, data: bytes | bytearray) -> int:
        self.hasher.update(data)
        self.target.write(data)
        return len(data)


def receive_upload(
    body: IO[bytes],
    content_type: str | None,
    spool: Spool,
    origin: ItemMeta,
    *,
    limits: FormLimits | None = None,
    authorize: Callable[[ParsedFilename], None] | None = None,
) -> Received:
    """Parse an upload form from ``body`` and deliver its file into the spool.

    ``origin`` says who sends it (recorded in ``meta.json``); ``authorize`` is asked as
    soon as the file part names its project, before a byte of it is copied, and raises
    (a :class:`~spoold.errors.Rejected` with status 403) if the sender may not upload
    there. Blocking; run it in a thread. The file part is written straight into a spool
    delivery when the form's fields came before it (as every known client sends them),
    and through a temporary file in ``tmp/`` otherwise. The delivery is committed into
    ``new/`` only after the form and the digests check out; on any error nothing is left
    behind. Raises :class:`~spoold.errors.Rejected` subclasses for the uploader's faults.
    """
    limits = limits or FormLimits()
    with contextlib.ExitStack() as stack:
        state: dict[str, Any] = {}

        def open_file(part: FilePart, fields: Mapping[str, str]) -> IO[bytes]:
            parsed = parse_filename(part.filename)  # a bad name fails before the copy
            if authorize is not None:
                authorize(parsed)  # a project the sender may not upload to: before the copy
            state["parsed"] = parsed
            if _REQUIRED <= set(fields) and any(f in fields for f in DECLARED_FIELDS):
                check_form(fields, parsed)
                delivery = stack.enter_context(spool.delivery(part.filename, _meta(fields, origin)))
                state["delivery"] = delivery
                target: Any = delivery
            else:
                target = stack.enter_context(tempfile.TemporaryFile(dir=spool.tmp))
                state["staged"] = target
            writer = _HashingWriter(target)
            state["writer"] = writer
            return writer  # type: ignore[return-value]

        form = parse_form(body, content_type, open_file, keep=UPLOAD_FIELDS, limits=limits)
        if form.file is None:
            raise UploadRefused(
                "the upload form has no 'content' file part; nothing was uploaded"
            )
        parsed: ParsedFilename = state["parsed"]
        check_form(form.fields, parsed)
        digests = state["writer"].hasher.digests()
        check_declared(digests, {k: form.fields[k] for k in DECLARED_FIELDS if k in form.fields})
        if digests.size == 0:
            raise UploadRefused(f"the file {parsed.filename} is empty")
        delivery = state.get("delivery")
        if delivery is None:
            staged = state["staged"]
            staged.seek(0)
            delivery = stack.enter_context(spool.delivery(form.file.filename, _meta(form.fields, origin)))
            shutil.copyfileobj(staged, delivery, 1 << 20)
        received = Received(
            item=delivery.item,
            filename=form.file.filename,
            project=parsed.project,
            version=parsed.version,
            size=digests.size,
            sha256=digests.sha256,
        )
    # Leaving the ExitStack committed the delivery into new/ (or aborted it on error).
    return received
