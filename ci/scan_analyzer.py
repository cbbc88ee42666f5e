"""The scan's reader: one Python file's syntax tree, its names followed, every rule applied.

It resolves what a name stands for through imports, aliases, assignments, ``getattr`` with a
literal name and ``__import__`` of a literal (``run = sp.run`` is ``subprocess.run``), then
checks imports, uses and calls against ``scan_rules``; a literal string given to ``exec`` is
read the same way. Nothing is imported or run. Suppressions and whole plugins are
``ci/scan.py``'s.
"""

from __future__ import annotations

import ast
import posixpath
from collections.abc import Iterator, Sequence
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

from ci.scan_rules import (
    BUILTIN_NAMES,
    DYNAMIC_CODE,
    DYNAMIC_IMPORT,
    NAME_RULES,
    OPENERS,
    PATH_TYPES,
    PATH_WRITE_METHODS,
    TEMP_FILES,
    WRITE_FLAGS,
    WRITES_BOTH,
    WRITES_FIRST,
    WRITES_SECOND,
    Finding,
)
from deeting_tui.plugin.scopes import Scope, ScopeError, covers, parse_scope
from deeting_tui.sandbox.policy import BASE_DEVICES

__all__ = ["Analyzer"]


def _matches(name: str, pattern: str) -> bool:
    return fnmatchcase(name, pattern) or fnmatchcase(name, pattern + ".*")


def _literal_str(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
        value = node.value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return None


def _argument(call: ast.Call, index: int, *names: str) -> ast.expr | None:
    if len(call.args) > index and not any(
        isinstance(a, ast.Starred) for a in call.args[: index + 1]
    ):
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg in names), None)


