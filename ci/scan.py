"""Static security scan of plugin code: what a plugin's Python does, against what it declares.

The sandbox (Landlock, seccomp, the host-checking proxy) is the boundary; this scan is the
reviewer's second pair of eyes. It reads every ``.py`` file under a plugin with :mod:`ast`
(nothing is imported or run) and reports code that needs a permission the plugin does not
declare, code that hides what it does from a reader (eval of strings, imports by computed
name), native-code escapes (ctypes, cffi) and writes to fixed paths the plugin may not write.
It follows names through aliases (``import subprocess as sp``, ``from os import system``,
``run = sp.run``, ``getattr(os, "system")``, ``__import__("socket")``), so a renamed call is
still seen. The rules are data (:data:`RULES`): ``--rules`` prints them.

``python ci/scan.py plugins/*`` prints one finding per line, prefixed by the plugin's path,
like ``ci/lint.py``; ``--json`` gives one document. A finding is silenced on its own line only,
and only with a reason: ``# deeting-scan: ignore[DS201] runs git, declared in README``. Exit 0:
no errors (warnings allowed); 1: any error; 2: bad usage.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import os
import posixpath
import re
import sys
import tempfile
import tokenize
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

if not __package__:  # run as a script: the checkout's ``ci`` and deeting_tui, not others
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from ci._cli import parse, plugin_parser, report
from deeting_tui.plugin.archive import ArchiveError, extract_zip
from deeting_tui.plugin.scopes import Scope, ScopeError, covers, parse_scope, parsed_scopes
from deeting_tui.sandbox.policy import BASE_DEVICES
from deeting_tui.terminal_text import neutralise_line

__all__ = ["RULES", "Finding", "Rule", "ScanReport", "main", "scan_path", "scan_source"]

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: str
    message: str
    fix: str


def _rules(table: str) -> dict[str, Rule]:
    """The table below as Rule objects: ``ID SEVERITY NAME | message | fix`` per line."""
    rules = {}
    for line in filter(None, (line.strip() for line in table.splitlines())):
        head, message, fix = (part.strip() for part in line.split(" | "))
        rule_id, severity, name = head.split()
        rules[rule_id] = Rule(rule_id, name, severity, message, fix)
    return rules


RULES: dict[str, Rule] = _rules("""
DS001 error unparsable | a Python file cannot be parsed, so it cannot be checked \
| fix the syntax error (the worker could not import this file either)
DS002 error bad-suppression | an ignore comment without a reason, or naming an unknown rule \
| write: # deeting-scan: ignore[RULE] why this is safe
DS003 warning unused-suppression | an ignore comment that silences nothing on its line \
| remove the comment, or move it to the line of the finding
DS004 error manifest-unreadable | kimai.json's permissions cannot be read, so the code is \
judged as declaring none | fix kimai.json (python ci/lint.py PATH says how)
DS101 error network-without-scope | network code (sockets, HTTP clients) in a plugin that \
declares no network scope | declare "network:HOST" (each host it talks to) in kimai.json's \
permissions, or remove the network code
DS201 error shell-without-scope | runs programs (subprocess, os.system, os.popen, os.exec*, \
os.spawn*, pty) in a plugin that does not declare 'shell' | declare "shell" in kimai.json's \
permissions, or do the work in Python
DS301 error native-code | ctypes or cffi: native calls step around the sandbox's guard rails, \
whatever the permissions | use a Python library, or a program run through the 'shell' scope
DS401 error dynamic-code | eval, exec or compile of a string that is not a literal: the code \
that runs cannot be reviewed | parse data with json or ast; dispatch on names with a dict of \
functions
DS402 error dynamic-import | __import__ or importlib.import_module of a computed name: what \
is imported cannot be reviewed | import modules by name (import x), or map the allowed names \
to modules in a dict
DS501 error write-outside-plugin | writes to a fixed path outside the plugin's own folders \
and its filesystem:write scopes | write under ctx.data_dir or ctx.cache_dir, or declare \
"filesystem:write:PATH" in kimai.json
DS601 warning unsafe-deserialisation | pickle, marshal or shelve loads run code chosen by \
whoever wrote the data | store data as JSON (json.loads) and check its shape
""")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Qualified-name patterns (fnmatch; a pattern also covers everything under it: "socket"
# covers "socket.socket"). A rule is skipped when the plugin declares the scope named.
NAME_RULES: tuple[tuple[str, str | None, frozenset[str]], ...] = (
    (
        "DS101",
        "network",
        _words("""
        socket _socket socketserver http.client http.server urllib.request urllib3 requests
        httpx aiohttp websocket websockets ftplib smtplib poplib imaplib nntplib telnetlib
        xmlrpc.client xmlrpc.server pycurl grpc paramiko asyncio.open_connection
        asyncio.start_server asyncio.open_unix_connection asyncio.start_unix_server"""),
    ),
    (
        "DS201",
        "shell",
        _words("""
        subprocess _posixsubprocess pty pexpect plumbum sh os.system os.popen os.exec*
        os.spawn* os.posix_spawn* os.forkpty asyncio.create_subprocess_*"""),
    ),
    ("DS301", None, _words("ctypes _ctypes cffi")),
    (
        "DS601",
        None,
        _words("""
        pickle.load pickle.loads pickle.Unpickler _pickle.load* _pickle.Unpickler cPickle
        dill.load* cloudpickle.load* joblib.load marshal.load marshal.loads shelve.open
        yaml.unsafe_load"""),
    ),
)
DYNAMIC_CODE = _words("builtins.eval builtins.exec builtins.compile")
DYNAMIC_IMPORT = _words("builtins.__import__ importlib.import_module importlib.__import__")
PATH_TYPES = _words("pathlib.Path pathlib.PurePath pathlib.PosixPath pathlib.PurePosixPath")
OPENERS = _words("builtins.open io.open codecs.open os.open")
# Calls that change the file system, by which of their arguments is the path changed.
WRITES_FIRST = _words("""
    os.remove os.unlink os.rmdir os.removedirs os.mkdir os.makedirs os.truncate os.chmod
    os.lchmod os.chown os.lchown os.mkfifo os.mknod os.utime shutil.rmtree shutil.chown""")
WRITES_BOTH = _words("os.rename os.renames os.replace shutil.move")
WRITES_SECOND = _words("""
    shutil.copy shutil.copy2 shutil.copyfile shutil.copytree shutil.copymode shutil.copystat
    os.symlink os.link""")
TEMP_FILES = _words("""
    tempfile.mkstemp tempfile.mkdtemp tempfile.NamedTemporaryFile tempfile.TemporaryFile
    tempfile.TemporaryDirectory tempfile.SpooledTemporaryFile""")
PATH_WRITE_METHODS = _words("""
    write_text write_bytes touch mkdir unlink rmdir rename replace symlink_to hardlink_to
    chmod lchmod""")
WRITE_FLAGS = _words("O_WRONLY O_RDWR O_CREAT O_APPEND O_TRUNC O_EXCL")
BUILTIN_NAMES = frozenset(dir(builtins))

_IGNORE = re.compile(r"deeting-scan:\s*ignore\[(?P<rules>[^\]]*)\](?P<reason>.*)$")


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    file: str
    line: int
    column: int
    message: str
    fix: str
    reason: str | None = None  # set when an ignore comment silenced it

    @classmethod
    def of(cls, rule: str, file: str, line: int, column: int, message: str) -> Finding:
        return cls(rule, RULES[rule].severity, file, line, column, message, RULES[rule].fix)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        said = f"{self.severity} {self.rule} {RULES[self.rule].name}: {self.message}"
        return f"{where + ': ' if where else ''}{said} — fix: {self.fix}"


@dataclass
class ScanReport:
    path: Path
    files: int = 0
    scopes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == ERROR for f in self.findings)


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


class _Analyzer:
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
        self.findings += _Analyzer(tree, self.file, self.scopes, at=self.at or call).run()

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


# -- suppressions ----------------------------------------------------------------------------


@dataclass
class _Ignore:
    line: int
    column: int
    rules: set[str]
    reason: str


def _ignores(source: str, file: str) -> tuple[dict[int, _Ignore], list[Finding]]:
    ignores: dict[int, _Ignore] = {}
    problems: list[Finding] = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT or "deeting-scan:" not in token.string:
            continue
        line, column = token.start[0], token.start[1] + 1
        match = _IGNORE.search(token.string)
        if match is None:
            problems.append(
                Finding.of("DS002", file, line, column, "ignore comment not understood")
            )
            continue
        rules = {r.strip() for r in match["rules"].split(",") if r.strip()}
        reason = match["reason"].strip().lstrip("-—:").strip()
        unknown = sorted(rules - set(RULES)) or ([] if rules else ["(none)"])
        if unknown:
            known = ", ".join(RULES)
            message = f"ignore names unknown rule {', '.join(unknown)} (rules: {known})"
            problems.append(Finding.of("DS002", file, line, column, message))
        elif not re.search(r"\w", reason):
            message = f"ignore[{', '.join(sorted(rules))}] has no reason, so it silences nothing"
            problems.append(Finding.of("DS002", file, line, column, message))
        else:
            ignores[line] = _Ignore(line, column, rules, reason)
    return ignores, problems


# -- files and plugins -----------------------------------------------------------------------


def scan_source(
    source: str, file: str, scopes: Sequence[Scope]
) -> tuple[list[Finding], list[Finding]]:
    """Findings and suppressed findings (with their reasons) for one file's text."""
    try:
        tree = ast.parse(source, filename=file)
    except SyntaxError as error:
        message = f"syntax error: {error.msg}"
        return [Finding.of("DS001", file, error.lineno or 0, error.offset or 0, message)], []
    except (ValueError, RecursionError, MemoryError) as error:
        return [Finding.of("DS001", file, 0, 0, f"cannot be parsed: {error}")], []
    ignores, findings = _ignores(source, file)
    seen: set[tuple[str, int]] = set()
    suppressed: list[Finding] = []
    for finding in sorted(_Analyzer(tree, file, scopes).run(), key=lambda f: (f.line, f.rule)):
        if (finding.rule, finding.line) in seen:
            continue
        seen.add((finding.rule, finding.line))
        ignore = ignores.get(finding.line)
        if ignore is not None and finding.rule in ignore.rules:
            suppressed.append(Finding(**{**asdict(finding), "reason": ignore.reason}))
        else:
            findings.append(finding)
    for ignore in ignores.values():
        unused = sorted(ignore.rules - {f.rule for f in suppressed if f.line == ignore.line})
        if unused:
            message = f"ignore[{', '.join(unused)}] silences nothing on this line"
            findings.append(Finding.of("DS003", file, ignore.line, ignore.column, message))
    return sorted(findings, key=lambda f: (f.line, f.column, f.rule)), suppressed


