"""The shipped nginx site (deploy/nginx/spoold.conf) serves a tree spoold published.

The tree is built with spoold's own library (a wheel from ``distbuild``, inspected and
published into local storage); nginx serves it as shipped, on a loopback port (see
``nginxserver``). pip installs from it with hash checking; PEP 691 negotiation, content
types and caching headers are checked request by request. Everything spoold must answer
(uploads, health, metrics, non-normalized names) is checked against a recording stand-in
upstream, because that is about nginx's routing, not about spoold.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin

import pytest

from testlib.distbuild import metadata_text, write_wheel
from testlib.nginxserver import SHIPPED, Nginx, free_port, nginx_binary, start_nginx
from spoold.config import Settings
from spoold.inspection.inspect import inspect_file
from spoold.index import publish
from spoold.storage.local import LocalStorage

pytestmark = pytest.mark.skipif(
    nginx_binary() is None, reason="nginx not installed: apt-get install nginx-light"
)

JSON = "application/vnd.pypi.simple.v1+json"
PIP_ACCEPT = f"{JSON}, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


# -- a stand-in for spoold behind nginx ----------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    #: The client port of nginx's connection: the same port again means a reused connection.
    client_port: int = 0


@dataclass
class Upstream:
    """Records what nginx passes on; POST bodies are read in two halves so a test can tell
    whether nginx forwarded the request before the client finished sending it."""

    port: int
    seen: list[Seen] = field(default_factory=list)
    first_half: threading.Event = field(default_factory=threading.Event)
    

def make_handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status: int, body: bytes, **headers: str) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _record(self, body: bytes = b"") -> None:
            upstream.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body,
                                      self.client_address[1]))

        def do_GET(self) -> None:
            self._record()
            if re.match(r"^/simple/[a-z0-9]+(-[a-z0-9]+)*/$", self.path) or self.path.startswith("/packages/"):
                self._answer(404, b"Not found", Content_Type="text/plain")  # as spoold: absent
            elif self.path.startswith("/simple/"):
                self._answer(301, b"", Location="/simple/demo-pkg/")
            else:
                self._answer(200, b"from spoold " + self.path.encode(), Content_Type="text/plain")

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            half = self.rfile.read(length // 2)
            upstream.first_half.set()
            rest = self.rfile.read(length - len(half))
            self._record(half + rest)
            self._answer(200, b"published", Content_Type="text/plain")

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


@pytest.fixture(scope="module")
def _upstream() -> Iterator[Upstream]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    recorder = Upstream(server.server_address[1])
    server.RequestHandlerClass = make_handler(recorder)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()


# -- the published tree and nginx ----------------------------------------------------------


@dataclass
class Site:
    nginx: Nginx
    storage: LocalStorage
    wheel: Path
    sha256: str
    upstream: Upstream
    log_mark: int = 0

    def new_log(self) -> list[str]:
        """Access log lines written since this test began."""
        return self.nginx.access_log()[self.log_mark:]

    def get(self, path: str, **headers: str) -> tuple[http.client.HTTPResponse, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.nginx.port, timeout=20)
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            return response, response.read()
        finally:
            conn.close()

    def stored(self, key: str) -> bytes:
        return (self.storage.root / key).read_bytes()


@pytest.fixture(scope="module")
def _site(tmp_path_factory: pytest.TempPathFactory, _upstream: Upstream) -> Iterator[Site]:
    """One published tree and one nginx for the module (nothing here changes the tree)."""
    tmp_path = tmp_path_factory.mktemp("nginx-site")
    storage = LocalStorage(tmp_path / "storage")
    metadata = metadata_text("Demo_Pkg", "1.0", requires_python=">=3.8")
    wheel = write_wheel(tmp_path, "Demo_Pkg", "1.0", metadata=metadata)
    dist = inspect_file(wheel, wheel.name)
    publish(storage, dist, wheel)
    # A storage temporary file, as a crashed writer would leave it: never served.
    (storage.root / "packages/demo-pkg/.demo_pkg-1.0-py3-none-any.whl.abc.tmp").write_bytes(b"partial")
    nginx = start_nginx(tmp_path / "nginx", root=storage.root, upstream=f"127.0.0.1:{_upstream.port}")
    try:
        yield Site(nginx, storage, wheel, dist.sha256, _upstream)
    finally:
        nginx.stop()


@pytest.fixture
def site(_site: Site) -> Site:
    """The module's site with a fresh record of what reached the upstream."""
    _site.upstream.seen.clear()
    _site.upstream.first_half.clear()
    _site.log_mark = len(_site.nginx.access_log())
    return _site


