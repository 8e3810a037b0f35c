#!/usr/bin/env python3
"""HTTP: spoold against pypiserver and nginx, side by side in one run.

The same dataset for all three: 10,000 projects x 2 versions (20,000 files), and a
1,000-file store for the upload cost comparison.

* spoold: ``spoold serve`` over its storage tree;
* pypiserver (``pypiserver[cache]`` with waitress, its defaults: sha256 hashes on) over a
  directory holding the same filenames;
* nginx serving spoold's own static storage tree (the physical floor for the read path).

Servers run on core 1, the load generator (wrk, or the upload client) on core 0
(``taskset``). Figures: requests/s for ``/simple/<project>/`` and ``/simple/``, HTML and
JSON; uploads/s with twine and with raw multipart POSTs at concurrency 4; server CPU per
upload at 1,000 and 20,000 files; time from upload start to visible in the index.

``--uploads-only``: spoold's uploads alone, at 1,000 and 20,000 files in one run: server
CPU per upload for raw POSTs and for one twine process, upload-to-visible p50, and where
a raw upload's CPU goes -- ``spoold serve`` runs through ``cpu_split.py``, which counts
the CPU of each thread-pool call by function, so receiving (the gate's password and
free-space check, form parsing and the fsync'd spool delivery) and publishing (the
worker's jobs) are told apart inside the one process that does both. The password check
(bcrypt) is paid by an unmeasured first upload, as a twine run pays it once for all its
files; the server is let go idle first (after starting it sweeps its storage tree).

Needs wrk and nginx (Debian packages) and pypiserver: ``pip install -e '.[bench]'``
(``--uploads-only`` needs only twine).

Run:  python benchmarks/bench_http.py [--quick] [--pypiserver PATH-TO-pypi-server]
      python benchmarks/bench_http.py --uploads-only [--quick]
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_publish import build_store, project_name  # noqa: E402

from spoold.access.accounts import add_user  # noqa: E402
from spoold.storage import open_storage  # noqa: E402

SERVER_CPU, CLIENT_CPU = "1", "0"
JSON = "application/vnd.pypi.simple.v1+json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cpu: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *argv] if shutil.which("taskset") else argv


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- datasets ------------------------------------------------------------------------------


def tiny_wheel(project: str, version: str) -> tuple[str, bytes]:
    """A small valid wheel (spoold inspects uploads; pypiserver does not care)."""
    dist = project.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    members = {
        f"{dist}/__init__.py": b"x = 1\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}\n"
        for n, d in members.items()) + f"{info}/RECORD,,\n"
    members[f"{info}/RECORD"] = record.encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return f"{dist}-{version}-py3-none-any.whl", buf.getvalue()


def build_datasets(base: Path, projects: int) -> tuple[Path, Path]:
    """spoold's storage tree and pypiserver's flat directory, with the same filenames."""
    storage = base / f"storage-{projects}"
    build_store(open_storage(str(storage)), projects, 2)
    flat = base / f"packages-{projects}"
    flat.mkdir()
    _, data = tiny_wheel("project-000000", "0.0")
    for i in range(projects):
        dist = project_name(i).replace("-", "_")
        for v in (0, 1):
            (flat / f"{dist}-0.{v}-py3-none-any.whl").write_bytes(data)
    return storage, flat


# -- servers -------------------------------------------------------------------------------


class Proc:
    def __init__(self, argv: list[str], log: Path, url: str, env: dict[str, str] | None = None) -> None:
        self.log = log
        self.proc = subprocess.Popen(pinned(SERVER_CPU, argv), stdout=open(log, "wb"),
                                     stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        self.url = url
        wait_http(url + "/simple/")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_spoold(work: Path, storage: Path, htpasswd: Path, *, split: bool = False) -> Proc:
    """spoold as deployed behind nothing, but without the access log (nginx's is off too).

    ``split``: through ``cpu_split.py``, which counts the CPU of its thread-pool calls
    (see :func:`cpu_split`)."""
    port = free_port()
    spool = work / "spool"
    config = work / "spoold.toml"
    # Public reads (the 0.1 comparison: pypiserver and nginx check nothing either; the
    # cost of private reads is bench_private.py's); the uploader may publish anything.
    config.write_text(f'access_log = false\nread = "public"\nadmins = ["bench"]\ndata_dir = "{work / "data"}"\n')
    command = [str(HERE / "cpu_split.py")] if split else ["-m", "spoold"]
    env = {"SPOOLD_CPU_SPLIT": str(work / "cpu-split.json"), "PYTHONPATH": str(HERE.parent)} if split else None
    return Proc([sys.executable, *command, "serve", "--config", str(config), "--spool", str(spool),
                 "--storage", str(storage), "--listen", f"tcp:{port}:interface=127.0.0.1",
                 "--htpasswd", str(htpasswd)],
                work / "spoold.log", f"http://127.0.0.1:{port}", env=env)


def start_pypiserver(work: Path, flat: Path, exe: str) -> Proc:
    port = free_port()
    return Proc([exe, "run", "-p", str(port), "-i", "127.0.0.1", "-P", ".", "-a", ".",
                 "--server", "auto", str(flat)], work / "pypiserver.log", f"http://127.0.0.1:{port}")


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    fastcgi_temp_path {work}/nginx-fastcgi;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    types {{ text/html html; application/vnd.pypi.simple.v1+json json; }}
    map $http_accept $spoold_index {{
        default index.html;
        "~application/vnd\\.pypi\\.simple\\.(v1|latest)\\+json" index.v1.json;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /simple/ {{
            index $spoold_index;
            add_header Vary Accept;
        }}
    }}
}}
"""


def start_nginx(work: Path, storage: Path) -> Proc | None:
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if exe is None:
        print("nginx not found: skipping the nginx column (apt-get install nginx-light)")
        return None
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=work, port=port, root=storage))
    return Proc([exe, "-c", str(conf), "-p", str(work)], work / "nginx.log", f"http://127.0.0.1:{port}")


