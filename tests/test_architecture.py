"""The package's shape: import direction, no import cycle, small modules, a flat-free platform/.

Import direction is held by the import-linter contracts in pyproject.toml (``lint-imports``
runs the same check); cycles are found here on the full module graph, imports inside function
bodies included (grimp reads every import statement).
"""
from __future__ import annotations

import ast
import logging
import pathlib
import re
import subprocess
import sys

import grimp
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gensweep"
MAX_LINES = 400
MAX_PLATFORM_MODULES = 5


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("gensweep", cache_dir=None)


def strongly_connected(graph) -> list[set[str]]:
    """Tarjan's algorithm over module -> directly imported module (iterative)."""
    modules = sorted(graph.modules)
    succ = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[set[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = succ[node]
            if i < len(children):
                work.append((node, i + 1))
                child = children[i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                comp = set()
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.add(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return out


def test_no_import_cycle_anywhere(graph):
    cycles = strongly_connected(graph)
    assert not cycles, "import cycles (function-body imports included):\n" + "\n".join(
        " <-> ".join(sorted(c)) for c in cycles)


def test_cycle_finder_finds_a_cycle():
    class Fake:
        modules = {"a", "b", "c", "d"}
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

        def find_modules_directly_imported_by(self, m):
            return self.edges[m]

    assert strongly_connected(Fake()) == [{"a", "b", "c"}]


def test_import_contracts_are_kept():
    """cli -> cluster -> platform.sweep -> platform.trial | report -> spec -> data | metrics | results
    -> storage -> trainables; trainables import neither Ray nor the platform.

    import-linter runs in a process of its own: its CLI configures logging with ``dictConfig``,
    which disables every logger that already exists, so run in-process it silenced gensweep's
    loggers for every later test (caplog then saw nothing)."""
    ours = logging.getLogger("gensweep.platform.sweep.trial_logs")
    code = ("import sys; from importlinter.cli import lint_imports; "
            f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, cache_dir=None))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "2 kept, 0 broken" in proc.stdout and proc.returncode == 0, proc.stdout + proc.stderr
    assert not ours.disabled


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_module_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_platform_is_a_set_of_stages():
    direct = sorted(p.name for p in (PACKAGE / "platform").glob("*.py"))
    assert len(direct) <= MAX_PLATFORM_MODULES, direct


def _tree_paths(block: str) -> set[str]:
    """Folder paths of an indented tree (two spaces a level; a name ending in "/" opens a folder)."""
    stack: list[str] = []
    out = set()
    for line in block.splitlines():
        name = line.strip().split(" ", 1)[0]
        if not name.endswith("/") or "," in name:
            continue
        level = (len(line) - len(line.lstrip(" "))) // 2
        stack = stack[:level] + [name.rstrip("/")]
        out.add("/".join(stack))
    return out


def test_readme_layout_names_existing_paths():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    paths = set(re.findall(r"`(gensweep/[\w/.<>]+)`", section))
    paths = {p for p in paths if "<" not in p}
    blocks = re.findall(r"```\n(.*?)```", section, flags=re.S)
    tree = set().union(*(_tree_paths(b) for b in blocks)) if blocks else set()
    assert {"gensweep/platform/storage", "gensweep/platform/trial", "gensweep/cli", "gensweep/testing"} <= tree
    assert len(paths | tree) >= 20, "the Layout section shows the tree and where components go"
    missing = sorted(p for p in paths | tree if not (ROOT / p.rstrip("/")).exists())
    assert not missing, f"README Layout names paths that do not exist: {missing}"
    platform_dirs = {d.name for d in (PACKAGE / "platform").iterdir() if d.is_dir() and d.name != "__pycache__"}
    assert {f"gensweep/platform/{d}" for d in platform_dirs} <= tree, "every platform stage is in the tree"


def test_docstrings_hold_no_measurements():
    """Measured numbers go stale in docstrings: they live in BENCHMARKS.md."""
    measured = re.compile(r"\bmeasured\b|\d-core|\bidle cores?\b|\d+(\.\d+)?\s*(img/s|it/s|steps/s)\b"
                          r"|\d+(\.\d+)?x (faster|slower)|~\d+(\.\d+)?\s*(s|ms|min)\b|\d\s*s (warm|cold)\b", re.I)
    hits = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node) or ""
                if measured.search(doc):
                    hits.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 1)}")
    assert not hits, f"docstrings with measurements (move them to BENCHMARKS.md): {hits}"
