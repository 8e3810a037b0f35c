"""``spoold token ...``, ``spoold role ...`` and ``spoold events``: access from the shell.

Whoever runs these can write the storage, so they act as the operator: no password is
asked, and the audit trail records them as ``cli (USER)``. Output is for people, or JSON
with ``--json`` (the contract's schemas). ``token create`` prints the secret once, alone
on the last line of stdout, so a script can take it with ``tail -n 1``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime

from packaging.utils import InvalidName, canonicalize_name

from spoold import config
from spoold.access.events import Event
from spoold.access.htpasswd import Htpasswd
from spoold.access.roles import Role, Roles
from spoold.access.store import AccessStore
from spoold.access.tokens import new_token, parse_expiry
from spoold.cli.exits import ExitStatus
from spoold.errors import ConfigError, SpooldError
from spoold.storage import open_storage

__all__ = ["cmd_events", "cmd_role_list", "cmd_role_set", "cmd_role_unset", "cmd_token_create",
           "cmd_token_list", "cmd_token_revoke", "operator"]


def operator() -> str:
    """How the audit trail names whoever runs a command on this host."""
    try:
        return f"cli ({getpass.getuser()})"
    except Exception:  # no user name for this uid (containers): still say it was the CLI
        return "cli"


def _settings(args: argparse.Namespace) -> config.Settings:
    return config.load(args.config, {"storage": getattr(args, "storage", None),
                                     "htpasswd": getattr(args, "htpasswd", None)})


def _store(settings: config.Settings) -> AccessStore:
    storage = open_storage(settings.storage)
    storage.probe()
    return AccessStore(storage)


def _project(name: str) -> str:
    try:
        return canonicalize_name(name, validate=True)
    except InvalidName:
        raise SpooldError(f"{name[:100]!r} is not a project name") from None


def _print_json(value: object) -> None:
    json.dump(value, sys.stdout, indent=2)
    sys.stdout.write("\n")


# -- tokens ------------------------------------------------------------------------------


def cmd_token_create(args: argparse.Namespace) -> int:
    settings = _settings(args)
    users = Htpasswd(settings.htpasswd_path).users
    if args.user not in users:
        raise ConfigError(f"no user {args.user!r} in {settings.htpasswd_path}; add one with "
                          f"`spoold user add {args.user}`")
    now = datetime.now(UTC)
    token, secret = new_token(args.user, args.scope or ["read"], args.project or [],
                              expires=parse_expiry(args.expires, now),
                              description=args.description or "", now=now)
    store = _store(settings)
    store.add_token(token)
    store.record(Event("token-create", operator(), detail=f"token {token.id} for {token.user}: "
                       f"{token.allows().split(' allows ', 1)[1]}"))
    if args.json:
        _print_json({**token.listing(None), "token": secret})
    else:
        print(f"created {token.allows()}"
              + (f", expires {token.expires.date().isoformat()}" if token.expires else "")
              + "; shown once, store it now:")
        print(secret)
    return ExitStatus.OK


def cmd_token_list(args: argparse.Namespace) -> int:
    store = _store(_settings(args))
    tokens = store.tokens(args.user)
    listing = [t.listing(store.last_used(t.id)) for t in tokens]
    if args.json:
        _print_json(listing)
        return ExitStatus.OK
    if not listing:
        print("no tokens" + (f" for {args.user}" if args.user else ""))
    for item in listing:
        projects = ",".join(item["projects"]) or "*"
        print(f"{item['id']}  {item['user']:<16} {'+'.join(item['scopes']):<12} {projects:<24} "
              f"expires {item['expires'] or 'never'}  last used {item['last_used'] or 'never'}"
              + (f"  {item['description']}" if item["description"] else ""))
    return ExitStatus.OK


def cmd_token_revoke(args: argparse.Namespace) -> int:
    store = _store(_settings(args))
    token = store.revoke_token(args.token_id)
    if token is None:
        print(f"spoold token revoke: no token {args.token_id!r}", file=sys.stderr)
        return ExitStatus.FAILED
    store.record(Event("token-revoke", operator(), detail=f"token {token.id} of {token.user}"))
    print(f"revoked token {token.id} of {token.user}")
    return ExitStatus.OK


# -- roles -------------------------------------------------------------------------------


def cmd_role_list(args: argparse.Namespace) -> int:
    roles = _store(_settings(args)).roles(_project(args.project))
    listing = roles.listing() if roles is not None else []
    if args.json:
        _print_json(listing)
    elif not listing:
        print(f"{args.project} has no roles (only admins may upload to it or manage it)")
    else:
        for item in listing:
            print(f"{item['user']:<24} {item['role']}")
    return ExitStatus.OK


def cmd_role_set(args: argparse.Namespace) -> int:
    project = _project(args.project)
    role = Role(args.role)
    store = _store(_settings(args))
    _, changed = store.change_roles(project, lambda r: (r or Roles()).with_role(args.user, role))
    if changed:
        store.record(Event("role-set", operator(), project=project, detail=f"{args.user} {role.value}"))
    print(f"{args.user} is {'now' if changed else 'already'} {role.value} of {project}")
    return ExitStatus.OK


def cmd_role_unset(args: argparse.Namespace) -> int:
    project = _project(args.project)
    store = _store(_settings(args))
    _, changed = store.change_roles(project, lambda r: r.without(args.user) if r is not None else None)
    if changed:
        store.record(Event("role-unset", operator(), project=project, detail=args.user))
        print(f"{args.user} has no role in {project} any more")
        return ExitStatus.OK
    print(f"spoold role unset: {args.user} has no role in {project}", file=sys.stderr)
    return ExitStatus.FAILED


# -- events ------------------------------------------------------------------------------


def cmd_events(args: argparse.Namespace) -> int:
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since.replace("Z", "+00:00"))
        except ValueError:
            raise SpooldError(f"--since {args.since!r} is not an ISO time (e.g. 2027-01-31T12:00Z)") from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
    store = _store(_settings(args))
    events = store.events(_project(args.project) if args.project else None, since)
    if args.json:
        _print_json([e.to_json() for e in events])
        return ExitStatus.OK
    for event in events:
        what = " ".join(x for x in (event.project, event.filename, event.detail) if x)
        print(f"{event.stamp}  {event.action:<15} {event.principal:<28} {what}"
              + (f"  from {event.address}" if event.address else ""))
    return ExitStatus.OK


def register(sub: argparse._SubParsersAction, config_help: str) -> None:  # type: ignore[type-arg]
    """The ``token``, ``role`` and ``events`` commands."""
    storage_help = "a path, file:///path or s3://bucket/prefix"

    def add(group: argparse._SubParsersAction, name: str, func, help: str) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def,type-arg]  # noqa: A002
        p = group.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        p.add_argument("--config", metavar="FILE", help=config_help)
        p.add_argument("--storage", metavar="URL", help=storage_help)
        return p

    tokens = sub.add_parser("token", help="API tokens (for CI and tools)",
                            description="API tokens (for CI and tools)").add_subparsers(
        dest="token_command", metavar="ACTION", required=True)
    p = add(tokens, "create", cmd_token_create, "create a token; prints it once, on the last line")
    p.add_argument("--user", required=True, metavar="NAME", help="the user the token acts for")
    p.add_argument("--scope", action="append", choices=["read", "upload"],
                   help="read (default) or upload (includes read); repeatable")
    p.add_argument("--project", action="append", metavar="P", help="limit to this project; repeatable")
    p.add_argument("--expires", metavar="DAYS|YYYY-MM-DD", help="valid for DAYS days or through a date")
    p.add_argument("--description", metavar="TEXT", help="what the token is for")
    p.add_argument("--htpasswd", metavar="FILE", help="the htpasswd file (the user must be in it)")
    p.add_argument("--json", action="store_true", help="an object with id and token")
    p = add(tokens, "list", cmd_token_list, "list tokens (never their secrets)")
    p.add_argument("--user", metavar="NAME", help="only this user's")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add(tokens, "revoke", cmd_token_revoke, "revoke a token (every host refuses it within page_cache seconds)")
    p.add_argument("token_id", metavar="TOKEN_ID")

    roles = sub.add_parser("role", help="project owners and maintainers",
                           description="project owners and maintainers").add_subparsers(
        dest="role_command", metavar="ACTION", required=True)
    p = add(roles, "list", cmd_role_list, "who owns and maintains a project")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add(roles, "set", cmd_role_set, "make a user owner or maintainer of a project")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("user", metavar="USER")
    p.add_argument("role", choices=["owner", "maintainer"])
    p = add(roles, "unset", cmd_role_unset, "take a user's role in a project away")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("user", metavar="USER")

    p = sub.add_parser("events", help="the audit trail", description="the audit trail")
    p.set_defaults(func=cmd_events)
    p.add_argument("--config", metavar="FILE", help=config_help)
    p.add_argument("--storage", metavar="URL", help=storage_help)
    p.add_argument("project", nargs="?", metavar="PROJECT", help="only this project's events")
    p.add_argument("--since", metavar="ISO-TIME", help="only events from this time on")
    p.add_argument("--json", action="store_true", help="machine-readable output")
