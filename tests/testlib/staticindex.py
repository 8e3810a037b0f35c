"""A storage tree served as a static index on 127.0.0.1, and pip run against it (for tests).

Any static web server serves spoold's tree (links are relative); ``http.server`` is the
one at hand. Every request is recorded, so a test can tell which files pip fetched (a
``.metadata`` or the distribution). pip runs isolated from the machine's configuration
(no ``pip.conf``, no ``PIP_*`` variables), so only the index under test is consulted.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["Served", "pip_environment", "run_pip", "serve_tree"]


@dataclass
class Served:
    """A running static server: the ``/simple/`` URL and the paths requested so far."""

    index_url: str
    requests: list[str] = field(default_factory=list)


class _Handler(SimpleHTTPRequestHandler):
    served: Served

    def send_head(self):  # type: ignore[no-untyped-def]
        self.served.requests.append(self.path)
        return super().send_head()

    def log_message(self, format: str, *args: object) -> None:
        return None


@contextmanager
def serve_tree(root: Path) -> Iterator[Served]:
    """Serve *root* (a local storage's root) until the block ends."""
    handler = type("Handler", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    served = Served(f"http://127.0.0.1:{server.server_address[1]}/simple/")
    handler.served = served
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def pip_environment() -> dict[str, str]:
    """The environment for a pip that reads no configuration but its command line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "AWS_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run_pip(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``python -m pip ARGS`` with this interpreter's pip, isolated (see the module doc)."""
    return subprocess.run(
        [sys.executable, "-m", "pip", *args],
        capture_output=True,
        text=True,
        env=pip_environment(),
        timeout=timeout,
        check=False,
    )
