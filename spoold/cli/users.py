"""``spoold user add|remove|list``: the accounts in the htpasswd file."""

from __future__ import annotations

import argparse
import json
import sys

from spoold import config
from spoold.access import accounts
from spoold.access.events import Event
from spoold.access.store import AccessStore
from spoold.cli.access_commands import operator
from spoold.cli.exits import ExitStatus
from spoold.errors import SpooldError, Transient
from spoold.storage import open_storage

__all__ = ["cmd_user_add", "cmd_user_list", "cmd_user_remove", "register"]


def _path(args: argparse.Namespace) -> str:
    return config.load(args.config, {"htpasswd": args.htpasswd}).htpasswd_path


def cmd_user_add(args: argparse.Namespace) -> int:
    """Add (or change the password of) a user in the htpasswd file, bcrypt-hashed."""
    path = _path(args)
    accounts.check_user_name(args.name)
    password = (accounts.password_from_stream(sys.stdin) if args.password_stdin
                else accounts.prompt_password(args.name))
    if not password:
        raise SpooldError("the password is empty")
    new = accounts.add_user(path, args.name, password)
    print(f"{'added' if new else 'changed the password of'} {args.name} in {path}"
          + ("; a running server picks it up on its own (or on SIGHUP)" if new else ""))
    return ExitStatus.OK


def cmd_user_remove(args: argparse.Namespace) -> int:
    """Remove a user; their tokens stop working at once and are deleted."""
    settings = config.load(args.config, {"htpasswd": args.htpasswd, "storage": args.storage})
    if not accounts.remove_user(settings.htpasswd_path, args.name):
        print(f"spoold user remove: no user {args.name!r} in {settings.htpasswd_path}", file=sys.stderr)
        return ExitStatus.FAILED
    print(f"removed {args.name} from {settings.htpasswd_path}")
    try:
        storage = open_storage(settings.storage)
        storage.probe()
        store = AccessStore(storage)
        for token in store.tokens(args.name):
            store.revoke_token(token.id)
            store.record(Event("token-revoke", operator(), detail=f"token {token.id} of {token.user} "
                               "(user removed)"))
            print(f"revoked token {token.id}")
    except (Transient, SpooldError) as exc:
        # The user is gone, so no token of theirs is accepted anyway; say what is left.
        print(f"spoold user remove: the tokens of {args.name} were not deleted ({exc}); they "
              "no longer work, and `spoold token list` shows them", file=sys.stderr)
        return ExitStatus.FAILED
    return ExitStatus.OK


def cmd_user_list(args: argparse.Namespace) -> int:
    settings = config.load(args.config, {"htpasswd": args.htpasswd})
    users = accounts.list_users(settings.htpasswd_path)
    if args.json:
        json.dump([{"user": u, "admin": u in settings.admins} for u in users], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for user in users:
            print(user + ("  (admin)" if user in settings.admins else ""))
    return ExitStatus.OK


def register(sub: argparse._SubParsersAction, config_help: str) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("user", help="manage users", description="manage users (the htpasswd file)")
    users = p.add_subparsers(dest="user_command", metavar="ACTION", required=True)

    def add(name: str, func, help: str) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]  # noqa: A002
        u = users.add_parser(name, help=help, description=help)
        u.set_defaults(func=func)
        u.add_argument("--config", metavar="FILE", help=config_help)
        u.add_argument("--htpasswd", metavar="FILE",
                       help="the htpasswd file (default: htpasswd in the data directory; created if missing)")
        return u

    u = add("add", cmd_user_add, "add a user (or change a password), bcrypt-hashed")
    u.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    u.add_argument("name", metavar="NAME")
    u = add("remove", cmd_user_remove, "remove a user (their tokens stop working)")
    u.add_argument("--storage", metavar="URL", help="where their tokens are")
    u.add_argument("name", metavar="NAME")
    u = add("list", cmd_user_list, "list the users")
    u.add_argument("--json", action="store_true", help="machine-readable output")
