"""Distribution filenames: the first gate every item passes.

The filename arrives from outside (an upload form, a file dropped by rsync or scp) and
later becomes part of a storage path and a URL, so it is checked for safety *before*
anything else looks at it, and parsed with :mod:`packaging.utils` so that spoold agrees
with pip about what a name means. Called on every upload and every spool scan: keep it
small, pure and fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from packaging.utils import (
    InvalidName,
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from spoold.errors import InvalidFilename

__all__ = ["MAX_FILENAME_LENGTH", "ParsedFilename", "check_filename", "parse_filename"]

#: Longest filename accepted anywhere (uploads, drops, ``new/``, ``incoming/``). The rule
#: is ASCII only, so characters are bytes: a spool item name (uid, state, filename) then
#: always fits the 255-byte name limit of common filesystems (checked by a test). Real
#: distribution filenames are far shorter; the longest wheels with three platform tags
#: are about 110 characters.
MAX_FILENAME_LENGTH = 140

_EXTENSIONS: tuple[tuple[str, Literal["wheel", "sdist"]], ...] = (
    (".whl", "wheel"),
    (".tar.gz", "sdist"),
    (".zip", "sdist"),
)

#: Recognisable but refused formats, with what the uploader should do instead.
_REFUSED_EXTENSIONS: dict[str, str] = {
    ".egg": "eggs are obsolete; build a wheel with `python -m build`",
    ".exe": "bdist_wininst installers are obsolete; build a wheel with `python -m build`",
    ".msi": "bdist_msi installers are obsolete; build a wheel with `python -m build`",
    ".rpm": "bdist_rpm packages are not Python distributions; build a wheel",
    ".tar.bz2": "sdists must be .tar.gz (PEP 625); rebuild with `python -m build --sdist`",
    ".tar.xz": "sdists must be .tar.gz (PEP 625); rebuild with `python -m build --sdist`",
    ".tar.zst": "sdists must be .tar.gz (PEP 625); rebuild with `python -m build --sdist`",
    ".tgz": "sdists must be named .tar.gz (PEP 625); rebuild with `python -m build --sdist`",
    ".tar": "sdists must be gzip-compressed .tar.gz (PEP 625)",
}

_ACCEPTED = "spoold accepts wheels (.whl) and source distributions (.tar.gz, .zip)"


@dataclass(frozen=True, slots=True)
class ParsedFilename:
    """What a distribution filename claims; the archive must later prove it."""

    filename: str
    #: PEP 503 normalized project name.
    project: str
    #: The version, normalized (``str(packaging.version.Version(...))``).
    version: str
    kind: Literal["wheel", "sdist"]
    #: ``".whl"``, ``".tar.gz"`` or ``".zip"``.
    extension: str


def parse_filename(name: str) -> ParsedFilename:
    """Check that *name* is a safe wheel or sdist filename and say what it claims.

    Raises :class:`~spoold.errors.InvalidFilename` with a message for the uploader.
    """
    check_filename(name)
    for extension, kind in _EXTENSIONS:
        if name.endswith(extension):
            break
    else:
        raise InvalidFilename(_unsupported_extension_message(name))
    try:
        if kind == "wheel":
            project, version, _build, _tags = parse_wheel_filename(name)
        else:
            project, version = parse_sdist_filename(name)
            # packaging only normalizes the sdist name part; make sure it is a name.
            canonicalize_name(name[: name.rindex("-")], validate=True)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidName) as exc:
        raise InvalidFilename(_packaging_message(name, kind, exc)) from None
    return ParsedFilename(
        filename=name,
        project=str(project),
        version=str(version),
        kind=kind,
        extension=extension,
    )


def check_filename(name: str) -> None:
    """Refuse names that could escape a directory or confuse a shell, a URL or a log.

    The one filename rule of spoold, applied wherever a name comes in (upload form, spool
    delivery, a file renamed into ``new/`` or dropped in ``incoming/``): 1 to
    :data:`MAX_FILENAME_LENGTH` printable ASCII characters, no whitespace, no path
    separator, no leading dot, no ``..``. Passing it only means the name is *safe*; a safe
    name that is no distribution is still delivered, then rejected with a reason.
    """
    if not name:
        raise InvalidFilename("The filename is empty; send the distribution's file name.")
    shown = repr(name[:MAX_FILENAME_LENGTH])
    if len(name) > MAX_FILENAME_LENGTH:
        raise InvalidFilename(
            f"The filename {shown}... is {len(name)} characters long; at most "
            f"{MAX_FILENAME_LENGTH} are accepted. Use a shorter project name or version."
        )
    if "/" in name or "\\" in name:
        raise InvalidFilename(
            f"The filename {shown} contains a path separator; send only the file's "
            "base name (for example 'demo-1.0-py3-none-any.whl')."
        )
    if "\x00" in name:
        raise InvalidFilename(f"The filename {shown} contains a NUL byte.")
    if not name.isascii():
        raise InvalidFilename(
            f"The filename {shown} contains non-ASCII characters; distribution filenames "
            "are ASCII (names and versions are normalized by the build tool)."
        )
    if not name.isprintable() or any(c.isspace() for c in name):
        raise InvalidFilename(
            f"The filename {shown} contains control or whitespace characters."
        )
    if name.startswith("."):
        raise InvalidFilename(
            f"The filename {shown} starts with a dot; hidden and partial-transfer files "
            "are never published."
        )
    if ".." in name:
        raise InvalidFilename(f"The filename {shown} contains '..'.")


def _unsupported_extension_message(name: str) -> str:
    lowered = name.lower()
    for extension, advice in _REFUSED_EXTENSIONS.items():
        if lowered.endswith(extension):
            return f"{name!r} is a {extension} file, which is not accepted: {advice}."
    for extension, _kind in _EXTENSIONS:
        if lowered.endswith(extension):
            return (
                f"{name!r} has an upper-case extension; rename it to end in "
                f"{extension!r} as the build tool would."
            )
    return f"{name!r} is not a distribution filename; {_ACCEPTED}."


def _packaging_message(name: str, kind: str, exc: Exception) -> str:
    if kind == "wheel":
        shape = "{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl"
    else:
        shape = "{name}-{version}.tar.gz"
    return (
        f"{name!r} is not a valid {kind} filename ({exc}); expected {shape} as written "
        "by the build tool. Do not rename distribution files."
    )
