"""The ``spoold`` command line: argument parsing and dispatch, nothing else.

Each subcommand is a small function in a module of its own (:mod:`~spoold.cli.spool_commands`,
:mod:`~spoold.cli.users`, :mod:`~spoold.cli.admin`, :mod:`~spoold.cli.daemon`); every
error becomes one line on stderr and the exit status of :mod:`spoold.cli.exits`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from spoold import __version__, config
from spoold.cli import access_commands, exits, users
from spoold.cli.spool_commands import cmd_drop, cmd_retry, cmd_status
from spoold.systemd.notify import listen_environment

#: Taken at import, before anything can import Twisted's endpoints (which consume it).
_LISTEN_ENVIRONMENT = listen_environment()


def cmd_worker(args: argparse.Namespace) -> int:
    """A worker only: several may share one spool, on one host or many."""
    from spoold.cli import daemon

    settings = config.load(args.config, {"spool": args.spool, "storage": args.storage})
    return daemon.run(settings)


def cmd_serve(args: argparse.Namespace) -> int:
    """The main job: the web server and a worker in one process."""
    from spoold.cli import daemon

    settings = config.load(args.config, {
        "spool": args.spool, "storage": args.storage, "htpasswd": args.htpasswd,
        "listen": tuple(args.listen) if args.listen else None,
    })
    from twisted.internet import reactor

    from spoold.cli.endpoints import parse_endpoints

    endpoints = parse_endpoints(reactor, settings.listen, _LISTEN_ENVIRONMENT)  # before anything starts
    return daemon.run(settings, daemon.serve_extra(settings, endpoints))


def _storage_url(args: argparse.Namespace) -> str:
    return config.load(args.config, {"storage": args.storage}).storage


def cmd_reindex(args: argparse.Namespace) -> int:
    from spoold.cli import admin

    return admin.reindex_command(_storage_url(args), args.projects)


def cmd_yank(args: argparse.Namespace) -> int:
    from spoold.cli import admin

    return admin.yank_command(_storage_url(args), args.project, args.target, args.reason or "")


def cmd_unyank(args: argparse.Namespace) -> int:
    from spoold.cli import admin

    return admin.unyank_command(_storage_url(args), args.project, args.target)


def cmd_remove(args: argparse.Namespace) -> int:
    from spoold.cli import admin

    return admin.remove_command(_storage_url(args), args.project, args.filename)


def cmd_check(args: argparse.Namespace) -> int:
    from spoold.cli import check_command

    return check_command.check_command(_storage_url(args), repair=args.repair, as_json=args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spoold", description="A private Python package index built on a maildir-style spool."
    )
    parser.add_argument("--version", action="version", version=f"spoold {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, func, help: str) -> argparse.ArgumentParser:  # noqa: A002
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        p.add_argument("--config", metavar="FILE", help="TOML settings file (or $SPOOLD_CONFIG)")
        return p

    p = command("drop", cmd_drop, "deliver files into the spool atomically")
    p.add_argument("--spool", metavar="DIR", help="the spool directory")
    p.add_argument("-v", "--verbose", action="store_true", help="print each item's spool name")
    p.add_argument("files", nargs="+", metavar="FILE")

    p = command("status", cmd_status, "queue depths and failed items with their reasons")
    p.add_argument("--spool", metavar="DIR", help="the spool directory")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = command("retry", cmd_retry, "move failed items back into the queue (fix the cause first)")
    p.add_argument("--spool", metavar="DIR", help="the spool directory")
    p.add_argument("--all", action="store_true", help="every failed item")
    p.add_argument("items", nargs="*", metavar="ITEM|FILENAME",
                   help="an item name from `spoold status`, or a distribution filename")
    p = command("serve", cmd_serve, "run the web server and a worker in one process (the main job)")
    p.add_argument("--spool", metavar="DIR", help="the spool directory")
    p.add_argument("--storage", metavar="URL", help="a path, file:///path or s3://bucket/prefix")
    p.add_argument("--listen", metavar="ENDPOINT", action="append",
                   help="a Twisted server endpoint (default tcp:5555:interface=127.0.0.1); repeatable")
    p.add_argument("--htpasswd", metavar="FILE", help="users allowed to upload (bcrypt, sha256-crypt, apr1)")

    p = command("worker", cmd_worker, "run a worker only (start several for a multi-process pipeline)")
    p.add_argument("--spool", metavar="DIR", help="the spool directory")
    p.add_argument("--storage", metavar="URL", help="a path, file:///path or s3://bucket/prefix")

    users.register(sub, "TOML settings file (or $SPOOLD_CONFIG)")
    access_commands.register(sub, "TOML settings file (or $SPOOLD_CONFIG)")
    from spoold.cli import import_command

    import_command.register(sub, "TOML settings file (or $SPOOLD_CONFIG)")

    storage_help = "a path, file:///path or s3://bucket/prefix"
    p = command("reindex", cmd_reindex, "rebuild manifests and pages from the stored files")
    p.add_argument("--storage", metavar="URL", help=storage_help)
    p.add_argument("projects", nargs="*", metavar="PROJECT", help="only these projects (default: all)")

    p = command("yank", cmd_yank, "yank a version or file (PEP 592): installable by exact pin only")
    p.add_argument("--storage", metavar="URL", help=storage_help)
    p.add_argument("--reason", metavar="TEXT", help="shown to users by pip")
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("target", metavar="VERSION|FILENAME")

    p = command("unyank", cmd_unyank, "undo a yank")
    p.add_argument("--storage", metavar="URL", help=storage_help)
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("target", metavar="VERSION|FILENAME")

    p = command("check", cmd_check, "verify the stored files, hashes, pages and root index")
    p.add_argument("--storage", metavar="URL", help=storage_help)
    p.add_argument("--repair", action="store_true",
                   help="fix what can be derived: pages, the root, orphans, metadata, temporary files")
    p.add_argument("--json", action="store_true", help="machine-readable report")

    p = command("remove", cmd_remove, "delete a published file (prefer yank)")
    p.add_argument("--storage", metavar="URL", help=storage_help)
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("filename", metavar="FILENAME")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return exits.run(args.command, lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
