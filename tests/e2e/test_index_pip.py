"""pip's own index parsing accepts the static tree, served by a plain web server.

A local storage is served by ``http.server`` on 127.0.0.1 (any static server would do:
links are relative). pip downloads a published wheel with ``--require-hashes`` through
the HTML page, and through the PEP 691 JSON page (a tiny content negotiation on
``Accept``, as nginx ``map`` or the spoold web layer would do). pip also fetches the PEP
658 ``.metadata`` file and checks its hash.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from spoold.index import publish, yank
from spoold.storage.local import LocalStorage
from spoold.testing.dists import make_distribution

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


class StaticIndex(SimpleHTTPRequestHandler):
    """Serves the tree; ``json`` switches on PEP 691 negotiation for ``/simple/`` pages."""

    json = False
    requests: list[tuple[str, str]]

    def send_head(self):  # type: ignore[no-untyped-def]
        accept = self.headers.get("Accept", "")
        self.requests.append((self.path, accept))
        if self.json and self.path.startswith("/simple/") and JSON_TYPE in accept:
            path = Path(self.translate_path(self.path)) / "index.v1.json"
            if path.is_file():
                data = path.read_bytes()
                self.requests.append((self.path, "served-json"))
                self.send_response(200)
                self.send_header("Content-Type", JSON_TYPE)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                import io

                return io.BytesIO(data)
        return super().send_head()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def served(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[LocalStorage, str, list[tuple[str, str]], str]]:
    storage = LocalStorage(tmp_path / "store")
    requests: list[tuple[str, str]] = []
    handler = type(
        "Handler", (StaticIndex,), {"json": request.param == "json", "requests": requests}
    )
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(storage.root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/simple/"
        yield storage, url, requests, request.param
    finally:
        server.shutdown()
        server.server_close()


def pip(index_url: str, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "AWS_"))
    } | {"PIP_CONFIG_FILE": os.devnull}
    return subprocess.run(
        [
            sys.executable, "-m", "pip", command, "--no-deps", "--no-cache-dir",
            "--disable-pip-version-check", "--index-url", index_url, *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def pip_download(index_url: str, requirement: str, dest: Path) -> subprocess.CompletedProcess[str]:
    requirements = dest / "requirements.txt"
    requirements.write_text(requirement + "\n")
    return pip(index_url, "download", "--dest", str(dest / "out"), "-r", str(requirements))


@pytest.mark.parametrize("served", ["html", "json"], indirect=True)
def test_pip_downloads_with_require_hashes(
    served: tuple[LocalStorage, str, list[tuple[str, str]], str], tmp_path: Path
) -> None:
    storage, index_url, requests, mode = served
    dist, path = make_distribution("Demo_Pkg", "1.0", tmp_path, requires_python=">=3.8")
    newer, newer_path = make_distribution("Demo_Pkg", "2.0", tmp_path, requires_python=">=3.8")
    publish(storage, dist, path)
    publish(storage, newer, newer_path)
    yank(storage, "demo-pkg", "2.0", "do not use")

    # Unpinned: pip must skip the yanked 2.0 and take 1.0, checking the pinned hash.
    result = pip_download(index_url, f"demo-pkg --hash=sha256:{dist.sha256}", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "out" / dist.filename).read_bytes() == path.read_bytes()
    served_pages = [p for p, _ in requests if p.startswith("/simple/")]
    assert served_pages and served_pages[0].rstrip("/") == "/simple/demo-pkg"
    json_served = any(kind == "served-json" for _, kind in requests)
    assert json_served == (mode == "json")  # pip prefers PEP 691 JSON when offered

    # Resolution without download uses the PEP 658 metadata file (and checks its hash).
    del requests[:]
    report = tmp_path / "report.json"
    dry = pip(
        index_url, "install", "--dry-run", "--ignore-installed", "--report", str(report),
        "demo-pkg<2",
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert any(p.endswith(f"{dist.filename}.metadata") for p, _ in requests)
    assert not any(p.endswith(dist.filename) for p, _ in requests)
    (item,) = json.loads(report.read_text())["install"]
    assert item["metadata"]["requires_python"] == ">=3.8"
    assert item["download_info"]["archive_info"]["hashes"]["sha256"] == dist.sha256

    # A wrong hash must fail: proves pip really checked the file against the index.
    wrong = pip_download(index_url, f"demo-pkg==1.0 --hash=sha256:{'0' * 64}", tmp_path)
    assert wrong.returncode != 0
    assert "HASHES" in wrong.stdout + wrong.stderr
