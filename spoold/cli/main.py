"""The ``spoold`` command line: argument parsing and one-line errors, nothing else.

Each subcommand is a small function that turns parsed arguments into calls on the library;
a :class:`~spoold.errors.SpooldError` becomes one line on stderr and exit status 1, never a
traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from spoold import __version__, config
from spoold.errors import SpooldError
from spoold.inspection.filenames import parse_filename
from spoold.spool.names import display
from spoold.spool.queue import Spool


def _spool_path(args: argparse.Namespace) -> str:
    return config.load(args.config, {"spool": args.spool}).spool


def cmd_drop(args: argparse.Namespace) -> int:
    """Deliver files into the spool: each appears in new/ whole or not at all."""
    spool = Spool.open(_spool_path(args))
    status = 0
    for name in args.files:
        path = Path(name)
        try:
            if not path.is_file():
                raise SpooldError("not a regular file")
            parse_filename(path.name)  # refuse what the worker would reject by name alone
            item = spool.deliver_file(path)
        except OSError as e:
            print(f"spoold drop: {display(name)}: {e.strerror}", file=sys.stderr)
            status = 1
            continue
        except SpooldError as e:
            print(f"spoold drop: {display(name)}: {e}", file=sys.stderr)
            status = 1
            continue
        if args.verbose:
            print(item)
    return status


def cmd_status(args: argparse.Namespace) -> int:
    """Queue depths and every failed item with its reason."""
    status = Spool.open(_spool_path(args), writable=False).status()
    if args.json:
        json.dump(status.as_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for folder, count in status.counts.items():
        print(f"{folder:<9} {count}")
    if status.failures:
        print("\nfailed:")
        for failure in status.failures:
            print(f"  {failure.filename}: [{failure.code}] {failure.error}")
    return 0


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
    return daemon.run(settings, daemon.serve_extra(settings))


def cmd_user_add(args: argparse.Namespace) -> int:
    """Add (or change the password of) an uploader in the htpasswd file, bcrypt-hashed."""
    from spoold.access import htpasswd as auth

    path = config.load(args.config, {"htpasswd": args.htpasswd}).htpasswd
    if path is None:
        raise SpooldError("no htpasswd file: pass --htpasswd FILE (or set htpasswd in the config)")
    auth.check_user_name(args.name)
    password = (auth.password_from_stream(sys.stdin) if args.password_stdin
                else auth.prompt_password(args.name))
    if not password:
        raise SpooldError("the password is empty")
    new = auth.add_user(path, args.name, password)
    print(f"{'added' if new else 'changed the password of'} {args.name} in {path}"
          + ("; a running server picks it up on its own (or on SIGHUP)" if new else ""))
    return 0


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
    p = command("serve", cmd_serve, "run the web server and a worker in one process (the main job)")
    p.add_argument("--spool", metavar="DIR", help="the spool directory")
    p.add_argument("--storage", metavar="URL", help="a path, file:///path or s3://bucket/prefix")
    p.add_argument("--listen", metavar="ENDPOINT", action="append",
                   help="a Twisted server endpoint (default tcp:5555:interface=127.0.0.1); repeatable")
    p.add_argument("--htpasswd", metavar="FILE", help="users allowed to upload (bcrypt, sha256-crypt, apr1)")

    p = command("worker", cmd_worker, "run a worker only (start several for a multi-process pipeline)")
    p.add_argument("--spool", metavar="DIR", help="the spool directory")
    p.add_argument("--storage", metavar="URL", help="a path, file:///path or s3://bucket/prefix")

    p = sub.add_parser("user", help="manage uploaders", description="manage uploaders")
    users = p.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    u = users.add_parser("add", help="add a user (or change a password), bcrypt-hashed",
                         description="add a user (or change a password), bcrypt-hashed")
    u.set_defaults(func=cmd_user_add)
    u.add_argument("--config", metavar="FILE", help="TOML settings file (or $SPOOLD_CONFIG)")
    u.add_argument("--htpasswd", metavar="FILE", help="the htpasswd file (created if missing)")
    u.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    u.add_argument("name", metavar="NAME")

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

    p = command("remove", cmd_remove, "delete a published file (prefer yank)")
    p.add_argument("--storage", metavar="URL", help=storage_help)
    p.add_argument("project", metavar="PROJECT")
    p.add_argument("filename", metavar="FILENAME")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SpooldError as e:
        print(f"spoold {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