class Analyzer:
    """One file (or one literal exec'd string inside it): names, then every rule."""

    def __init__(
        self, tree: ast.AST, file: str, scopes: Sequence[Scope], at: ast.AST | None = None
    ):
        self.tree, self.file, self.scopes = tree, file, list(scopes)
        self.at = at  # a literal string exec'd at this node: report everything here
        kinds = {scope.kind for scope in self.scopes}
        self.name_rules = [(rule, pats) for rule, scope, pats in NAME_RULES if scope not in kinds]
        self.bindings: dict[str, set[str]] = {}
        self.assigned: dict[str, list[ast.expr]] = {}
        self.star_modules: set[str] = set()
        self.reported_via: dict[str, set[str]] = {}  # name -> rules its import was flagged for
        self.parents: dict[ast.AST, ast.AST] = {}
        self.findings: list[Finding] = []

    def run(self) -> list[Finding]:
        for parent in ast.walk(self.tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
        for _ in range(3):  # a few rounds: `sp = subprocess` then `run = sp.run`
            self._bind()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                self._check_import(node)
            elif isinstance(node, ast.Call):
                self._check_call(node)
            if isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Load):
                self._check_use(node)
        return self.findings

    def add(self, rule: str, node: ast.AST, message: str) -> None:
        where = self.at or node
        line, column = getattr(where, "lineno", 0), getattr(where, "col_offset", -1) + 1
        self.findings.append(Finding.of(rule, self.file, line, column, message))

    # -- names -------------------------------------------------------------------------------

    def _bind(self) -> None:
        self.assigned.clear()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name if alias.asname else alias.name.split(".")[0]
                    self.bindings.setdefault(alias.asname or top, set()).add(top)
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name == "*":
                        if node.module and not node.level:
                            self.star_modules.add(node.module)
                        continue
                    origin = f"{node.module}.{alias.name}" if node.module and not node.level else ""
                    self.bindings.setdefault(alias.asname or alias.name, set()).add(origin)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.bindings.setdefault(node.name, set()).add("")
            elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        self.assigned.setdefault(target.id, []).append(node.value)
                        self.bindings.setdefault(target.id, set()).update(self.qualify(node.value))

    def qualify(self, node: ast.AST, depth: int = 0) -> set[str]:
        """Every dotted name ``node`` may stand for (``sp.run`` → ``subprocess.run``)."""
        if depth > 20:
            return set()
        if isinstance(node, ast.Name):
            known = {q for q in self.bindings.get(node.id, ()) if q}
            if node.id in self.bindings:
                return known
            if node.id in BUILTIN_NAMES:
                return {f"builtins.{node.id}"}
            return {f"{module}.{node.id}" for module in self.star_modules}
        if isinstance(node, ast.Attribute):
            return {f"{q}.{node.attr}" for q in self.qualify(node.value, depth + 1)}
        if isinstance(node, ast.Call):
            func = self.qualify(node.func, depth + 1)
            name = _literal_str(_argument(node, 1, "name"))
            if "builtins.getattr" in func and name is not None:
                return {f"{q}.{name}" for q in self.qualify(node.args[0], depth + 1)}
            module = _literal_str(_argument(node, 0, "name"))
            if module is not None and func & DYNAMIC_IMPORT:
                return {module.split(".")[0] if "builtins.__import__" in func else module}
        return set()

    def _root(self, node: ast.AST) -> str | None:
        while isinstance(node, ast.Attribute):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    # -- rules -------------------------------------------------------------------------------

    def _name_rules(self, names: set[str]) -> Iterator[tuple[str, str]]:
        for rule, patterns in self.name_rules:
            hit = next((n for n in sorted(names) for p in patterns if _matches(n, p)), None)
            if hit is not None:
                yield rule, hit

    def _check_import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            pairs = [(a.name, a.asname or a.name.split(".")[0]) for a in node.names]
        elif node.module and not node.level:
            pairs = [
                (node.module if a.name == "*" else f"{node.module}.{a.name}", a.asname or a.name)
                for a in node.names
            ]
        else:
            return  # the plugin's own modules
        for module, name in pairs:
            for rule, hit in self._name_rules({module}):
                self.reported_via.setdefault(name, set()).add(rule)
                self.add(rule, node, self._say(rule, f"imports {hit!r}"))

    def _check_use(self, node: ast.Name | ast.Attribute) -> None:
        parent = self.parents.get(node)
        if isinstance(parent, ast.Attribute) and parent.value is node:
            return  # only the longest dotted name is judged
        root = self._root(node) or ""
        already = self.reported_via.get(root, set())
        if root not in self.bindings and root not in BUILTIN_NAMES:
            already = already | self.reported_via.get("*", set())  # from a flagged `import *`
        for rule, hit in self._name_rules(self.qualify(node)):
            if rule not in already:
                self.add(rule, node, self._say(rule, f"uses {hit!r}"))
                if isinstance(parent, ast.Assign) and parent.value is node:
                    for target in parent.targets:  # `run = os.system`: said here, not per call
                        if isinstance(target, ast.Name):
                            self.reported_via.setdefault(target.id, set()).add(rule)

    def _say(self, rule: str, what: str) -> str:
        if rule == "DS101":
            return f"{what}, but kimai.json declares no network scope"
        if rule == "DS201":
            return f"{what}, but kimai.json does not declare 'shell'"
        if rule == "DS301":
            return f"{what}: native code can step around the sandbox's guard rails"
        return f"{what}: loading such data runs code chosen by whoever wrote it"

    def _check_call(self, call: ast.Call) -> None:
        func = self.qualify(call.func)
        if "builtins.getattr" in func:  # getattr(os, "system"): a use of os.system
            for rule, hit in self._name_rules(self.qualify(call)):
                self.add(rule, call, self._say(rule, f"uses {hit!r} (through getattr)"))
        if func & DYNAMIC_CODE:
            self._dynamic_code(call, sorted(func & DYNAMIC_CODE)[0].removeprefix("builtins."))
        if func & DYNAMIC_IMPORT:
            self._dynamic_import(call, sorted(func & DYNAMIC_IMPORT)[0])
        for name in sorted(func):
            self._writes(call, name)
        if isinstance(call.func, ast.Attribute) and not func:
            self._path_method(call, call.func)

    def _dynamic_code(self, call: ast.Call, name: str) -> None:
        source = _argument(call, 0, "source", "expression", "object")
        if source is None:
            return
        text = _literal_str(source)
        if text is None:
            self.add("DS401", call, f"{name}() of a computed string")
            return
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError):
            return  # a literal that is not Python raises at run time; nothing hides in it
        self.findings += Analyzer(tree, self.file, self.scopes, at=self.at or call).run()

    def _dynamic_import(self, call: ast.Call, name: str) -> None:
        module = _literal_str(_argument(call, 0, "name"))
        short = name.removeprefix("builtins.")
        if module is None:
            self.add("DS402", call, f"{short}() of a computed module name")
            return
        for rule, hit in self._name_rules({module}):
            self.add(rule, call, self._say(rule, f"imports {hit!r} (through {short})"))

    def _writes(self, call: ast.Call, name: str) -> None:
        targets: list[ast.expr | None] = []
        if name in OPENERS:
            mode = _argument(call, 1, "flags" if name == "os.open" else "mode")
            if self._opens_for_writing(name, mode):
                targets.append(_argument(call, 0, "file", "path", "filename"))
        elif name in WRITES_FIRST:
            targets.append(_argument(call, 0, "path", "name"))
        elif name in WRITES_BOTH:
            targets += [_argument(call, 0, "src"), _argument(call, 1, "dst")]
        elif name in WRITES_SECOND:
            targets.append(_argument(call, 1, "dst"))
        elif name in TEMP_FILES:
            targets.append(next((k.value for k in call.keywords if k.arg == "dir"), None))
        for target in targets:
            self._check_target(call, target, f"{name.removeprefix('builtins.')}()")

    def _opens_for_writing(self, name: str, mode: ast.expr | None) -> bool:
        if mode is None:
            return False
        if name == "os.open":
            flags = {
                n.attr if isinstance(n, ast.Attribute) else getattr(n, "id", "")
                for n in ast.walk(mode)
            }
            return bool(flags & WRITE_FLAGS) or not isinstance(mode, ast.Attribute | ast.Name)
        text = _literal_str(mode)
        return text is None or any(letter in text for letter in "wax+")

    def _path_method(self, call: ast.Call, func: ast.Attribute) -> None:
        if not self._is_path(func.value):
            return  # "a/b".replace(...) is a string method, not a rename
        if func.attr == "open":
            if self._opens_for_writing("open", _argument(call, 0, "mode")):
                self._check_target(call, func.value, "Path.open()")
        elif func.attr in PATH_WRITE_METHODS:
            self._check_target(call, func.value, f"Path.{func.attr}()")
            if func.attr in ("rename", "replace", "symlink_to", "hardlink_to") and call.args:
                self._check_target(call, call.args[0], f"Path.{func.attr}()")

    def _check_target(self, call: ast.Call, target: ast.expr | None, how: str) -> None:
        path = self.literal_path(target) if target is not None else None
        if not path:
            return  # computed at run time: the sandbox decides
        if path.startswith(("/", "~")):
            if path in BASE_DEVICES or self._may_write(path):
                return
            where = "outside the plugin's own folders and its filesystem:write scopes"
        elif ".." not in PurePosixPath(path).parts:
            return  # relative: the worker runs in the plugin's data folder
        else:
            where = "which climbs out of the plugin's data folder"
        self.add("DS501", call, f"{how} writes to {path!r}, {where}")

    def _may_write(self, path: str) -> bool:
        try:
            wanted = parse_scope(f"filesystem:write:{path}")
        except ScopeError:
            return False
        return any(covers(scope, wanted) for scope in self.scopes)

    def _is_path(self, node: ast.AST, depth: int = 0) -> bool:
        """Whether ``node`` builds a pathlib path (so its methods are file operations)."""
        if depth > 20:
            return False
        if isinstance(node, ast.Name):
            values = self.assigned.get(node.id, [])
            return len(values) == 1 and self._is_path(values[0], depth + 1)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return self._is_path(node.left, depth + 1)
        if not isinstance(node, ast.Call):
            return False
        if self.qualify(node.func) & (PATH_TYPES | {"pathlib.Path.home"}):
            return True
        func = node.func
        methods = ("expanduser", "absolute", "resolve")
        return (
            isinstance(func, ast.Attribute)
            and func.attr in methods
            and self._is_path(func.value, depth + 1)
        )

    def literal_path(self, node: ast.AST, depth: int = 0) -> str | None:
        """The path ``node`` always is, when the source fixes it (``Path("/etc") / "x"``)."""
        if depth > 20:
            return None
        text = _literal_str(node)
        if text is not None:
            return text
        if isinstance(node, ast.Name):
            values = self.assigned.get(node.id, [])
            return self.literal_path(values[0], depth + 1) if len(values) == 1 else None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left, right = self.literal_path(node.left, depth + 1), _literal_str(node.right)
            return posixpath.join(left, right) if left is not None and right is not None else None
        if not isinstance(node, ast.Call):
            return None
        func = self.qualify(node.func)
        parts = [self.literal_path(arg, depth + 1) for arg in node.args]
        if None in parts or node.keywords:
            return None
        texts = [part for part in parts if part is not None]
        if func & PATH_TYPES or "os.path.join" in func:
            return posixpath.join(*texts) if texts else "."
        if func & {"pathlib.Path.home", "os.path.expanduser"}:
            return texts[0] if texts else "~"
        if isinstance(node.func, ast.Attribute) and node.func.attr in (
            "expanduser",
            "absolute",
            "resolve",
        ):
            return self.literal_path(node.func.value, depth + 1)
        return None
