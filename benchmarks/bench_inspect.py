"""How fast is inspect_file, and how close is it to the least RECORD checking can cost?

Run ``python benchmarks/bench_inspect.py`` (``--help`` for options). It measures:

* small wheels inspected per second (the common case: many tiny uploads);
* MB/s of ``inspect_file`` on a generated large wheel (incompressible and mixed members),
  against a *floor* measured in the same run on the same file: sha256 over the whole file
  plus, for each member, one decompression and one sha256 -- the minimum any inspection
  that checks RECORD must do. The ratio inspection/floor should be >= 0.8.

Everything generated goes into a temporary directory that is removed at the end. Files
are read from the page cache (they were just written), so the figures are CPU cost.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testlib.distbuild import wheel_members, write_zip  # noqa: E402
from spoold.inspection import inspect as inspection  # noqa: E402
from spoold.inspection.inspect import inspect_file  # noqa: E402

CHUNK = 1 << 20


def make_large_wheel(directory: Path, size_mb: int, member_mb: int) -> Path:
    """About *size_mb* on disk: 3 in 4 members random, the rest text-like (about 3:1)."""
    rng = random.Random(42)
    words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(5000)]
    text_block = b" ".join(rng.choice(words) for _ in range(200_000))[: 1 << 20]
    files: dict[str, bytes] = {"big/__init__.py": b""}
    on_disk, i = 0.0, 0
    while on_disk < size_mb:
        if i % 4 != 3:
            data = rng.randbytes(member_mb << 20)
            on_disk += member_mb
        else:
            data = (rng.randbytes(64) + text_block * member_mb)[: member_mb << 20]
            on_disk += member_mb / 3
        files[f"big/data_{i:03d}.bin"] = data
        i += 1
    members = wheel_members("big", "1.0", files=files)
    return write_zip(directory / "big-1.0-py3-none-any.whl", members, compresslevel=1)


def floor(path: Path) -> None:
    """The least work RECORD checking needs: hash the file, inflate and hash each member."""
    with open(path, "rb", buffering=0) as raw:
        digest = hashlib.sha256()
        while chunk := raw.read(CHUNK):
            digest.update(chunk)
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            member_digest = hashlib.sha256()
            with zf.open(info) as stream:
                while chunk := stream.read(CHUNK):
                    member_digest.update(chunk)


def best_of(repeat: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=200, help="large wheel size (default 200)")
    parser.add_argument("--member-mb", type=int, default=4, help="size of each large member (default 4)")
    parser.add_argument("--small", type=int, default=500, help="small wheel inspections (default 500)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="spoold-bench-") as tmp:
        directory = Path(tmp)
        small = write_zip(directory / "small-1.0-py3-none-any.whl",
                          wheel_members("small", "1.0", files={
                              "small/__init__.py": b"from .core import *\n",
                              "small/core.py": b"def f():\n    return 1\n" * 40,
                          }))
        print(f"generating a {args.size_mb} MB wheel ...", file=sys.stderr)
        large = make_large_wheel(directory, args.size_mb, args.member_mb)
        size_mb = large.stat().st_size / 1e6
        inspect_file(large, large.name)  # warm up: page cache, imports

        small_time = best_of(args.repeat, lambda: [inspect_file(small, small.name) for _ in range(args.small)])
        floor_time = best_of(args.repeat, lambda: floor(large))
        inspect_time = best_of(args.repeat, lambda: inspect_file(large, large.name))
        # The same with the file hashes computed inline, as on a single core.
        threshold = inspection.BACKGROUND_HASH_MIN_SIZE
        inspection.BACKGROUND_HASH_MIN_SIZE = 1 << 62
        try:
            inline_time = best_of(args.repeat, lambda: inspect_file(large, large.name))
        finally:
            inspection.BACKGROUND_HASH_MIN_SIZE = threshold

    ratio = floor_time / inspect_time
    rows = [
        ("small wheels inspected", f"{args.small / small_time:,.0f} /s",
         f"{small_time / args.small * 1e6:,.0f} us each"),
        (f"large wheel ({size_mb:,.0f} MB), floor", f"{size_mb / floor_time:,.0f} MB/s",
         f"{floor_time:.3f} s"),
        (f"large wheel ({size_mb:,.0f} MB), inspect_file", f"{size_mb / inspect_time:,.0f} MB/s",
         f"{inspect_time:.3f} s"),
        ("ratio inspect/floor (target >= 0.8)", f"{ratio:.2f}", "ok" if ratio >= 0.8 else "BELOW TARGET"),
        ("  inspect_file, file hashed inline", f"{size_mb / inline_time:,.0f} MB/s",
         f"ratio {floor_time / inline_time:.2f} (what one core gets)"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  detail")
    print(f"{'-' * width}  {'-' * 12}  {'-' * 16}")
    for label, value, detail in rows:
        print(f"{label:<{width}}  {value:>12}  {detail}")
    print(f"(best of {args.repeat}; python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
