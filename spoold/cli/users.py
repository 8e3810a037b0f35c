"""``spoold user ...``: the accounts in the htpasswd file."""

from __future__ import annotations

import argparse
import sys

from spoold import config
from spoold.access import htpasswd
from spoold.cli.exits import ExitStatus
from spoold.errors import SpooldError

__all__ = ["cmd_user_add"]


def cmd_user_add(args: argparse.Namespace) -> int:
    """Add (or change the password of) an uploader in the htpasswd file, bcrypt-hashed."""
    path = config.load(args.config, {"htpasswd": args.htpasswd}).htpasswd
    if path is None:
        raise SpooldError("no htpasswd file: pass --htpasswd FILE (or set htpasswd in the config)")
    htpasswd.check_user_name(args.name)
    password = (htpasswd.password_from_stream(sys.stdin) if args.password_stdin
                else htpasswd.prompt_password(args.name))
    if not password:
        raise SpooldError("the password is empty")
    new = htpasswd.add_user(path, args.name, password)
    print(f"{'added' if new else 'changed the password of'} {args.name} in {path}"
          + ("; a running server picks it up on its own (or on SIGHUP)" if new else ""))
    return ExitStatus.OK
