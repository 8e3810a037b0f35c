"""Real projects with Markdown and reST READMEs, built by setuptools, hatchling and poetry-core
(``python -m build --no-isolation`` in subprocesses, in parallel), and a headless Chromium.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MARKDOWN = """\
# {title}

A **bold** claim, with `inline code` and a [link](https://example.org/docs).

```python
print("hello from {name}")
```

| backend | format |
|---------|--------|
| {backend} | markdown |
"""

RST = """\
{title}
{underline}

Some *emphasis* from reStructuredText, and a list:

- first item of {name}
- second item

.. code-block:: python

   print("hello")
"""

_PYPROJECT = """\
[build-system]
requires = [{requires!r}]
build-backend = {backend!r}

[project]
name = {name!r}
version = {version!r}
description = {summary!r}
readme = {readme!r}
requires-python = ">=3.8"
dependencies = ["packaging>=20"]
keywords = ["explorer", "demo"]
authors = [{{name = "Ada Lovelace", email = "ada@example.org"}}]
classifiers = ["Programming Language :: Python :: 3", "Topic :: Software Development"]

[project.urls]
Source = "https://example.org/{name}"

[project.optional-dependencies]
cli = ["rich>=13"]
{extra}
"""


@dataclass(frozen=True)
class Spec:
    backend_label: str
    requires: str
    backend: str
    name: str
    version: str
    readme: str  # README.md or README.rst
    extra: str = ""

    @property
    def title(self) -> str:
        return f"{self.name} documentation"

    @property
    def summary(self) -> str:
        return f"A {self.backend_label} project with a {'Markdown' if self.readme.endswith('.md') else 'reST'} README"


SPECS = (
    Spec("setuptools", "setuptools", "setuptools.build_meta", "explorer-setuptools", "1.0.0", "README.md"),
    Spec("setuptools", "setuptools", "setuptools.build_meta", "explorer-setuptools", "1.1.0", "README.md"),
    Spec("hatchling", "hatchling", "hatchling.build", "explorer-hatchling", "0.9.0", "README.rst"),
    Spec("poetry-core", "poetry-core", "poetry.core.masonry.api", "explorer-poetry", "2.0.0", "README.md",
         '\n[tool.poetry]\npackages = [{include = "explorer_poetry"}]\n'),
)


def _write(spec: Spec, root: Path) -> Path:
    project = root / f"{spec.name}-{spec.version}"
    package = project / spec.name.replace("-", "_")
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f'__version__ = "{spec.version}"\n')
    if spec.readme.endswith(".md"):
        text = MARKDOWN.format(title=spec.title, name=spec.name, backend=spec.backend_label)
    else:
        text = RST.format(title=spec.title, underline="=" * len(spec.title), name=spec.name)
    (project / spec.readme).write_text(text)
    (project / "pyproject.toml").write_text(_PYPROJECT.format(
        requires=spec.requires, backend=spec.backend, name=spec.name, version=spec.version,
        summary=spec.summary, readme=spec.readme, extra=spec.extra))
    return project


def build_all(root: Path, timeout: float = 180) -> dict[Spec, list[Path]]:
    """Every spec built into an sdist and a wheel, in parallel."""
    running = []
    for spec in SPECS:
        project = _write(spec, root)
        out = root / f"dist-{spec.name}-{spec.version}"
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", SOURCE_DATE_EPOCH="1700000000")
        running.append((spec, out, subprocess.Popen(
            [sys.executable, "-m", "build", "--no-isolation", "--skip-dependency-check", "--sdist",
             "--wheel", "--outdir", str(out), str(project)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=root)))
    built = {}
    for spec, out, process in running:
        output, _ = process.communicate(timeout=timeout)
        if process.returncode != 0:
            raise RuntimeError(f"{spec} failed:\n{output.decode('utf-8', 'replace')[-3000:]}")
        built[spec] = sorted(out.iterdir())
    return built


CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def start_chromium(profile: Path, width: int = 1280, height: int = 900):  # type: ignore[no-untyped-def]
    """Debian's Chromium, headless, through Debian's chromedriver (Selenium never downloads)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
                     f"--window-size={width},{height}"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def artifacts_dir() -> Path:
    """Where screenshots are kept after the test: ``$SPOOLD_ARTIFACTS`` or /tmp/spoold-screenshots."""
    folder = Path(os.environ.get("SPOOLD_ARTIFACTS") or "/tmp/spoold-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def keep(path: Path) -> Path:
    target = artifacts_dir() / path.name
    shutil.copyfile(path, target)
    return target
