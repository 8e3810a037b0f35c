"""A first start that is usable and closed: an ``admin`` with a random password.

With no user at all, ``spoold serve`` creates the user ``admin`` in the htpasswd file
with a random password, and writes the password to ``admin-password`` in the data
directory, readable by its owner only (mode 0600) -- the way Nexus Repository starts. The
log names the user and the file, never the password. Reads are private by default, so the
index is closed until someone reads that file.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from spoold.access.accounts import add_user
from spoold.durable import write_atomic
from spoold.errors import ConfigError

__all__ = ["ADMIN", "PASSWORD_FILE", "FirstAdmin", "ensure_a_user"]

ADMIN = "admin"
PASSWORD_FILE = "admin-password"


@dataclass(frozen=True, slots=True)
class FirstAdmin:
    user: str
    password_file: Path


def _has_users(htpasswd: Path) -> bool:
    try:
        text = htpasswd.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ConfigError(f"cannot read the htpasswd file {htpasswd}: {exc.strerror}") from None
    return any(line.strip() and not line.lstrip().startswith("#") and ":" in line
               for line in text.splitlines())


def ensure_a_user(htpasswd: Path, data_dir: Path, *, rounds: int = 12) -> FirstAdmin | None:
    """Create ``admin`` if the htpasswd file has no user; None if it has one already."""
    if _has_users(htpasswd):
        return None
    password = secrets.token_urlsafe(18)
    password_file = data_dir / PASSWORD_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(password_file, (password + "\n").encode("ascii"), mode=0o600)
        htpasswd.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        add_user(htpasswd, ADMIN, password, rounds=rounds)
    except OSError as exc:
        raise ConfigError(f"cannot create the first user: {exc.strerror} ({exc.filename})") from None
    os.chmod(password_file, 0o600)
    return FirstAdmin(ADMIN, password_file)