def test_the_shipped_config_loads_without_warnings(site: Site) -> None:
    problems = [line for line in site.nginx.startup_log.splitlines()
                if re.search(r"\[(warn|error|crit|alert|emerg)\]", line)]
    assert problems == []


def pip(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return subprocess.run(
        [sys.executable, "-m", "pip", *args[:1], "--no-deps", "--no-cache-dir",
         "--disable-pip-version-check", "--index-url", f"{site.nginx.url}/simple/", *args[1:]],
        capture_output=True, text=True, timeout=120, check=False,
        env=env | {"PIP_CONFIG_FILE": os.devnull},
    )


def test_access_checks_reuse_connections_to_spoold(site: Site) -> None:
    """Every read is checked by a subrequest to spoold unless its answer is cached; those
    subrequests must ride the upstream keepalive pool, not open a TCP connection each
    (a location with its own proxy_set_header lines inherits none of the server's, so
    its ``Connection ""`` has to be repeated there: without it every check said "close")."""
    for i in range(12):  # other credentials each time: no cached answer
        response, _ = site.get(f"/simple/keepalive-{i}/", Authorization=f"Bearer reader-{i}")
        assert response.status == 404
    checks = [s for s in site.upstream.seen if s.path == "/_auth"]
    assert len(checks) == 12
    assert all(s.headers.get("Connection", "").lower() != "close" for s in checks)
    assert len({s.client_port for s in site.upstream.seen}) <= 2, [s.client_port for s in site.upstream.seen]


def test_one_access_check_per_reader_whatever_it_reads(site: Site) -> None:
    """The check's answer is cached by the credentials alone (spoold allows only readers of
    every project, and sends the others' reads to itself), so a reader going through many
    projects costs one Python request, not one per project."""
    for who in ("Bearer one-reader", "Basic b25lOnJlYWRlcg=="):
        for path in ("/simple/demo-pkg/", "/simple/other/", "/simple/", "/simple/demo-pkg/",
                     "/packages/demo-pkg/x.whl"):
            site.get(path, Authorization=who)
    checks = [s for s in site.upstream.seen if s.path == "/_auth"]
    assert sorted(s.headers["Authorization"] for s in checks) == ["Basic b25lOnJlYWRlcg==", "Bearer one-reader"]


def test_pip_downloads_with_hash_checking(site: Site, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"demo-pkg==1.0 --hash=sha256:{site.sha256}\n")
    result = pip(site, "download", "--dest", str(tmp_path / "out"), "-r", str(requirements))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "out" / site.wheel.name).read_bytes() == site.wheel.read_bytes()
    log = site.new_log()
    # pip asked for JSON and got it, then the wheel.
    assert f'200 GET /simple/demo-pkg/ "{JSON}"' in log
    assert f'200 GET /packages/demo-pkg/{site.wheel.name} "application/octet-stream"' in log
    # Nothing of that needed spoold but the access check (one per reader: nginx caches it).
    assert [(s.method, s.path) for s in site.upstream.seen] in ([], [("GET", "/_auth")])


