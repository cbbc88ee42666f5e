"""Every import in the checkout's Python packages, wherever and however it is written.

The import rules (tests/test_import_rules.py) and the cycle check read the code, not a running
interpreter: an import inside a function, under `if TYPE_CHECKING:`, written relative
(`from ..store import x`) or as `importlib.import_module("deeting_tui.ui")` with a literal name
ties two modules together as surely as one at the top of the file, and would be missed by
watching `sys.modules` after an `import`.

Names: `import a.b` and `from a.b import x` import `a.b`; `from a import b` imports `a.b` when
`a/b.py` (or `a/b/`) is one of ours, else `a`; `import a.b.c` where only `a.b` is ours counts as
`a.b`. A name outside the scanned packages is kept as written (`anthropic.types`), so a rule can
forbid a third-party SDK too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The packages the rules speak of: the product, and the two tool packages beside it.
PACKAGES = ("deeting_tui", "registry_tools", "ci")


@dataclass(frozen=True)
class Import:
    """One import statement (or literal `importlib.import_module` call) and what it loads."""

    file: str  # relative to the scanned root, e.g. deeting_tui/ui/app.py
    line: int
    text: str  # the statement as written, for the failure message
    target: str  # the module it loads, resolved (see the module docstring)
    type_checking: bool  # under `if TYPE_CHECKING:`: never runs, but still couples the code

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: `{self.text}` (loads {self.target})"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = REPO, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Every module of the packages below root, by dotted name."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _literal_import_call(node: ast.Call, module: str, is_package: bool) -> str | None:
    """The module named by `importlib.import_module("x")` / `import_module("x")` /
    `__import__("x")` with a literal string, else None. A relative name (".x") is resolved
    against a literal `package=`, else against the calling module's own package."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__") or not node.args:
        return None
    named = _literal(node.args[0])
    if named is None or not named.startswith("."):
        return named
    level = len(named) - len(named.lstrip("."))
    package = next((_literal(k.value) for k in node.keywords if k.arg == "package"), None)
    if package is None:
        package = module if is_package else module.rpartition(".")[0]
    base = package.split(".")
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([named[level:]] if named[level:] else []))


def _walk(tree: ast.AST) -> Iterator[tuple[ast.AST, bool]]:
    """Every node with whether it sits under `if TYPE_CHECKING:` (the else branch does run)."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, hidden = stack.pop()
        yield node, hidden
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend((child, True) for child in node.body)
            stack.extend((child, hidden) for child in node.orelse)
            continue
        stack.extend((child, hidden) for child in ast.iter_child_nodes(node))


def resolve_from(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a `from … import` names, relative levels resolved."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _ours(target: str, known: dict[str, Path] | set[str]) -> str:
    """The longest prefix of target that is one of our modules; target itself if none is."""
    name = target
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or target


def imports_in_source(
    source: str, file: str, module: str, is_package: bool, known: dict[str, Path] | set[str]
) -> list[Import]:
    """Every import in one module's source, in line order."""
    found: list[Import] = []
    for node, hidden in _walk(ast.parse(source, file)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve_from(node, module, is_package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in known else base)
        elif (
            isinstance(node, ast.Call)
            and (named := _literal_import_call(node, module, is_package)) is not None
        ):
            targets = [named]
        else:
            continue
        text = ast.unparse(node)
        for target in dict.fromkeys(targets):  # `from a import b, c` may name `a` twice
            found.append(
                Import(file, getattr(node, "lineno", 0), text, _ours(target, known), hidden)
            )
    return sorted(found, key=lambda i: (i.line, i.target))


def all_imports(root: Path = REPO, packages: Iterable[str] = PACKAGES) -> dict[str, list[Import]]:
    """Every import of every module below root, by importing module."""
    known = modules(root, packages)
    return {
        name: imports_in_source(
            path.read_text(),
            str(path.relative_to(root)),
            name,
            path.name == "__init__.py",
            known,
        )
        for name, path in known.items()
    }


def within(name: str, package: str) -> bool:
    """True when name is package itself or a module below it."""
    return name == package or name.startswith(package + ".")


def graph(
    imports: dict[str, list[Import]], *, with_type_checking: bool = False
) -> dict[str, set[str]]:
    """Module → the modules of ours it imports (self-imports and outside names dropped)."""
    return {
        name: {
            i.target
            for i in found
            if i.target in imports
            and i.target != name
            and (with_type_checking or not i.type_checking)
        }
        for name, found in imports.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, sorted(edges[root]))]
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
                    work.append((nxt, sorted(edges[nxt])))
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
