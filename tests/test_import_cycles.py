"""No import cycles in deeting_tui, deferred imports included (issue 14, rule 5).

A cycle hidden by an import inside a function still ties the two modules together: neither
can be read, tested or moved without the other, and the order they load in decides whether
start-up works. So the graph below counts EVERY import statement in a module, wherever it
sits (module level, function body, try/except), with one exception: imports under
`if TYPE_CHECKING:` never run, so they are left out (a screen may name its app in a type
hint without loading it).

Edges: `import a.b` and `from a.b import x` import `a.b`; `from a import b` imports `a.b`
when `a/b.py` (or `a/b/`) exists, else `a`. Relative imports are resolved against the
module's package. Only edges between deeting_tui modules count (`from deeting_tui import
__version__` is an edge to the package's `__init__`).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "deeting_tui"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# Cycles we know of and have not broken yet, each as the sorted list of its modules.
KNOWN_CYCLES: list[list[str]] = []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import in the tree, skipping the bodies of `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in _import_nodes(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve(node, name, is_package)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                # `import a.b.c` where only `a.b` is ours: the longest known prefix.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop(0)
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def _describe(cycle: list[str], graph: dict[str, set[str]]) -> str:
    members = set(cycle)
    edges = [f"    {a} -> {b}" for a in cycle for b in sorted(graph[a]) if b in members]
    return " <-> ".join(cycle) + "\n" + "\n".join(edges)


def test_the_package_has_no_import_cycles_deferred_imports_included() -> None:
    graph = _graph()
    cycles = [c for c in _cycles(graph) if c not in KNOWN_CYCLES]
    assert not cycles, "import cycles:\n" + "\n".join(_describe(c, graph) for c in cycles)


def test_the_known_exceptions_are_still_cycles() -> None:
    """An exception that is no longer a cycle must leave the list, so it cannot hide a new one."""
    cycles = _cycles(_graph())
    stale = [c for c in KNOWN_CYCLES if c not in cycles]
    assert not stale, f"no longer cycles, remove from KNOWN_CYCLES: {stale}"


def test_the_checker_sees_deferred_imports_and_skips_type_checking() -> None:
    """The checker itself: a deferred relative import counts, a TYPE_CHECKING one does not."""
    assert _cycles({"p.a": {"p.b"}, "p.b": {"p.a"}, "p.c": {"p.a"}}) == [["p.a", "p.b"]]
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import hidden\nelse:\n    import shown\n"
        "def f():\n    from . import b\n"
    )
    nodes = _import_nodes(tree)
    plain = sorted(a.name for n in nodes if isinstance(n, ast.Import) for a in n.names)
    assert plain == ["shown"]
    deferred = [n for n in nodes if isinstance(n, ast.ImportFrom) and n.level]
    assert [_resolve(n, "p.a", is_package=False) for n in deferred] == ["p"]
