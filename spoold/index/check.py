"""``spoold check``: verify that the stored index is whole, and repair what can be derived.

The checks (:mod:`~spoold.index.check_tree`), on every backend:

* every manifest entry's file is stored with the recorded size and sha256, and every
  advertised ``.metadata`` is stored with the advertised sha256;
* every distribution under ``packages/<p>/`` is listed (no orphans), every folder has a
  manifest, and manifests parse;
* both pages agree with the manifest (the HTML page is what the manifest renders, of the
  manifest's generation where the backend tracks it; the JSON page is the manifest in
  canonical form and, on local storage, the newest generation);
* the root index, in both formats, lists every project with files and nothing absent;
* no temporary file older than ``max_temp_age`` (a killed writer's) is left anywhere.

Cost: one listing of the whole tree, a few reads per project, every file hashed once.
With ``repair`` (:mod:`~spoold.index.check_repair`), the projects repaired and the root
are checked again afterwards (from a new listing; nothing is hashed twice), so a finding
counts as repaired only when that second look no longer finds it.

Run it on a quiet index for a clean answer: a publish caught half-way can show up as an
orphan or a stale page (repairing those is safe while others publish: every change is a
compare-and-swap).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from spoold.index.check_repair import Outcome, repair_project, repair_root
from spoold.index.check_report import CheckProgress, Finding, Kind, Report
from spoold.index.check_tree import (
    Hashes,
    ProjectState,
    Tree,
    check_project,
    check_root,
    check_strays,
)
from spoold.storage.base import Storage

__all__ = ["DEFAULT_TEMP_AGE", "check"]

#: Temporary files younger than this may belong to a writer still at work.
DEFAULT_TEMP_AGE = timedelta(hours=1)
_ROOT_KINDS = (Kind.CORRUPT_ROOT, Kind.ROOT_MISSING, Kind.ROOT_EXTRA)
_Ident = tuple[Kind, str, str | None]
Progress = Callable[[CheckProgress], None]


def _check_projects(
    storage: Storage,
    tree: Tree,
    projects: list[str],
    hashes: Hashes,
    progress: Progress | None,
    states: dict[str, ProjectState],
) -> list[Finding]:
    findings: list[Finding] = []
    for done, project in enumerate(projects, 1):
        if progress is not None:
            progress(CheckProgress("checking", done, len(projects), project))
        found, states[project] = check_project(storage, tree, project, hashes)
        findings += found
    return findings


def _is_root(finding: Finding) -> bool:
    return finding.kind in _ROOT_KINDS or (finding.project is None and finding.kind is Kind.STALE_PAGE)


def check(
    storage: Storage,
    *,
    repair: bool = False,
    now: datetime | None = None,
    max_temp_age: timedelta = DEFAULT_TEMP_AGE,
    progress: Progress | None = None,
) -> Report:
    """Check the whole index (and repair it if asked); raises only for an unreachable
    storage (:class:`~spoold.storage.base.StorageUnavailable`), never for damage."""
    now = now or datetime.now(UTC)
    hashes = Hashes()
    tree = Tree.list(storage)
    projects = tree.folders()
    states: dict[str, ProjectState] = {}
    findings = _check_projects(storage, tree, projects, hashes, progress, states)
    findings += check_root(storage, states)
    findings += check_strays(tree, now, max_temp_age)
    if repair:
        findings = _repair(storage, tree, findings, states, hashes, now, max_temp_age, progress)
    return Report(storage.url, len(projects), hashes.files, hashes.bytes, tuple(findings), repair)


def _repair(
    storage: Storage,
    tree: Tree,
    findings: list[Finding],
    states: dict[str, ProjectState],
    hashes: Hashes,
    now: datetime,
    max_temp_age: timedelta,
    progress: Progress | None,
) -> list[Finding]:
    by_project: dict[str, list[Finding]] = defaultdict(list)
    for f in findings:
        if f.project is not None and not _is_root(f):
            by_project[f.project].append(f)
    touched = sorted(p for p, fs in by_project.items() if any(f.repairable for f in fs))
    outcomes: dict[_Ident, Outcome] = {}
    extras: list[Finding] = []
    for done, project in enumerate(touched, 1):
        if progress is not None:
            progress(CheckProgress("repairing", done, len(touched), project))
        found, more = repair_project(storage, tree, project, by_project[project])
        outcomes.update(found)
        extras += more
    for f in findings:
        if f.kind is Kind.STALE_TEMPORARY:
            storage.delete(f.key)
            outcomes[f.ident] = Outcome(True, "deleted")

    # The second look: the repaired projects and the root, from a new listing.
    after_tree = Tree.list(storage)
    after = _check_projects(storage, after_tree, touched, hashes, None, states)
    root_after = check_root(storage, states)
    if any(f.repairable for f in root_after):
        outcome = repair_root(storage, states)
        for f in (*findings, *root_after):
            if _is_root(f):
                outcomes[f.ident] = outcome
        root_after = check_root(storage, states)
    after += root_after + check_strays(after_tree, now, max_temp_age)
    return _merge(findings, outcomes, extras, after)


def _merge(
    findings: list[Finding],
    outcomes: dict[_Ident, Outcome],
    extras: list[Finding],
    after: list[Finding],
) -> list[Finding]:
    """The first look's findings with what became of them, then what the repairs and the
    second look found that the first did not."""
    still = {f.ident for f in after}
    merged: list[Finding] = []
    for f in findings:
        outcome = outcomes.get(f.ident)
        if not f.repairable:
            merged.append(replace(f, outcome="needs the operator (see the message)"))
        elif f.ident in still:
            note = outcome.note if outcome else ""
            if outcome is None or outcome.done:
                note = f"{note + '; ' if note else ''}still found after the repair"
            merged.append(replace(f, outcome=note))
        elif outcome is not None and not outcome.done:
            merged.append(replace(f, outcome=outcome.note))
        else:
            note = outcome.note if outcome else "fixed by the repair of its project"
            merged.append(replace(f, repaired=True, outcome=note))
    seen = {f.ident for f in merged}
    for found, outcome in ((extras, "found while repairing"), (after, "found after the repair")):
        for f in found:
            if f.ident not in seen:
                seen.add(f.ident)
                merged.append(replace(f, outcome=outcome))
    return merged
