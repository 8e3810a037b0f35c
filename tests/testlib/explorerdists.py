"""Distributions with rich (or hostile) core metadata, for the explorer's and JSON API's tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from packaging.utils import canonicalize_name

from spoold.inspection.distribution import Distribution
from spoold.testing.dists import wheel_members, zip_bytes

HOSTILE_README = """\
# Hostile

<script>window.pwned = 1; alert(1)</script>

<img src="x" onerror="window.pwned = 2">

[click me](javascript:window.pwned=3)

<a href="javascript:window.pwned=4">also me</a>

![tracker](https://tracker.example/pixel.png)

<iframe src="https://evil.example/"></iframe>

<form action="https://evil.example/"><input name="q"></form>

<div style="position:fixed;top:0;left:0;width:100%;height:100%">overlay</div>

| {cells} |
| {rule} |
| {cells} |

{long_word}
""".format(cells=" | ".join(f"column-{i}-{'w' * 30}" for i in range(40)),
           rule=" | ".join("---" for _ in range(40)), long_word="x" * 3000)


def rich_metadata(name: str, version: str, *, summary: str = "A rich package",
                  readme: str = "# Title\n\nSome *markdown*.\n",
                  content_type: str = "text/markdown",
                  extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    lines = [
        "Metadata-Version: 2.4", f"Name: {name}", f"Version: {version}", f"Summary: {summary}",
        "Home-page: https://example.org/home",
        "Author: Ada Lovelace", "Author-email: Ada <ada@example.org>",
        "Maintainer-email: Bob <bob@example.org>",
        "License-Expression: MIT", "License-File: LICENSE",
        "Keywords: alpha,beta",
        "Classifier: Programming Language :: Python :: 3",
        "Classifier: Topic :: Software Development",
        "Requires-Python: >=3.9",
        "Requires-Dist: packaging>=20",
        'Requires-Dist: rich; extra == "cli"',
        "Provides-Extra: cli",
        "Project-URL: Source, https://example.org/src",
        "Project-URL: Tracker, javascript:alert(1)",
        f"Description-Content-Type: {content_type}",
        *[f"{k}: {v}" for k, v in extra],
    ]
    return ("\n".join(lines) + "\n\n" + readme).encode("utf-8")


def rich_distribution(name: str, version: str, directory: Path, *, metadata: bytes | None = None,
                      kind: str = "wheel", **kwargs: object) -> tuple[Distribution, Path]:
    """A wheel (or, by name only, an sdist) carrying ``metadata``, described as inspection would."""
    metadata = metadata if metadata is not None else rich_metadata(name, version, **kwargs)  # type: ignore[arg-type]
    dist_name = canonicalize_name(name).replace("-", "_")
    members = wheel_members(dist_name, version, metadata=metadata.decode("utf-8"),
                            files={f"{dist_name}/__init__.py": b"x = 1\n"})
    data = zip_bytes(members, deterministic=True)
    filename = (f"{dist_name}-{version}-py3-none-any.whl" if kind == "wheel"
                else f"{dist_name}-{version}.tar.gz")
    path = Path(directory) / filename
    path.write_bytes(data)
    dist = Distribution(
        filename=filename, project=canonicalize_name(name), name=name, version=version,
        kind=kind,  # type: ignore[arg-type]
        size=len(data), sha256=hashlib.sha256(data).hexdigest(),
        blake2_256=hashlib.blake2b(data, digest_size=32).hexdigest(), metadata=metadata,
        metadata_sha256=hashlib.sha256(metadata).hexdigest(), requires_python=">=3.9",
        summary=kwargs.get("summary", "A rich package"),  # type: ignore[arg-type]
    )
    return dist, path
