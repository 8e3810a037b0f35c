"""Run the shipped nginx site (``deploy/nginx/spoold.conf``) on a loopback port, as any user.

The site file is used as shipped except for what a deployment changes anyway, replaced
here by exact substitutions that fail loudly if the file no longer has them: its
``listen`` lines (nginx cannot listen on port 0, so a free port is found first), its
``root`` (a test's storage tree), the upstream address (a test's spoold or stand-in)
and the folder of the access-check cache.
Everything nginx writes (pid, logs, body and proxy temp files) stays in a temporary
prefix; no root-owned global path is touched.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "spoold.conf"

#: Access log lines a test can assert on: "<status> <method> <uri> <content type>".
LOG_FORMAT = '$status $request_method $request_uri "$sent_http_content_type"'


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _replace(text: str, pattern: str, replacement: str, *, count: int | None = 1) -> str:
    new, n = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if n == 0 or (count is not None and n != count):
        raise AssertionError(f"{SHIPPED.name}: expected {count or 'some'} match(es) of {pattern!r}, got {n}")
    return new


def render_site(text: str, *, port: int, root: Path, upstream: str, cache: Path) -> str:
    """The shipped site with its deployment-specific lines pointed at the test's."""
    listen = f"    listen 127.0.0.1:{port};"
    text = _replace(text, r"proxy_cache_path /var/cache/nginx/spoold-auth", f"proxy_cache_path {cache}")
    text = _replace(text, r"^[ \t]*listen[ \t]+[^;]*;[ \t]*\n", "", count=None)
    text = _replace(text, r"^(\s*server_name[^;]*;)", rf"{listen}\n\1")
    text = _replace(text, r"^(\s*)root\s+[^;]+;", rf"\g<1>root {root};")
    return _replace(text, r"^(\s*)server\s+127\.0\.0\.1:5555;", rf"\g<1>server {upstream};")


def main_config(prefix: Path) -> str:
    # As root, nginx would hand requests to workers running as "nobody", which cannot read
    # a test's private temporary directory; run them as whoever runs the test.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / (kind + '_temp')};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}daemon off;
worker_processes 1;
pid {prefix / 'nginx.pid'};
error_log {prefix / 'error.log'} info;
events {{ worker_connections 128; }}
http {{
    types {{ text/html html; application/json json; text/plain txt; }}
    default_type application/octet-stream;
    log_format spoold_test '{LOG_FORMAT}';
    access_log {prefix / 'access.log'} spoold_test;
{temp}
    include {prefix / 'spoold.conf'};
}}
"""


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    prefix: Path
    port: int
    #: The error log as it was once nginx accepted connections: configuration warnings.
    startup_log: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def access_log(self) -> list[str]:
        path = self.prefix / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: finish requests, then exit
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_nginx(
    prefix: Path, *, root: Path, upstream: str = "127.0.0.1:5555", site: Path = SHIPPED,
    timeout: float = 10.0,
) -> Nginx:
    """Start nginx in the foreground and return once it accepts connections.

    A port taken between choosing it and nginx binding it is retried with another one.
    """
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx is not installed")
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text(main_config(prefix))
    for _attempt in range(3):
        port = free_port()
        (prefix / "spoold.conf").write_text(
            render_site(site.read_text(), port=port, root=root, upstream=upstream,
                        cache=prefix / "auth-cache")
        )
        (prefix / "error.log").write_text("")
        process = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        server = Nginx(process, prefix, port)
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                server.startup_log = server.error_log()
                return server
            except OSError:
                time.sleep(0.02)
        server.stop()
        if "Address already in use" not in server.error_log():
            break
    raise RuntimeError(f"nginx did not start:\n{server.error_log()}")
