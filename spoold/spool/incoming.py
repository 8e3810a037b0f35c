"""Deciding when a file in ``incoming/`` is complete enough to take.

Plain scp and sftp write files in place, so a file there may still be growing. These pure
functions look at one file and say what to do with it; :meth:`spoold.spool.queue.Spool.take_incoming`
acts on the answer. No decision needs memory of an earlier scan, so any number of workers
can look at the same folder and agree.
"""

from __future__ import annotations

import enum
import errno
import os
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from spoold.hashing import hash_file
from spoold.safeopen import open_regular, read_regular
from spoold.spool.names import is_hidden_or_partial

SIDECAR_SUFFIX = ".sha256"
_SIDECAR_LINE = re.compile(r"^\\?([0-9a-fA-F]{64})(?:\s+\*?(.*))?$")
_CHUNK = 1 << 20


class Verdict(enum.Enum):
    WAIT = "wait"  # still being written, or not settled: look again later
    TAKE = "take"  # complete: rename it into the spool
    FAIL = "fail"  # complete but wrong (sidecar mismatch) or abandoned: to failed/
    IGNORE = "ignore"  # not a candidate at all (dotfile, partial name, sidecar, directory)


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    code: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class IncomingPolicy:
    #: Seconds without any write (mtime) or attribute change (ctime) before a file with
    #: no sidecar is presumed closed by its writer.
    settle: float = 30.0
    #: A file still incomplete after this long is abandoned and moved to ``failed/``.
    expire: float = 36 * 3600.0


def decide(path: Path, now: float, policy: IncomingPolicy = IncomingPolicy()) -> Decision:
    """What to do with one entry of ``incoming/``."""
    name = path.name
    if is_hidden_or_partial(name) or name.endswith(SIDECAR_SUFFIX):
        return Decision(Verdict.IGNORE)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Decision(Verdict.IGNORE)
    if not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode) or now - st.st_ctime < policy.settle:
            return Decision(Verdict.IGNORE)
        if stat.S_ISLNK(st.st_mode):
            # Taking a link would publish whatever it points at, with spoold's rights.
            return Decision(Verdict.FAIL, "not-a-file", "symbolic links are not accepted; copy the file itself")
        return Decision(Verdict.FAIL, "not-a-file",
                        "only regular files are accepted (not FIFOs, devices or sockets); copy the file itself")
    quiet_for = now - max(st.st_mtime, st.st_ctime)
    settled = quiet_for >= policy.settle
    expired = quiet_for >= policy.expire

    sidecar = path.with_name(name + SIDECAR_SUFFIX)
    expected = read_sidecar(sidecar, name)
    if expected is not None:
        if expected == "":
            if settled:
                return Decision(Verdict.FAIL, "sidecar-invalid", f"{sidecar.name} is not in sha256sum format")
            return Decision(Verdict.WAIT)
        try:
            actual = hash_file(path, blake2=False).sha256
        except OSError:  # replaced or removed since the lstat: look again next round
            return Decision(Verdict.WAIT)
        if actual == expected:
            return Decision(Verdict.TAKE)
        if settled:
            return Decision(
                Verdict.FAIL,
                "sidecar-mismatch",
                f"sha256 of the file is {actual} but {sidecar.name} says {expected}; "
                "the transfer was corrupted or the sidecar belongs to another file: send both again",
            )
        return Decision(Verdict.WAIT)

    if not settled:
        return Decision(Verdict.WAIT)
    problem = structural_problem(path)
    if problem is None:
        return Decision(Verdict.TAKE)
    if expired:
        return Decision(
            Verdict.FAIL,
            "incomplete-transfer",
            f"the file is still incomplete ({problem}) after {policy.expire / 3600:.0f} hours; send it again",
        )
    return Decision(Verdict.WAIT)


def read_sidecar(sidecar: Path, name: str) -> str | None:
    """The sha256 a ``NAME.sha256`` file declares: None if absent, "" if unreadable."""
    try:
        text = read_regular(sidecar, 64 * 1024)[: 64 * 1024].decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    except OSError as e:
        return None if e.errno == errno.ENAMETOOLONG else ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        m = _SIDECAR_LINE.match(line)
        if m and (m[2] in (None, "", name) or len(lines) == 1):
            return m[1].lower()
    return ""


def structural_problem(path: Path) -> str | None:
    """Why a file cannot be a finished archive yet, or None if its structure is complete.

    Only the framing is checked (zip central directory, gzip end of stream): enough to
    tell a transfer in progress from a finished one. Content is judged later, by the worker.
    """
    name = path.name.lower()
    if name.endswith((".whl", ".zip")):
        try:
            with open_regular(path) as f, zipfile.ZipFile(f):
                return None
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            return f"no complete zip directory: {e}"
    if name.endswith((".tar.gz", ".tgz")):
        return _gzip_problem(path)
    return None


def _gzip_problem(path: Path) -> str | None:
    decomp = zlib.decompressobj(wbits=31)
    try:
        with open_regular(path) as f:
            while chunk := f.read(_CHUNK):
                data = chunk
                while data:
                    decomp.decompress(data, _CHUNK)
                    data = decomp.unconsumed_tail
                if decomp.eof:
                    return None
    except zlib.error as e:
        return f"corrupt gzip stream: {e}"
    except OSError as e:
        return str(e)
    return None if decomp.eof else "the gzip stream ends early"
