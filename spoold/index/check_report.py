"""What ``spoold check`` found: frozen values, and their two renderings (lines, JSON).

A :class:`Finding` is one thing wrong with one key, with a message that says what to do;
``repairable`` says whether ``--repair`` can fix it (from what the storage still holds),
``repaired`` and ``outcome`` what a repair did. A :class:`Report` is the whole run.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass
from typing import Any

__all__ = ["CheckProgress", "Finding", "Kind", "Report", "report_json", "report_lines"]


class Kind(enum.StrEnum):
    """The kinds of damage, as they appear in the JSON report."""

    #: A manifest (``simple/<p>/index.v1.json``) that cannot be parsed.
    CORRUPT_MANIFEST = "corrupt-manifest"
    #: Files under ``packages/<p>/`` but no manifest.
    MISSING_MANIFEST = "missing-manifest"
    #: A listed file whose bytes are gone.
    MISSING_FILE = "missing-file"
    #: A listed file whose size or sha256 differs from what the manifest records.
    CORRUPT_FILE = "corrupt-file"
    #: An entry advertises core metadata but ``<file>.metadata`` is gone.
    MISSING_METADATA = "missing-metadata"
    #: ``<file>.metadata`` differs from the advertised sha256.
    CORRUPT_METADATA = "corrupt-metadata"
    #: A distribution stored under ``packages/<p>/`` that its manifest does not list.
    ORPHAN_FILE = "orphan-file"
    #: A ``.metadata`` whose distribution is neither stored nor listed.
    ORPHAN_METADATA = "orphan-metadata"
    #: Something under ``packages/`` that is not a distribution of the layout.
    UNKNOWN_FILE = "unknown-file"
    #: A folder whose name is not a normalized project name.
    MISNAMED_FOLDER = "misnamed-folder"
    #: A page that differs from what its manifest renders (or is missing, or of another
    #: generation); also a manifest not in canonical form.
    STALE_PAGE = "stale-page"
    #: A page of a project that has neither a manifest nor files.
    ORPHAN_PAGE = "orphan-page"
    #: The root index cannot be parsed, or is missing while projects have files.
    CORRUPT_ROOT = "corrupt-root"
    #: A project with files that the root index does not list.
    ROOT_MISSING = "root-missing"
    #: A root entry for a project that does not exist.
    ROOT_EXTRA = "root-extra"
    #: A temporary file (``.NAME.<hex>.tmp``) older than the age limit: a killed writer's.
    STALE_TEMPORARY = "stale-temporary"


@dataclass(frozen=True, slots=True)
class Finding:
    kind: Kind
    key: str
    #: The normalized project the key belongs to; None for the root and stray keys.
    project: str | None
    #: What is wrong and what to do about it.
    message: str
    repairable: bool
    #: True once ``--repair`` fixed it and a second look found it gone.
    repaired: bool = False
    #: What the repair did, or why it could not (empty when no repair was attempted).
    outcome: str = ""

    @property
    def ident(self) -> tuple[Kind, str, str | None]:
        return self.kind, self.key, self.project


@dataclass(frozen=True, slots=True)
class CheckProgress:
    """One step for a progress display: ``phase`` is ``checking`` or ``repairing``."""

    phase: str
    done: int
    total: int
    project: str


@dataclass(frozen=True, slots=True)
class Report:
    storage: str
    projects: int
    #: Distributions and ``.metadata`` files hashed, and their bytes.
    files: int
    bytes: int
    findings: tuple[Finding, ...]
    #: Whether ``--repair`` was asked for.
    repair: bool = False

    @property
    def ok(self) -> bool:
        """Nothing is wrong any more: no findings, or every one repaired."""
        return all(f.repaired for f in self.findings)

    @property
    def unrepaired(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.repaired)


def report_json(report: Report) -> dict[str, Any]:
    """The ``--json`` object (schema in the README)."""
    kinds = Counter(str(f.kind) for f in report.findings)
    return {
        "ok": report.ok,
        "storage": report.storage,
        "repair": report.repair,
        "counts": {
            "projects": report.projects,
            "files": report.files,
            "bytes": report.bytes,
            "findings": len(report.findings),
            "repaired": sum(f.repaired for f in report.findings),
            "unrepaired": len(report.unrepaired),
            "kinds": dict(sorted(kinds.items())),
        },
        "findings": [
            {
                "kind": str(f.kind),
                "key": f.key,
                "project": f.project,
                "message": f.message,
                "repairable": f.repairable,
                "repaired": f.repaired,
                "outcome": f.outcome,
            }
            for f in report.findings
        ],
    }


def _line(f: Finding, repair: bool) -> str:
    line = f"{f.kind} {f.key}: {f.message}"
    if repair:
        line += f" [repaired: {f.outcome}]" if f.repaired else f" [NOT repaired: {f.outcome}]"
    return line


def report_lines(report: Report) -> list[str]:
    """One line per finding, then a summary line."""
    lines = [_line(f, report.repair) for f in report.findings]
    size = f"{report.bytes / (1 << 20):.1f} MiB"
    done = f"checked {report.projects} project(s), {report.files} file(s) ({size})"
    if not report.findings:
        lines.append(f"{done}: ok")
    elif report.repair:
        repaired = len(report.findings) - len(report.unrepaired)
        tail = "ok" if report.ok else f"{len(report.unrepaired)} need(s) the operator"
        lines.append(f"{done}: {len(report.findings)} problem(s), {repaired} repaired; {tail}")
    else:
        fixable = sum(f.repairable for f in report.findings)
        lines.append(
            f"{done}: {len(report.findings)} problem(s), {fixable} repairable with "
            "`spoold check --repair`"
        )
    return lines
