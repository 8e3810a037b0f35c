"""Helpers for tests that run real ``spoold`` processes on a spool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

SPOOLD = [sys.executable, "-m", "spoold"]


def write_config(path: Path, spool: Path, storage: str, **settings: object) -> Path:
    values = {"spool": str(spool), "storage": storage, "scan_interval": 0.5,
              "housekeeping_interval": 0.5, "threads": 2, **settings}
    lines = [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class Workers:
    """A set of ``spoold worker`` processes, each logging to its own file."""

    def __init__(self, tmp: Path, config: Path, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.config = config
        self.env = {**os.environ, **(env or {})}
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def start(self, n: int = 1) -> None:
        for _ in range(n):
            log = self.tmp / f"{self.config.stem}-worker-{len(self.logs)}.log"
            self.logs.append(log)
            with open(log, "wb") as out:
                self.procs.append(subprocess.Popen(
                    [*SPOOLD, "worker", "--config", str(self.config)],
                    stdout=out, stderr=subprocess.STDOUT, env=self.env))

    def kill(self, proc: subprocess.Popen) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.procs.remove(proc)

    def stop(self, timeout: float = 60) -> list[int]:
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout) for p in self.procs]
        self.procs.clear()
        return codes

    def log_lines(self) -> list[str]:
        return [line for log in self.logs for line in log.read_text(errors="replace").splitlines()]

    def published(self) -> Counter:
        """How many times each filename was logged as published (not 'unchanged')."""
        return Counter(line.split("] published ")[1].split()[0]
                       for line in self.log_lines() if "] published " in line)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


def drop(spool: Path, files: list[Path], chunk: int = 200) -> None:
    for i in range(0, len(files), chunk):
        subprocess.run([*SPOOLD, "drop", "--spool", str(spool), *map(str, files[i:i + chunk])],
                       check=True)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition (not a sleep standing in for one): fail with `what` on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def count(folder: Path) -> int:
    return len(os.listdir(folder))


def manifest_files(storage_read: Callable[[str], bytes | None], project: str) -> list[str]:
    data = storage_read(f"simple/{project}/index.v1.json")
    if data is None:
        return []
    return [f["filename"] for f in json.loads(data)["files"]]
