"""Editing the accounts: ``spoold user add``, ``user remove``, ``user list``.

The file is the Apache htpasswd format (:mod:`spoold.access.htpasswd` reads and checks
it). Every change writes a whole new file beside the old one and renames it over it, so a
running server -- which re-reads the file when it changes -- never sees half a file.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import sys
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from spoold.access.htpasswd import BCRYPT_MAX_BYTES, CRYPT, BadCredentials, parse_file
from spoold.durable import fsync_dir, write_atomic
from spoold.errors import ConfigError

__all__ = [
    "add_user",
    "check_password_for_bcrypt",
    "check_user_name",
    "list_users",
    "password_from_stream",
    "prompt_password",
    "remove_user",
]


def check_user_name(name: str) -> str:
    """Refuse names htpasswd cannot hold or a person could not type into twine."""
    if not name:
        raise BadCredentials("the user name is empty")
    if ":" in name:
        raise BadCredentials("a user name cannot contain ':' (htpasswd separates fields with it)")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise BadCredentials("a user name cannot contain spaces or control characters")
    if len(name.encode("utf-8")) > 255:
        raise BadCredentials("a user name can be at most 255 bytes long")
    return name


def check_password_for_bcrypt(password: str) -> str:
    if not password:
        raise BadCredentials("the password is empty")
    if "\n" in password or "\r" in password or "\x00" in password:
        raise BadCredentials("a password cannot contain line breaks or NUL characters")
    if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
        raise BadCredentials(
            f"the password is longer than {BCRYPT_MAX_BYTES} bytes, and bcrypt ignores the "
            f"rest; use a password of at most {BCRYPT_MAX_BYTES} bytes"
        )
    return password


def add_user(path: str | os.PathLike[str], name: str, password: str, *, rounds: int = 12) -> bool:
    """Add ``name`` with a bcrypt entry, or replace its entry; True if the user is new.

    The file is written to a temporary name beside it and renamed over it, so a running
    server (which re-reads the file when it changes) never sees half a file. Other lines
    are kept as they were; a new file is created with mode 0600.
    """
    check_user_name(name)
    check_password_for_bcrypt(password)
    path = Path(path)
    try:
        existing = path.read_bytes()
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        existing = b""
        mode = 0o600
        _make_folders(path.parent)
    except OSError as e:
        raise ConfigError(f"cannot read htpasswd file {path}: {e.strerror}") from None
    htpasswd = parse_file(existing, path)
    new = name not in htpasswd.users()
    entry = CRYPT.handler("bcrypt").using(rounds=rounds, ident="2y").hash(password)
    htpasswd.set_hash(name, entry)
    data = htpasswd.to_string()
    try:
        write_atomic(path, data, mode=mode)
    except OSError as e:
        raise ConfigError(f"cannot write htpasswd file {path}: {e.strerror}") from None
    return new


def _read(path: Path) -> tuple[bytes, int]:
    try:
        return path.read_bytes(), stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return b"", 0o600
    except OSError as e:
        raise ConfigError(f"cannot read htpasswd file {path}: {e.strerror}") from None


def remove_user(path: str | os.PathLike[str], name: str) -> bool:
    """Remove ``name``; True if it was there. Its tokens stop working at once (a token's
    user must be in the file) and are deleted by the command."""
    path = Path(path)
    existing, mode = _read(path)
    htpasswd = parse_file(existing, path)
    if name not in htpasswd.users():
        return False
    htpasswd.delete(name)
    try:
        write_atomic(path, htpasswd.to_string(), mode=mode)
    except OSError as e:
        raise ConfigError(f"cannot write htpasswd file {path}: {e.strerror}") from None
    return True


def list_users(path: str | os.PathLike[str]) -> list[str]:
    """The user names in the file, sorted (an absent file has none)."""
    path = Path(path)
    existing, _ = _read(path)
    return sorted(parse_file(existing, path).users())


def _make_folders(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each with mode 0700 (a password file's
    folder is nobody else's business), durably."""
    missing: list[Path] = []
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for new in reversed(missing):
        try:
            os.mkdir(new, 0o700)
        except FileExistsError:
            continue
        except OSError as e:
            raise ConfigError(f"cannot create the folder {new} for the htpasswd file: {e.strerror}") from None
        with contextlib.suppress(OSError):
            fsync_dir(new.parent)


def password_from_stream(stream: TextIO) -> str:
    """The first line of ``stream`` without its line end (``--password-stdin``)."""
    line = stream.readline(4096)
    return line.rstrip("\r\n")


def prompt_password(user: str, *, ask: Callable[[str], str] = getpass.getpass,
                    err: TextIO | None = None) -> str:
    """Ask twice on the terminal; :class:`BadCredentials` if the answers differ or the
    input ends (Ctrl-D) before a password is given (the prompt's line is ended on ``err``,
    stderr by default, so the error gets a line of its own)."""
    try:
        first = ask(f"Password for {user}: ")
        second = ask("Again: ")
    except EOFError:
        print(file=err or sys.stderr)
        raise BadCredentials("no password given (the input ended); nothing was changed") from None
    if first != second:
        raise BadCredentials("the passwords do not match; nothing was changed")
    return check_password_for_bcrypt(first)
