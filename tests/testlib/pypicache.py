"""Real distributions from PyPI, downloaded once with ``pip download`` and kept (for tests).

The cache directory (``$SPOOLD_TEST_CACHE``, else ``~/.cache/spoold-tests/pypi``) survives
between runs, so only the first run needs the network. Each distribution gets its own
folder, filled atomically (downloaded into a temporary folder, then renamed), so an
interrupted or concurrent run never leaves half a file behind. pip runs without the
machine's pip configuration (extra indexes, find-links, constraints) against PyPI itself
(``$SPOOLD_TEST_INDEX_URL`` names a mirror instead), keeping only its TLS settings.

A download that fails raises :class:`PyPIUnreachable`: the tests that need the files
fail with it, they never skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CPYTHON_311_MANYLINUX", "PyPIUnreachable", "Wanted", "cache_root", "fetch_all"]

#: ``pip download`` options selecting CPython 3.11 manylinux x86_64 wheels on any host.
CPYTHON_311_MANYLINUX = (
    "--only-binary", ":all:", "--python-version", "3.11", "--implementation", "cp",
    "--abi", "cp311", "--platform", "manylinux_2_28_x86_64", "--platform",
    "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
)
#: pip settings kept from the environment: how to reach PyPI, not what else to use.
_KEPT = ("PIP_CERT", "PIP_CLIENT_CERT", "PIP_DEFAULT_TIMEOUT")


class PyPIUnreachable(Exception):
    """A distribution could not be downloaded (no network, PyPI down, file removed)."""


@dataclass(frozen=True)
class Wanted:
    """One distribution file to download: a pinned requirement and the kind of file."""

    requirement: str
    kind: str  # "wheel" or "sdist"
    #: A CPython 3.11 manylinux x86_64 wheel rather than a pure one.
    platform: bool = False

    @property
    def project(self) -> str:
        return re.split(r"[=<>!~ ]", self.requirement, maxsplit=1)[0]

    @property
    def key(self) -> str:
        tag = "cp311-manylinux" if self.platform else self.kind
        return re.sub(r"[^A-Za-z0-9.]+", "_", f"{self.requirement}-{tag}")

    def pip_args(self) -> list[str]:
        if self.kind == "wheel":
            selection = list(CPYTHON_311_MANYLINUX) if self.platform else ["--only-binary", ":all:"]
        else:
            # pip prepares an sdist's metadata even with --no-deps; build it with the
            # backends installed here rather than fetching them from PyPI too.
            selection = ["--no-binary", self.project, "--no-build-isolation"]
        return ["download", "--no-deps", "--no-cache-dir", *selection, self.requirement]


def cache_root() -> Path:
    configured = os.environ.get("SPOOLD_TEST_CACHE")
    root = Path(configured) if configured else Path.home() / ".cache" / "spoold-tests" / "pypi"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in _KEPT}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _cached(folder: Path) -> Path | None:
    files = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    return files[0] if len(files) == 1 else None


def fetch_all(wanted: Iterable[Wanted], *, jobs: int = 4, timeout: float = 600) -> dict[Wanted, Path]:
    """The cached file of each wanted distribution, downloading the missing ones (*jobs* at once)."""
    root = cache_root()
    index_url = os.environ.get("SPOOLD_TEST_INDEX_URL", "https://pypi.org/simple")
    found: dict[Wanted, Path] = {}
    missing = []
    for item in wanted:
        path = _cached(root / item.key)
        if path is None:
            missing.append(item)
        else:
            found[item] = path
    while missing:
        batch, missing = missing[:jobs], missing[jobs:]
        running = []
        for item in batch:
            staging = Path(tempfile.mkdtemp(prefix=f".{item.key}.", dir=root))
            command = [sys.executable, "-m", "pip", *item.pip_args(), "--index-url", index_url,
                       "--dest", str(staging)]
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True, env=_environment(), cwd=staging)
            running.append((item, staging, process))
        for item, staging, process in running:
            try:
                output, _ = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                output = process.communicate()[0] + f"\n(killed after {timeout:g} s)"
            files = [p for p in staging.iterdir() if p.is_file()]
            if process.returncode != 0 or len(files) != 1:
                shutil.rmtree(staging, ignore_errors=True)
                raise PyPIUnreachable(
                    f"could not download {item.requirement} ({item.kind}) from {index_url}: pip "
                    f"download exited {process.returncode} with {len(files)} file(s). PyPI was "
                    f"unreachable, or the file is gone; this test needs PyPI or a filled cache "
                    f"({root}). pip said:\n{output[-3000:]}"
                )
            folder = root / item.key
            try:
                staging.rename(folder)
            except OSError:  # filled meanwhile by a concurrent run
                shutil.rmtree(staging, ignore_errors=True)
            path = _cached(folder)
            assert path is not None, folder
            found[item] = path
    return found
