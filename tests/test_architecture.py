"""The architecture as code: what `lint-imports` (run by .ci/run) cannot say by itself.

The layers and sibling-cycle contracts live in pyproject.toml's [tool.importlinter]; these tests add the
module-level view (a package and its own submodules in a cycle is invisible to `acyclic_siblings`) and
the size limit that keeps each module one concern.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp
import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "esper_lint"
MAX_LINES = 800


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("esper_lint")  # imports inside functions and under TYPE_CHECKING included


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(edges.get(succ, ())))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back_through_others(graph: grimp.ImportGraph) -> None:
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert _cycles(edges) == []


def test_the_layers_contract_covers_every_module() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")
    assert layers["containers"] == ["esper_lint"] and layers["exhaustive"] is True
    named = {m.strip() for layer in layers["layers"] for m in layer.replace("|", ":").split(":")}
    children = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    children |= {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert named == children


def test_every_module_is_one_concern_by_size() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {path: n for path, n in sizes.items() if n > MAX_LINES} == {}


def test_the_architecture_page_names_every_module_of_the_analysis_and_every_package() -> None:
    # docs/architecture.md is the map a newcomer reads first: a module it does not name is one they cannot find.
    # A name counts as named in code spelling, with or without its folder (`analysis/module_facts.py`).
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    analysis = {f"{p.name}`" for p in (PACKAGE / "analysis").glob("*.py") if p.stem != "__init__"}
    top = {f"{p.name}`" for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    packages = {f"{p.parent.name}/`" for p in PACKAGE.glob("*/__init__.py")}
    assert sorted(name for name in analysis | top | packages if name not in page) == []
