"""Exit statuses: one scheme for every ``spoold`` command, and the one-line error.

=====  ===========  =================================================================
  0    OK           done (also when there was nothing to change: commands are idempotent)
  1    FAILED       the command ran but could not do all that was asked: an unknown
                    project, file or version, a file refused, damage found by ``check``
  2    USAGE        the command line is wrong (argparse says how)
 70    SOFTWARE     a bug in spoold (the message says so; please report it)
 75    TEMPFAIL     the storage or the network is unavailable right now; nothing was
                    lost, run the command again
 78    CONFIG       a setting, path, permission, endpoint or storage URL must be fixed
                    (systemd units use ``RestartPreventExitStatus=78``: no restart loop)
130    INTERRUPTED  Ctrl-C
=====  ===========  =================================================================

The numbers above 2 are the BSD ``sysexits.h`` ones, which systemd knows by name.
Errors are printed as one line on stderr, ``spoold COMMAND: error: MESSAGE``, never as a
traceback (``SPOOLD_DEBUG=1`` adds the traceback of a bug).
"""

from __future__ import annotations

import enum
import os
import sys
import traceback
from collections.abc import Callable
from typing import TextIO

from spoold.errors import ConfigError, SpooldError, Transient

__all__ = ["ExitStatus", "report", "run", "status_of"]


class ExitStatus(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    SOFTWARE = 70
    TEMPFAIL = 75
    CONFIG = 78
    INTERRUPTED = 130


def status_of(exc: BaseException) -> ExitStatus:
    """The status an error ends a command with."""
    if isinstance(exc, ConfigError):
        return ExitStatus.CONFIG
    if isinstance(exc, Transient):
        return ExitStatus.TEMPFAIL
    if isinstance(exc, (SpooldError, OSError)):
        return ExitStatus.FAILED
    if isinstance(exc, KeyboardInterrupt):
        return ExitStatus.INTERRUPTED
    return ExitStatus.SOFTWARE


def _message(exc: BaseException) -> str:
    if isinstance(exc, Transient):
        return f"{exc} (nothing was lost; run it again)"
    if isinstance(exc, SpooldError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    return f"internal error ({type(exc).__name__}: {exc}); this is a bug in spoold, please report it"


def report(command: str, exc: BaseException, err: TextIO | None = None) -> ExitStatus:
    """Print the one-line error for ``exc`` and return its status."""
    line = " ".join(_message(exc).split())
    print(f"spoold {command}: error: {line}", file=err or sys.stderr)
    return status_of(exc)


def run(command: str, action: Callable[[], int], err: TextIO | None = None) -> int:
    """Run a command's body, turning every error into its line and status."""
    try:
        return action()
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error worth a message.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.OK
    except Exception as exc:  # every failure ends as one line, never a traceback
        status = report(command, exc, err)
        if status is ExitStatus.SOFTWARE and os.environ.get("SPOOLD_DEBUG"):
            traceback.print_exc()
        return status