# -- load ----------------------------------------------------------------------------------


WRK_SCRIPT = """
local n = {projects}
local root = {root}
wrk.headers["Accept"] = "{accept}"
math.randomseed({seed})
request = function()
  if root then return wrk.format("GET", "/simple/") end
  return wrk.format("GET", string.format("/simple/project-%06d/", math.random(0, n - 1)))
end
"""


def wrk(url: str, projects: int, *, root: bool, accept: str, seconds: int, work: Path) -> float:
    script = work / "wrk.lua"
    script.write_text(WRK_SCRIPT.format(projects=projects, root="true" if root else "false",
                                        accept=accept, seed=int(time.time())))
    out = subprocess.run(pinned(CLIENT_CPU, ["wrk", "-t1", "-c8", f"-d{seconds}s", "--timeout", "30s",
                                             "-s", str(script), url]),
                         capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        print(f"  warning: {non2xx[1]} non-2xx responses from {url}")
    return float(m[1]) if m else 0.0


def post_upload(url: str, filename: str, data: bytes, auth: str | None) -> tuple[int, float]:
    boundary = "benchboundary"
    name, version = filename.split("-")[:2]
    fields = {":action": "file_upload", "protocol_version": "1", "name": name, "version": version,
              "filetype": "bdist_wheel", "pyversion": "py3", "metadata_version": "2.1",
              "sha256_digest": hashlib.sha256(data).hexdigest()}
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in fields.items())
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    host, port = url.split("//")[1].split(":")
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    conn.request("POST", "/", body=body, headers=headers)
    status = conn.getresponse().status
    conn.close()
    return status, time.perf_counter() - t0


def thread_cpu_seconds(pid: int, tid: int) -> float:
    fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: cpu_split.py's names, grouped: what receiving an upload costs, and what publishing it does.
SPLIT = {
    "gate check": ("UploadGate.check",),
    "receive": ("UploadResource._receive",),
    "publish": ("Worker._job",),
}


