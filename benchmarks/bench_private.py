#!/usr/bin/env python3
"""Private reads against public reads of the same tree, side by side in one run.

Issue 12's goals for ``/simple/<project>/`` (10,000 projects x 2 versions):

* spoold itself, private with a read token >= 0.9 of public, private with a password (the
  bcrypt check is remembered, so it runs once per password, not once per request) >= 0.8;
* the shipped nginx config (``deploy/nginx/spoold.conf``, ``auth_request`` to spoold's
  ``/_auth`` with the answers cached 10 s by credentials and project) in front of a private
  spoold, against the same config in front of a public one, >= 0.5. A plain static nginx
  over the same tree (no access check at all: the physical floor) is printed beside it.

Servers (spoold and nginx) run on core 1, wrk on core 0 (``taskset`` / sched_setaffinity).
Every column is measured in the same run, alternating, so a noisy neighbour hits them all;
besides requests/s each column reports requests per CPU-second of its server processes
(spoold, nginx's workers), which such a neighbour disturbs much less.

Needs wrk and nginx (Debian packages).  Run:  python benchmarks/bench_private.py [--quick]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_http import NGINX_CONF, Proc, build_datasets, cpu_seconds, free_port, pinned
from testlib.nginxserver import start_nginx
from testlib.serveproc import Server

from spoold.access.accounts import add_user

SERVER_CPU, CLIENT_CPU = 1, 0
PROJECTS = 10_000

WRK_SCRIPT = """
local n = {projects}
wrk.headers["Accept"] = "text/html"
{auth}
math.randomseed({seed})
request = function()
  return wrk.format("GET", string.format("/simple/project-%06d/", math.random(0, n - 1)))
end
"""


def wrk(url: str, auth: str | None, seconds: int, work: Path, pids: list[int]) -> tuple[float, float]:
    """Requests/s over random project pages, and requests per CPU-second of the server
    processes ``pids`` (the cost of a request, which a noisy neighbour disturbs far less
    than the rate). Any non-200 answer makes the run void."""
    header = f'wrk.headers["Authorization"] = "{auth}"' if auth else ""
    script = work / "wrk.lua"
    script.write_text(WRK_SCRIPT.format(projects=PROJECTS, auth=header, seed=time.monotonic_ns() % 2**31))
    cpu0 = sum(cpu_seconds(pid) for pid in pids)
    out = subprocess.run(pinned(str(CLIENT_CPU), ["wrk", "-t1", "-c8", f"-d{seconds}s", "--timeout", "30s",
                                                  "-s", str(script), url]),
                         check=True, capture_output=True, text=True).stdout
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu0
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise SystemExit(f"wrk against {url} got refusals; the run is void:\n{out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    if not rate or not count:
        raise SystemExit(f"wrk printed no rate:\n{out}")
    return float(rate[1]), int(count[1]) / max(cpu, 0.01)


def nginx_pids(master: int) -> list[int]:
    """The worker processes of an nginx master (they do the serving)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children
            if b"worker process" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def check(url: str, auth: str | None, want: int) -> None:
    """The set-up is what it claims: private refuses anonymous reads, credentials pass."""
    request = urllib.request.Request(url + "/simple/project-000001/", headers={"Authorization": auth} if auth else {})
    try:
        status = urllib.request.urlopen(request, timeout=30).status
    except urllib.error.HTTPError as e:
        status = e.code
    if status != want:
        raise SystemExit(f"{url} answered {status}, expected {want} (auth: {bool(auth)})")


def on_server_core() -> None:
    os.sched_setaffinity(0, {SERVER_CPU})


