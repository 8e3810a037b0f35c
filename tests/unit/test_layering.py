"""The floor plan holds: the pure stages never reach Twisted, and no module imports in a circle.

The graph is read from the source (every ``import``, also those inside functions), not
from ``sys.modules``, so an import that only runs on some path counts too. An edge goes
to the module an import names (``from spoold.index.pages import x`` -> ``spoold.index.pages``;
``from spoold.spool import incoming`` -> ``spoold.spool.incoming`` when that is a module).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import spoold

ROOT = Path(spoold.__file__).parent
#: Stages that must stay plain synchronous code (ARCHITECTURE: "Sans-IO core, thin adapters").
PURE = ("spool", "inspection", "storage", "index", "http", "explorer")
#: Single modules elsewhere that must stay pure too: the sd_notify protocol, and the test
#: distributions (so building one never loads the Twisted web stack).
PURE_MODULES = ("spoold.systemd.notify", "spoold.testing.dists")
FORBIDDEN = ("twisted", "zope")


def module_name(path: Path) -> str:
    parts = ["spoold", *path.relative_to(ROOT).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (never executed, so an import
    there, for an annotation, is no dependency)."""
    nodes: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        nodes.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return nodes


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module ``path`` imports (spoold modules by full name, others by top package)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in known else target)
    return {m if m.startswith("spoold") else m.split(".")[0] for m in found}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def closure(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Everything reachable from ``start``, each with the module that imported it."""
    seen: dict[str, str] = {}
    stack = [start]
    while stack:
        current = stack.pop()
        for target in graph.get(current, ()):
            if target not in seen:
                seen[target] = current
                stack.append(target)
    return seen


def test_the_graph_is_read(graph: dict[str, set[str]]) -> None:
    # Guards the test itself: a parser that found nothing would make the checks below pass.
    assert "spoold.spool.queue" in graph and "spoold.web.site" in graph
    assert "twisted" in graph["spoold.worker.service"]
    assert "spoold.index.pages" in graph["spoold.index.documents"]


@pytest.mark.parametrize("stage", [*PURE, *PURE_MODULES])
def test_pure_stages_never_reach_twisted(graph: dict[str, set[str]], stage: str) -> None:
    if stage.startswith("spoold."):
        members = [stage]
    else:
        members = [m for m in graph if m == f"spoold.{stage}" or m.startswith(f"spoold.{stage}.")]
    assert members and all(m in graph for m in members), f"no modules for {stage}"
    for module in members:
        reached = closure(graph, module)
        for forbidden in FORBIDDEN:
            if forbidden in reached:
                chain = [forbidden]
                while chain[-1] != module:
                    chain.append(reached[chain[-1]])
                pytest.fail(f"{module} reaches {forbidden}: {' <- '.join(chain)}")


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    internal = {m: {t for t in targets if t in graph and t != m} for m, targets in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0

    def connect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(internal[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(internal):
        if node not in index:
            connect(node)
    return cycles


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    assert find_cycles(graph) == []


def test_cycle_detection_finds_a_planted_cycle() -> None:
    # The check must be able to fail: a known cycle (and only it) is reported.
    planted = {"a": {"b"}, "b": {"c", "x"}, "c": {"a"}, "d": {"a"}, "x": set()}
    assert find_cycles(planted) == [["a", "b", "c"]]