def test_pip_resolves_from_pep658_metadata(site: Site, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    result = pip(site, "install", "--dry-run", "--ignore-installed", "--report", str(report), "demo-pkg")
    assert result.returncode == 0, result.stdout + result.stderr
    (item,) = json.loads(report.read_text())["install"]
    assert item["metadata"]["requires_python"] == ">=3.8"
    log = site.new_log()
    assert f'200 GET /packages/demo-pkg/{site.wheel.name}.metadata "text/plain; charset=utf-8"' in log


@pytest.mark.parametrize(
    ("query", "accept", "expected"),
    [
        ("", JSON, "json"),
        ("", "application/vnd.pypi.simple.latest+json", "json"),
        ("", PIP_ACCEPT, "json"),
        ("", "text/html", "html"),
        ("", "application/vnd.pypi.simple.v1+html", "html"),
        ("", None, "html"),
        ("", "*/*", "html"),
        ("", f"{JSON}; q=0, text/html", "html"),
        ("", f"{JSON};q=0.5, text/html", "json"),
        (f"?format={JSON}", "text/html", "json"),
        ("?format=application%2Fvnd.pypi.simple.v1%2Bjson", None, "json"),
        ("?format=text/html", JSON, "html"),
        ("?format=application/vnd.pypi.simple.v1%2Bhtml", JSON, "html"),
    ],
)
@pytest.mark.parametrize("page", ["simple/", "simple/demo-pkg/"])
def test_pep691_negotiation(site: Site, page: str, query: str, accept: str | None, expected: str) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    response, body = site.get(f"/{page}{query}", **headers)
    assert response.status == 200
    if expected == "json":
        assert response.headers["Content-Type"] == JSON
        assert body == site.stored(page + "index.v1.json")
        json.loads(body)
    else:
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert body == site.stored(page + "index.html")
    assert "Accept" in response.headers.get_all("Vary", [])
    assert response.headers["Cache-Control"] == "no-cache"


def test_pages_revalidate_with_etag(site: Site) -> None:
    first, _ = site.get("/simple/demo-pkg/", Accept=JSON)
    etag = first.headers["ETag"]
    assert etag
    again, body = site.get("/simple/demo-pkg/", Accept=JSON, **{"If-None-Match": etag})
    assert again.status == 304 and body == b""
    # The HTML page is another representation with its own validator.
    html, _ = site.get("/simple/demo-pkg/", Accept="text/html", **{"If-None-Match": etag})
    assert html.status == 200


def test_files_and_metadata(site: Site) -> None:
    response, body = site.get(f"/packages/demo-pkg/{site.wheel.name}")
    assert response.status == 200 and body == site.wheel.read_bytes()
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Length"] == str(len(body))
    assert response.headers["ETag"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"

    response, body = site.get(f"/packages/demo-pkg/{site.wheel.name}.metadata")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body == site.stored(f"packages/demo-pkg/{site.wheel.name}.metadata")
    assert b"Name: Demo_Pkg" in body


def test_project_url_without_slash_redirects_relatively(site: Site) -> None:
    response, _ = site.get("/simple/demo-pkg")
    assert response.status == 301
    assert response.headers["Location"] == "/simple/demo-pkg/"


@pytest.mark.parametrize(
    "path",
    ["/simple/nothing-here/", "/packages/demo-pkg/missing.whl", "/.spoold/generations/simple/index.html",
     "/simple/.hidden/", "/packages/demo-pkg/.demo_pkg-1.0-py3-none-any.whl.abc.tmp", "/etc/passwd",
     "/.spoold/explorer/session-secret", "/.spoold/access/tokens/", "/_auth"],
)
def test_unknown_and_private_paths_are_404(site: Site, path: str) -> None:
    response, _ = site.get(path)
    assert response.status == 404
    # Misses under /simple/ and /packages/ are spoold's to answer (so a hidden project and
    # a missing one look alike); the bookkeeping files never reach anyone.
    assert {s.path for s in site.upstream.seen} <= {"/_auth", path}
    assert not path.startswith(("/.", "/etc", "/_auth")) or site.upstream.seen == []


@pytest.mark.parametrize("name", ["Demo_Pkg", "demo.pkg", "DEMO-PKG", "demo--pkg", "demo_pkg"])
def test_non_normalized_names_go_to_spoold_for_a_redirect(site: Site, name: str) -> None:
    response, _ = site.get(f"/simple/{name}/")
    assert response.status == 301
    assert response.headers["Location"] == "/simple/demo-pkg/"
    assert [s.path for s in site.upstream.seen] == [f"/simple/{name}/"]


@pytest.mark.parametrize("path", ["/health", "/metrics", "/", "/pypi/demo-pkg/json", "/pypi/demo-pkg/1.0/json",
                                  "/project/demo-pkg/", "/project/demo-pkg/1.0/", "/search/?q=demo",
                                  "/login", "/logout", "/account/", "/static/explorer.css"])
def test_spoold_endpoints_are_proxied(site: Site, path: str) -> None:
    """spoold's own pages, the explorer and the JSON API go to spoold: the JSON documents
    stored in the tree (pypi/...) carry no access control and relative URLs."""
    if path.startswith("/pypi/"):
        assert (site.storage.root / path.lstrip("/")).is_file()  # it is there, yet not served
    response, body = site.get(path)
    assert response.status == 200 and body == b"from spoold " + path.encode()
    (seen,) = site.upstream.seen
    assert seen.headers["Host"] == f"127.0.0.1:{site.nginx.port}"
    assert seen.headers["X-Forwarded-For"] == "127.0.0.1"
    assert seen.headers["X-Forwarded-Proto"] == "http"


@pytest.mark.parametrize("path", ["/legacy/", "/"])
def test_uploads_stream_through_unbuffered(site: Site, path: str) -> None:
    """spoold sees the upload while the client is still sending it (no disk copy in nginx)."""
    body = os.urandom(256 * 1024)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{site.nginx.port}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", site.nginx.port), timeout=20) as conn:
        conn.sendall(head + body[: len(body) // 2])
        # With request buffering on, nginx would wait for the whole body first.
        assert site.upstream.first_half.wait(10), "nginx held the upload back"
        conn.sendall(body[len(body) // 2:])
        response = http.client.HTTPResponse(conn)
        response.begin()
        assert response.status == 200 and response.read() == b"published"
    (seen,) = site.upstream.seen
    assert seen.method == "POST" and seen.path == path and seen.body == body


def test_oversized_uploads_are_refused_by_nginx(site: Site) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", site.nginx.port, timeout=20)
    try:
        conn.putrequest("POST", "/legacy/")
        conn.putheader("Content-Length", str(4 << 30))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
    finally:
        conn.close()
    assert site.upstream.seen == []


def _size(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", value.lower()).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit]


def _seconds(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([smh]?)", value).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "s": 1, "m": 60, "h": 3600}[unit]


def test_limits_match_spoold() -> None:
    text = SHIPPED.read_text()
    body_limit = _size(re.search(r"^\s*client_max_body_size\s+(\S+);", text, re.M)[1])  # type: ignore[index]
    max_upload = Settings().max_upload
    # Room for the form fields around the file, so spoold answers "too large" itself.
    assert max_upload < body_limit <= max_upload + (16 << 20)
    read_timeout = _seconds(re.search(r"^\s*proxy_read_timeout\s+(\S+);", text, re.M)[1])  # type: ignore[index]
    assert read_timeout >= 300  # an upload waits for its file to be published
    assert re.search(r"^\s*proxy_request_buffering\s+off;", text, re.M)


# -- the whole deployment: socket-activated spoold behind nginx ----------------------------


def _wait_for_health(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> dict:
    """The first connection makes systemd-socket-activate start spoold; wait until it answers."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"spoold exited with {proc.returncode}:\n{log.read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
            conn.request("GET", "/health")
            response = conn.getresponse()
            body = response.read()
            conn.close()
            if response.status == 200:
                return json.loads(body)
        except (ConnectionError, http.client.HTTPException, socket.timeout):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"spoold did not answer /health:\n{log.read_text()}")
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None,
                    reason="systemd-socket-activate is not installed")
def test_twine_uploads_through_nginx_to_a_socket_activated_spoold(tmp_path: Path) -> None:
    """The shipped pieces together: spoold.socket's socket (name "http") adopted by
    `spoold serve --listen systemd:domain=INET:name=http`, nginx in front serving the
    static tree and passing uploads on; twine uploads, pip installs."""
    from spoold.access.accounts import add_user

    htpasswd = tmp_path / "htpasswd"
    add_user(htpasswd, "alice", "correct horse", rounds=4)
    storage = tmp_path / "storage"
    config = tmp_path / "spoold.toml"
    config.write_text(f'spool = "{tmp_path / "spool"}"\nstorage = "{storage}"\n'
                      f'htpasswd = "{htpasswd}"\nscan_interval = 0.5\n')
    storage.mkdir()
    port = free_port()
    log = tmp_path / "spoold.log"
    with open(log, "wb") as out:
        spoold = subprocess.Popen(
            ["systemd-socket-activate", "--listen", f"127.0.0.1:{port}", "--fdname=http",
             sys.executable, "-m", "spoold", "serve", "--config", str(config),
             "--listen", "systemd:domain=INET:name=http"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    nginx = None
    try:
        _wait_for_health(port, spoold, log)
        nginx = start_nginx(tmp_path / "nginx", root=storage, upstream=f"127.0.0.1:{port}")

        dists = tmp_path / "dists"
        dists.mkdir()
        wheel = write_wheel(dists, "Demo_Pkg", "2.0")
        for url in (f"{nginx.url}/legacy/", f"{nginx.url}/"):  # twine's two usual URLs
            result = subprocess.run(
                [str(Path(sys.executable).parent / "twine"), "upload", "--repository-url", url,
                 "-u", "alice", "-p", "correct horse", "--non-interactive",
                 "--disable-progress-bar", str(wheel)],
                capture_output=True, text=True, timeout=120, check=False,
                env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
            )
            # The second upload of the same bytes is accepted too (idempotent).
            assert result.returncode == 0, result.stdout + result.stderr + log.read_text()

        sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
        requirements = tmp_path / "requirements.txt"
        requirements.write_text(f"demo-pkg==2.0 --hash=sha256:{sha256}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        # The index is private (the default): nginx asks spoold before serving a read.
        conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=20)
        conn.request("GET", "/simple/demo-pkg/")
        response = conn.getresponse()
        response.read()
        assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Basic")
        conn.close()
        authenticated = nginx.url.replace("http://", "http://alice:correct%20horse@")
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
             "--disable-pip-version-check", "--index-url", f"{authenticated}/simple/",
             "--dest", str(tmp_path / "out"), "-r", str(requirements)],
            capture_output=True, text=True, timeout=120, check=False,
            env=env | {"PIP_CONFIG_FILE": os.devnull},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert (tmp_path / "out" / wheel.name).read_bytes() == wheel.read_bytes()

        # spoold itself, through nginx: the normalizing redirect and the health document.
        conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=20)
        conn.request("GET", "/simple/Demo_Pkg/")
        response = conn.getresponse()
        response.read()
        assert response.status == 301
        assert urljoin("/simple/Demo_Pkg/", response.headers["Location"]) == "/simple/demo-pkg/"
        conn.request("GET", "/health")
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())
        conn.close()
        uploads = [line for line in nginx.access_log() if " POST " in line]
        assert [line.split()[0] for line in uploads] == ["200", "200"]
    finally:
        if nginx is not None:
            nginx.stop()
        if spoold.poll() is None:
            spoold.terminate()  # systemd-socket-activate exec'd spoold: this is spoold
        assert spoold.wait(60) == 0, log.read_text()
