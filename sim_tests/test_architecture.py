"""The floors hold: read every module's imports and check them against the architecture.

``planners → skills → hw → robot``: a floor imports only the floors below it; the command
line (`skillstack.planners.cli`) is the composition root and may import anything; the
planners' core reaches robots only through factories it is given. No module imports itself
back through others (a circle), and no import names a folder outside the ``skillstack``
namespace. Imports inside functions count: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("robot", "hw", "skills", "planners")
FLOOR = {name: level for level, name in enumerate(FOLDERS)}  # robot 0 … planners 3
COMPOSITION_ROOT = "skillstack.planners.cli"
MAX_LINES = 400
REASON_PREFIX = "# Over 400 lines:"


def _modules() -> dict[str, Path]:
    found = {}
    for folder in (*FOLDERS, "assets"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found["skillstack." + ".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every absolute import of the project in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            out += [(node.lineno, name) for name in names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


def _graph() -> dict[str, set[str]]:
    graph = defaultdict(set)
    for module, path in MODULES.items():
        for _, name in _imports(path):
            if name in MODULES and name != module:
                graph[module].add(name)
    return graph


def _floor(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FLOOR else None


def test_every_import_of_the_project_goes_through_the_skillstack_namespace():
    bare = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in [*MODULES.values(), *sorted((ROOT / "sim_tests").glob("*.py"))]
        for line, name in _imports(path)
        if name.split(".")[0] in (*FOLDERS, "assets")
    ]
    assert not bare, "import through skillstack.*:\n" + "\n".join(bare)


def test_no_floor_imports_a_floor_above_it_and_the_planners_core_never_builds_robots():
    wrong = []
    for module, targets in _graph().items():
        low = _floor(module)
        for target in targets:
            high = _floor(target)
            if low is None or high is None:
                continue
            if FLOOR[high] > FLOOR[low]:
                wrong.append(f"{module} -> {target} (upward)")
            elif low == "planners" and high == "hw" and not module.startswith(COMPOSITION_ROOT):
                wrong.append(f"{module} -> {target} (only the command line builds robots)")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_circles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in MODULES:
        if module not in index:
            visit(module)
    assert not circles, "import circles:\n" + "\n".join(" ".join(c) for c in circles)


@pytest.mark.parametrize("folder", [*FOLDERS, "sim_tests"])
def test_files_over_400_lines_say_why_on_their_first_line(folder):
    long = [
        f"{path.relative_to(ROOT)} ({n} lines)"
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_LINES
        and not path.read_text().startswith(REASON_PREFIX)
    ]
    assert not long, f"over {MAX_LINES} lines with no '{REASON_PREFIX} …' line:\n" + "\n".join(long)