def _declared_scopes(root: Path) -> tuple[list[Scope], Finding | None]:
    try:
        kimai = json.loads((root / "kimai.json").read_text("utf-8"))
        permissions = kimai.get("permissions", []) if isinstance(kimai, dict) else None
        if not isinstance(permissions, list):
            raise ValueError("'permissions' is not a list")
    except (OSError, ValueError) as error:
        why = getattr(error, "strerror", None) or str(error)
        message = f"cannot read its permissions ({why}); judged as declaring none"
        return [], Finding.of("DS004", "kimai.json", 0, 0, message)
    return parsed_scopes(p for p in permissions if isinstance(p, str)), None


def _python_files(root: Path) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):  # never follows symlinked folders
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        found += [Path(folder, f) for f in files if f.endswith(".py")]
    return sorted(p for p in found if not p.is_symlink())


def scan_plugin(root: Path, shown: Path | None = None) -> ScanReport:
    report = ScanReport(shown or root)
    scopes, problem = _declared_scopes(root)
    report.scopes = [str(scope) for scope in scopes]
    if problem is not None:
        report.findings.append(problem)
    for path in _python_files(root):
        rel = path.relative_to(root).as_posix()
        report.files += 1
        try:
            with tokenize.open(path) as handle:  # honours a coding: line, as Python does
                source = handle.read()
        except (OSError, SyntaxError, UnicodeDecodeError) as error:
            message = f"cannot be read as Python source: {error}"
            report.findings.append(Finding.of("DS001", rel, 0, 0, message))
            continue
        findings, suppressed = scan_source(source, rel, scopes)
        report.findings += findings
        report.suppressed += suppressed
    return report