def on_all_cores() -> None:
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs, one round")
    parser.add_argument("--seconds", type=int, default=None, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of every column (median kept)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    seconds = args.seconds or (3 if args.quick else 6)
    rounds = args.rounds or (1 if args.quick else 3)
    work = Path(tempfile.mkdtemp(prefix="spoold-bench-private-"))
    os.chmod(work, 0o755)  # nginx's workers may run as an unprivileged user
    servers: list[object] = []
    try:
        print(f"building {PROJECTS:,} projects in {work} ...")
        storage, _ = build_datasets(work, PROJECTS)
        htpasswd = work / "htpasswd"
        add_user(htpasswd, "bench", "bench-password")  # libpass's default bcrypt cost
        password = basic("bench", "bench-password")

        on_server_core()  # every server started below inherits core 1
        try:
            common = {"access_log": False, "page_cache": 10.0}
            (work / "public").mkdir()
            public = Server(work / "public", str(storage), htpasswd=htpasswd, extra={**common, "read": "public"})
            servers.append(public)
            (work / "private").mkdir()
            private = Server(work / "private", str(storage), htpasswd=htpasswd, extra={**common, "read": "private"})
            servers.append(private)
            created = subprocess.run([sys.executable, "-m", "spoold", "token", "create", "--user", "bench",
                                      "--json", "--config", str(private.config)],
                                     check=True, capture_output=True, text=True).stdout
            token = "Bearer " + json.loads(created)["token"]
            nginx_public = start_nginx(work / "nginx-public", root=storage, upstream=public.url.split("//")[1])
            servers.append(nginx_public)
            nginx_private = start_nginx(work / "nginx-private", root=storage, upstream=private.url.split("//")[1])
            servers.append(nginx_private)
            (work / "nginx-static").mkdir()
            port = free_port()
            (work / "nginx-static" / "nginx.conf").write_text(NGINX_CONF.format(work=work / "nginx-static",
                                                                                 port=port, root=storage))
            exe = shutil.which("nginx") or "/usr/sbin/nginx"
            static = Proc([exe, "-c", str(work / "nginx-static" / "nginx.conf"), "-p", str(work / "nginx-static")],
                          work / "nginx-static.log", f"http://127.0.0.1:{port}")
            servers.append(static)
        finally:
            on_all_cores()

        check(public.url, None, 200)
        check(private.url, None, 401)
        check(private.url, password, 200)
        check(private.url, token, 200)
        check(nginx_private.url, None, 401)
        check(nginx_private.url, token, 200)

        spoold_pub, spoold_priv = [public.proc.pid], [private.proc.pid]
        ng_pub = nginx_pids(nginx_public.process.pid) + spoold_pub
        ng_priv = nginx_pids(nginx_private.process.pid) + spoold_priv
        columns = {
            "spoold public": (public.url, None, spoold_pub),
            "spoold private, password": (private.url, password, spoold_priv),
            "spoold private, token": (private.url, token, spoold_priv),
            "nginx static (no check)": (static.url, None, nginx_pids(static.pid)),
            "nginx+spoold public": (nginx_public.url, None, ng_pub),
            "nginx+spoold private, password": (nginx_private.url, password, ng_priv),
            "nginx+spoold private, token": (nginx_private.url, token, ng_priv),
        }
        for url, auth, pids in columns.values():  # warm-up: page caches, the remembered password
            wrk(url, auth, 1, work, pids)
        rates: dict[str, list[float]] = {name: [] for name in columns}
        costs: dict[str, list[float]] = {name: [] for name in columns}
        for _ in range(rounds):
            for name, (url, auth, pids) in columns.items():
                rate, per_cpu = wrk(url, auth, seconds, work, pids)
                rates[name].append(rate)
                costs[name].append(per_cpu)
        median = {name: sorted(v)[len(v) // 2] for name, v in rates.items()}
        per_cpu = {name: sorted(v)[len(v) // 2] for name, v in costs.items()}

        print(f"\n/simple/<project>/ over {PROJECTS:,} projects (random), wrk -c8 on core {CLIENT_CPU}, "
              f"servers on core {SERVER_CPU}; median of {rounds} x {seconds} s\n")
        print(f"  {'':<32} {'requests/s':>10}   {'per server CPU-s':>16}   (each round's requests/s)")
        for name, value in median.items():
            print(f"  {name:<32} {value:>10.0f}   {per_cpu[name]:>16.0f}   ({', '.join(f'{v:.0f}' for v in rates[name])})")

        def ratio(a: str, b: str, goal: float | None) -> None:
            r, c = median[a] / median[b], per_cpu[a] / per_cpu[b]
            if goal is None:
                print(f"  {a} / {b}: {r:.2f} requests/s, {c:.2f} per CPU-second (the price of any check)")
                return
            verdict = "" if r >= goal else "  BELOW GOAL"
            print(f"  {a} / {b}: {r:.2f} requests/s, {c:.2f} per CPU-second (goal >= {goal}){verdict}")

        print()
        ratio("spoold private, token", "spoold public", 0.9)
        ratio("spoold private, password", "spoold public", 0.8)
        ratio("nginx+spoold private, token", "nginx+spoold public", 0.5)
        ratio("nginx+spoold private, password", "nginx+spoold public", 0.5)
        ratio("nginx+spoold public", "nginx static (no check)", None)
    finally:
        for server in reversed(servers):
            server.stop()  # type: ignore[attr-defined]
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