def cpu_split(server: Proc, work: Path, measure: Any) -> dict[str, float]:
    """CPU seconds of ``measure()`` in the server (started with ``split=True``): in all,
    on the reactor thread, in the thread-pool calls of :data:`SPLIT` and in the other
    pool calls (the worker listing new/ and looking for outcomes), and the rest (the
    filesystem watcher's threads, the pool's hand-offs)."""
    out = work / "cpu-split.json"
    out.unlink(missing_ok=True)
    os.kill(server.pid, signal.SIGUSR1)
    time.sleep(0.2)
    cpu0, reactor0 = cpu_seconds(server.pid), thread_cpu_seconds(server.pid, server.pid)
    measure()
    cpu, reactor = cpu_seconds(server.pid) - cpu0, thread_cpu_seconds(server.pid, server.pid) - reactor0
    os.kill(server.pid, signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    counts = json.loads(out.read_text())
    row = {"total": cpu, "reactor": reactor}
    for group, names in SPLIT.items():
        row[group] = sum(counts.pop(name, (0, 0.0))[1] for name in names)
    row["other pool calls"] = sum(seconds for _, seconds in counts.values())
    row["other threads"] = cpu - sum(v for k, v in row.items() if k != "total")
    return row


def settle(server: Proc, timeout: float = 120.0) -> None:
    """Wait until the server is idle (a quarter second with under 5 ms of CPU): what
    it does once after starting (spoold sweeps its storage for stale temporary files, a
    walk of the whole tree) is not what an upload costs."""
    deadline = time.monotonic() + timeout
    last = cpu_seconds(server.pid)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = cpu_seconds(server.pid)
        if now - last < 0.005:
            return
        last = now
    print(f"  warning: the server at {server.url} never went idle")


def uploads(server: Proc, count: int, projects: int, auth: str | None, concurrency: int = 4,
            split: Path | None = None) -> dict[str, Any]:
    """Raw multipart POSTs of new versions of existing projects at the given concurrency;
    then one at a time, to time upload-to-visible; then brand-new projects one at a time
    (they also add a line to the root index, which lists every project). ``split``: the
    server's work folder, when it runs through cpu_split.py: the CPU of the concurrent
    POSTs is split too (``"split"``).

    One upload goes first, unmeasured: it pays for the password check (bcrypt, remembered
    for the next five minutes, as a twine run of many files pays it once), and the server
    is let go idle before the measured ones."""
    os.sched_setaffinity(0, {int(CLIENT_CPU)})
    try:
        wheels = [tiny_wheel(project_name(i * 7919 % projects), f"9.{i}") for i in range(count)]
        post_upload(server.url, *tiny_wheel(project_name(1), "6.0"), auth)
        settle(server)
        results: list[tuple[int, float]] = []

        def post_all() -> None:
            with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
                results.extend(pool.map(lambda w: post_upload(server.url, w[0], w[1], auth), wheels))

        cpu0 = cpu_seconds(server.pid)
        t0 = time.perf_counter()
        split_row = cpu_split(server, split, post_all) if split is not None else None
        if split_row is None:
            post_all()
        elapsed = time.perf_counter() - t0
        cpu = split_row["total"] if split_row is not None else cpu_seconds(server.pid) - cpu0
        bad = [s for s, _ in results if s != 200]
        if bad:
            print(f"  warning: {len(bad)} uploads answered {sorted(set(bad))}")

        def one_at_a_time(targets: list[tuple[str, str]]) -> tuple[float, float]:
            visible = []
            cpu0 = cpu_seconds(server.pid)
            for project, version in targets:
                filename, data = tiny_wheel(project, version)
                t0 = time.perf_counter()
                post_upload(server.url, filename, data, auth)
                page = f"{server.url}/simple/{project}/"
                while filename.encode() not in _get(page):
                    time.sleep(0.001)
                visible.append((time.perf_counter() - t0) * 1000)
            return sorted(visible)[len(visible) // 2], (cpu_seconds(server.pid) - cpu0) / len(targets) * 1000

        visible, _ = one_at_a_time([(project_name(i * 31 % projects), f"8.{i}") for i in range(20)])
        new_visible, new_cpu = one_at_a_time([(f"brand-new-{i}", "1.0") for i in range(10)])
        row: dict[str, Any] = {"uploads/s": count / elapsed, "cpu ms/upload": cpu / count * 1000,
                               "visible ms p50": visible, "new project visible ms p50": new_visible,
                               "new project cpu ms": new_cpu}
        if split_row is not None:
            row["split"] = {k: v / count * 1000 for k, v in split_row.items()}
        return row
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def _get(url: str) -> bytes:
    try:
        return urllib.request.urlopen(url, timeout=30).read()
    except OSError:
        return b""


def twine_uploads(server: Proc, wheels: list[tuple[str, bytes]], tag: str, auth: tuple[str, str] | None,
                  work: Path) -> dict[str, float]:
    """One twine process uploading ``wheels`` (one connection, one file after the other):
    its uploads/s, and the server's CPU per upload (the whole run: twine's start too)."""
    out = work / f"twine-{tag}"
    out.mkdir()
    for filename, data in wheels:
        (out / filename).write_bytes(data)
    user, password = auth or ("x", "x")
    cpu0 = cpu_seconds(server.pid)
    t0 = time.perf_counter()
    subprocess.run(pinned(CLIENT_CPU, [str(Path(sys.executable).parent / "twine"), "upload",
                                       "--repository-url", server.url + "/", "-u", user, "-p", password,
                                       "--non-interactive", "--disable-progress-bar", *map(str, sorted(out.iterdir()))]),
                   check=True, capture_output=True)
    elapsed = time.perf_counter() - t0
    return {"uploads/s": len(wheels) / elapsed, "cpu ms/upload": (cpu_seconds(server.pid) - cpu0) / len(wheels) * 1000}


def twine_rate(server: Proc, count: int, tag: str, auth: tuple[str, str] | None, work: Path) -> float:
    """Uploads/s of one twine process sending ``count`` versions of one new project."""
    wheels = [tiny_wheel(f"tw-{tag}", f"1.{i}") for i in range(count)]
    return twine_uploads(server, wheels, tag, auth, work)["uploads/s"]


# -- main ----------------------------------------------------------------------------------


def uploads_only(quick: bool) -> None:
    """spoold's upload cost alone, at 1,000 and 20,000 files: server CPU per upload (raw
    POSTs and twine), where it goes, and the time from upload to visible."""
    n_uploads = 40 if quick else 200
    n_twine = 20 if quick else 100
    work = Path(tempfile.mkdtemp(prefix="spoold-bench-uploads-"))
    try:
        htpasswd = work / "htpasswd"
        add_user(htpasswd, "bench", "bench-password", rounds=10)
        rows = {}
        for projects in (500, 10_000):
            storage = work / f"storage-{projects}"
            build_store(open_storage(str(storage)), projects, 2)
            folder = work / f"s-{projects}"
            folder.mkdir()
            server = start_spoold(folder, storage, htpasswd, split=True)
            try:
                row = uploads(server, n_uploads, projects, "bench:bench-password", split=folder)
                wheels = [tiny_wheel(project_name(i * 104_729 % projects), f"7.{i}") for i in range(n_twine)]
                twine = twine_uploads(server, wheels, str(projects), ("bench", "bench-password"), work)
                row["twine uploads/s"], row["twine cpu ms/upload"] = twine["uploads/s"], twine["cpu ms/upload"]
                rows[projects * 2] = row
            finally:
                server.stop()
        print(f"\nuploads of new versions of existing projects: {n_uploads} raw multipart POSTs at concurrency 4,"
              f"\n{n_twine} files by one twine process; then 20 one at a time (time from upload start to visible"
              "\nin the project page); then 10 brand-new projects one at a time (they also rewrite the root index)."
              "\nServer CPU: user + system of the `spoold serve` process (web site and worker in one).\n")
        print(f"{'files':>7} {'uploads/s':>10} {'cpu ms/up':>10} {'twine up/s':>11} {'twine cpu ms/up':>16}"
              f" {'visible p50 ms':>15} {'new proj cpu ms':>16} {'new proj visible':>17}")
        for files, r in rows.items():
            print(f"{files:>7} {r['uploads/s']:>10.1f} {r['cpu ms/upload']:>10.1f} {r['twine uploads/s']:>11.1f}"
                  f" {r['twine cpu ms/upload']:>16.1f} {r['visible ms p50']:>15.1f}"
                  f" {r['new project cpu ms']:>16.1f} {r['new project visible ms p50']:>17.1f}")
        columns = ["reactor", "gate check", "receive", "publish", "other pool calls", "other threads", "total"]
        print("\nwhere the CPU of a raw POST goes, ms per upload (benchmarks/cpu_split.py): the reactor thread"
              "\n(HTTP, the upload gate and answers, the worker's callbacks); on the thread pool, the gate's"
              "\npassword and free-space check, receiving (form, spool delivery, fsyncs), publishing (the"
              "\nworker's jobs) and its other calls; the rest (the filesystem watcher's threads, hand-offs)\n")
        print(f"{'files':>7}" + "".join(f"{c:>17}" for c in columns))
        for files, r in rows.items():
            print(f"{files:>7}" + "".join(f"{r['split'][c]:>17.2f}" for c in columns))
        upload_path = {files: r["split"]["gate check"] + r["split"]["receive"] for files, r in rows.items()}
        print("\nreceiving on the thread pool (gate check + receive): "
              + ", ".join(f"{v:.2f} ms at {files:,} files" for files, v in upload_path.items()))
        print(f"cpu per upload 20,000 / 1,000 files: {rows[20_000]['cpu ms/upload'] / rows[1_000]['cpu ms/upload']:.2f}"
              f" raw, {rows[20_000]['twine cpu ms/upload'] / rows[1_000]['twine cpu ms/upload']:.2f} twine"
              " (goal: <= 5 ms per twine upload, flat; visible p50 < 20 ms)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--pypiserver", default=shutil.which("pypi-server") or str(Path(sys.executable).parent / "pypi-server"),
                        help="the pypi-server executable")
    parser.add_argument("--seconds", type=int, default=None, help="seconds per wrk run")
    parser.add_argument("--uploads-only", action="store_true",
                        help="only spoold's upload figures (CPU per upload at 1,000 and 20,000 files)")
    args = parser.parse_args()
    if args.uploads_only:
        uploads_only(args.quick)
        return
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    have_pypiserver = Path(args.pypiserver).exists()
    if not have_pypiserver:
        print(f"pypiserver not found at {args.pypiserver}: pip install -e '.[bench]' (its column is skipped)")
    seconds = args.seconds or (3 if args.quick else 8)
    n_uploads = 40 if args.quick else 200
    work = Path(tempfile.mkdtemp(prefix="spoold-bench-http-"))
    os.chmod(work, 0o755)  # nginx's workers run as an unprivileged user
    try:
        htpasswd = work / "htpasswd"
        add_user(htpasswd, "bench", "bench-password", rounds=10)
        auth = "bench:bench-password"
        print(f"building datasets in {work} ...")
        big_store, big_flat = build_datasets(work, 10_000)
        small_store, small_flat = build_datasets(work, 500)

        rows: dict[str, dict[str, float]] = {}
        servers = {}
        try:
            (work / "s-spoold").mkdir()
            servers["spoold"] = start_spoold(work / "s-spoold", big_store, htpasswd)
            if have_pypiserver:
                (work / "s-pypi").mkdir()
                servers["pypiserver"] = start_pypiserver(work / "s-pypi", big_flat, args.pypiserver)
            (work / "s-nginx").mkdir()
            nginx = start_nginx(work / "s-nginx", big_store)
            if nginx:
                servers["nginx"] = nginx
            for name, server in servers.items():
                row = rows.setdefault(name, {})
                for label, accept in (("html", "text/html"), ("json", JSON)):
                    if name == "pypiserver" and label == "json":
                        continue  # pypiserver serves no PEP 691 JSON
                    secs = max(seconds, 15) if name == "pypiserver" else seconds
                    wrk(server.url, 10_000, root=False, accept=accept, seconds=1, work=work)  # warm-up
                    row[f"project {label}"] = wrk(server.url, 10_000, root=False, accept=accept,
                                                  seconds=secs, work=work)
                    row[f"root {label}"] = wrk(server.url, 10_000, root=True, accept=accept,
                                               seconds=secs, work=work)
            print(f"\nrequests/s, 20,000 files in 10,000 projects, wrk -c8 on core {CLIENT_CPU}, server on core {SERVER_CPU}\n")
            cols = ["project html", "project json", "root html", "root json"]
            print(f"{'server':<11}" + "".join(f"{c:>14}" for c in cols))
            for name, row in rows.items():
                print(f"{name:<11}" + "".join(f"{row.get(c, float('nan')):>14.1f}" for c in cols))
            s = rows["spoold"]
            if "pypiserver" in rows:
                print(f"\nspoold / pypiserver, /simple/<project>/ html: {s['project html'] / rows['pypiserver']['project html']:.0f}x (target >= 100x)")
            if "nginx" in rows:
                for label in ("html", "json"):
                    print(f"spoold / nginx, /simple/<project>/ {label}: {s[f'project {label}'] / rows['nginx'][f'project {label}']:.2f} (target >= 0.10)")

            print(f"\nuploads: {n_uploads} new versions of existing projects as raw multipart POSTs at concurrency 4;"
                  "\nthen 10 one at a time (time from upload start to visible in the project page);"
                  "\nthen 10 brand-new projects one at a time (they also rewrite the root index)\n")
            up: dict[tuple[str, int], dict[str, float]] = {}
            up[("spoold", 20_000)] = uploads(servers["spoold"], n_uploads, 10_000, auth)
            if have_pypiserver:
                up[("pypiserver", 20_000)] = uploads(servers["pypiserver"], n_uploads, 10_000, None)
        finally:
            for server in servers.values():
                server.stop()
        small = {}
        try:
            (work / "s-spoold-small").mkdir()
            small["spoold"] = start_spoold(work / "s-spoold-small", small_store, htpasswd)
            if have_pypiserver:
                (work / "s-pypi-small").mkdir()
                small["pypiserver"] = start_pypiserver(work / "s-pypi-small", small_flat, args.pypiserver)
            up[("spoold", 1_000)] = uploads(small["spoold"], n_uploads, 500, auth)
            if have_pypiserver:
                up[("pypiserver", 1_000)] = uploads(small["pypiserver"], n_uploads, 500, None)
            twine_spoold = twine_rate(small["spoold"], 30 if args.quick else 100, "s", ("bench", "bench-password"), work)
            twine_pypi = (twine_rate(small["pypiserver"], 30 if args.quick else 100, "p", None, work)
                          if have_pypiserver else float("nan"))
        finally:
            for server in small.values():
                server.stop()
        print(f"{'server':<11} {'files':>7} {'uploads/s':>10} {'cpu ms/up':>10} {'visible p50 ms':>15}"
              f" {'new proj cpu ms':>16} {'new proj visible':>17}")
        for (name, files), r in sorted(up.items()):
            print(f"{name:<11} {files:>7} {r['uploads/s']:>10.1f} {r['cpu ms/upload']:>10.1f} {r['visible ms p50']:>15.1f}"
                  f" {r['new project cpu ms']:>16.1f} {r['new project visible ms p50']:>17.1f}")
        sp_small, sp_big = up[("spoold", 1_000)], up[("spoold", 20_000)]
        print(f"\nspoold cpu per upload 20,000 / 1,000 files: {sp_big['cpu ms/upload'] / sp_small['cpu ms/upload']:.2f} (target <= 1.2)")
        if have_pypiserver:
            pp = up[("pypiserver", 20_000)]
            print(f"spoold / pypiserver uploads/s at 20,000 files: {sp_big['uploads/s'] / pp['uploads/s']:.1f}x (target >= 25x)")
        print(f"twine uploads/s (one twine process, sequential): spoold {twine_spoold:.1f}, pypiserver {twine_pypi:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