def scan_path(path: Path) -> ScanReport:
    """Scan a plugin folder, or a zip after a safe extraction (as an install would do)."""
    if path.is_dir():
        return scan_plugin(path)
    if not (path.is_file() and zipfile.is_zipfile(path)):
        why = "is not a plugin folder or zip" if path.exists() else "does not exist"
        return _unusable(path, "", f"{path} {why}", "give a plugin folder or its zip")
    with tempfile.TemporaryDirectory(prefix="deeting-scan-") as tmp:
        try:
            root = extract_zip(path, Path(tmp) / "plugin")
        except ArchiveError as error:
            return _unusable(path, path.name, f"refused archive: {error}", "rebuild the zip")
        return scan_plugin(root, shown=path)


def _unusable(path: Path, file: str, message: str, fix: str) -> ScanReport:
    return ScanReport(path, findings=[Finding("DS004", ERROR, file, 0, 0, message, fix)])


# -- the command -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = plugin_parser("scan.py", "Static security scan of Deeting plugin code.")
    parser.add_argument("--rules", action="store_true", help="list the rules and exit")
    args = parse(parser, argv, needs_paths=lambda args: not args.rules)
    if isinstance(args, int):
        return args
    if args.rules:
        _print_rules(args.json)
        return 0
    reports = [scan_path(path) for path in args.paths]
    return report(reports, args.json, _as_json, _print_plain)


def _print_rules(as_json: bool) -> None:
    if as_json:
        print(json.dumps({"rules": [asdict(rule) for rule in RULES.values()]}, indent=2))
        return
    for rule in RULES.values():
        print(f"{rule.id} {rule.severity:<7} {rule.name}: {rule.message}\n        fix: {rule.fix}")


def _print_plain(report: ScanReport) -> None:
    if report.ok:
        notes = [f"{report.files} file{'s' * (report.files != 1)}"]
        if report.suppressed:
            notes.append(f"{len(report.suppressed)} suppressed")
        print(neutralise_line(f"ok  {report.path} ({', '.join(notes)})"))
    for finding in report.findings:  # may quote the plugin's code: neutralised, one line each
        print(neutralise_line(f"{report.path}: {finding}"))


def _as_json(report: ScanReport) -> dict[str, object]:
    def entry(finding: Finding) -> dict[str, object]:
        document = {"name": RULES[finding.rule].name, **asdict(finding)}
        if finding.reason is None:
            del document["reason"]
        return document

    return {
        "path": str(report.path),
        "ok": report.ok,
        "files": report.files,
        "scopes": report.scopes,
        "findings": [entry(f) for f in report.findings],
        "suppressed": [entry(f) for f in report.suppressed],
    }


if __name__ == "__main__":
    sys.exit(main())
