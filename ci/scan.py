"""Static security scan of plugin code: what a plugin's Python does, against what it declares.

The sandbox (Landlock, seccomp, the host-checking proxy) is the boundary; this scan is the
reviewer's second pair of eyes. It reads every ``.py`` file under a plugin with :mod:`ast`
(nothing is imported or run) and reports code that needs a permission the plugin does not
declare, code that hides what it does from a reader (eval of strings, imports by computed
name), native-code escapes (ctypes, cffi) and writes to fixed paths the plugin may not write.
It follows names through aliases (``import subprocess as sp``, ``from os import system``,
``run = sp.run``, ``getattr(os, "system")``, ``__import__("socket")``), so a renamed call is
still seen (``scan_analyzer.py``). The rules are data (``scan_rules.py``): ``--rules`` prints
them. This module is the command: suppressions, plugin folders and zips, the report.

``python ci/scan.py plugins/*`` prints one finding per line, prefixed by the plugin's path,
like ``ci/lint.py``; ``--json`` gives one document. A finding is silenced on its own line only,
and only with a reason: ``# deeting-scan: ignore[DS201] runs git, declared in README``. Exit 0:
no errors (warnings allowed); 1: any error; 2: bad usage.

A plugin's ``requirements.txt`` is checked too (``scan_deps.py``): a complete lock whose wheels
exist for every ``--target`` (fetched with pip into a temporary folder, wheels only), and, with
``--advisories PATH`` (OSV's PyPI ``all.zip``, or a folder of OSV JSON records), no pinned
version with a known advisory. Without ``--advisories`` the scan says that check was skipped.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import re
import sys
import tempfile
import tokenize
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

if not __package__:  # run as a script: the checkout's ``ci`` and deeting_tui, not others
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from ci._cli import parse, plugin_parser, report
from ci.scan_analyzer import Analyzer
from ci.scan_deps import AdvisoryDatabase, AdvisoryError, check_dependencies
from ci.scan_rules import ERROR, RULES, Finding
from deeting_tui.plugin.archive import ArchiveError, extract_zip
from deeting_tui.plugin.scopes import Scope, parsed_scopes
from deeting_tui.plugin.wheel_fetch import DEFAULT_TARGETS, Target
from deeting_tui.terminal_text import neutralise_line

__all__ = ["ScanReport", "main", "scan_path", "scan_source"]

_IGNORE = re.compile(r"deeting-scan:\s*ignore\[(?P<rules>[^\]]*)\](?P<reason>.*)$")


@dataclass
class ScanReport:
    path: Path
    files: int = 0
    scopes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Finding] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == ERROR for f in self.findings)


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
    for finding in sorted(Analyzer(tree, file, scopes).run(), key=lambda f: (f.line, f.rule)):
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


def scan_plugin(
    root: Path,
    shown: Path | None = None,
    *,
    targets: Sequence[Target] = DEFAULT_TARGETS,
    advisories: AdvisoryDatabase | None = None,
) -> ScanReport:
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
    pins, findings = check_dependencies(root, targets=targets, advisories=advisories)
    report.pins = [pin.requirement for pin in pins]
    report.findings += findings
    return report


def scan_path(
    path: Path,
    *,
    targets: Sequence[Target] = DEFAULT_TARGETS,
    advisories: AdvisoryDatabase | None = None,
) -> ScanReport:
    """Scan a plugin folder, or a zip after a safe extraction (as an install would do)."""
    if path.is_dir():
        return scan_plugin(path, targets=targets, advisories=advisories)
    if not (path.is_file() and zipfile.is_zipfile(path)):
        why = "is not a plugin folder or zip" if path.exists() else "does not exist"
        return _unusable(path, "", f"{path} {why}", "give a plugin folder or its zip")
    with tempfile.TemporaryDirectory(prefix="deeting-scan-") as tmp:
        try:
            root = extract_zip(path, Path(tmp) / "plugin")
        except ArchiveError as error:
            return _unusable(path, path.name, f"refused archive: {error}", "rebuild the zip")
        return scan_plugin(root, shown=path, targets=targets, advisories=advisories)


def _unusable(path: Path, file: str, message: str, fix: str) -> ScanReport:
    return ScanReport(path, findings=[Finding("DS004", ERROR, file, 0, 0, message, fix)])


# -- the command -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = plugin_parser("scan.py", "Static security scan of Deeting plugin code.")
    parser.add_argument("--rules", action="store_true", help="list the rules and exit")
    parser.add_argument(
        "--advisories",
        type=Path,
        metavar="PATH",
        help="offline advisory database: OSV's PyPI all.zip, or a folder of OSV JSON files",
    )
    parser.add_argument(
        "--target",
        type=_target,
        action="append",
        metavar="PY-PLATFORM",
        help="a Python and platform the dependencies need wheels for, e.g. "
        "3.12-manylinux_2_17_x86_64 (repeatable; default: the registry's)",
    )
    args = parse(parser, argv, needs_paths=lambda args: not args.rules)
    if isinstance(args, int):
        return args
    if args.rules:
        _print_rules(args.json)
        return 0
    database = None
    if args.advisories is not None:
        try:
            database = AdvisoryDatabase.load(args.advisories)
        except AdvisoryError as error:
            print(neutralise_line(f"scan.py: error: {error}"), file=sys.stderr)
            return 2
    targets = args.target or DEFAULT_TARGETS
    reports = [scan_path(p, targets=targets, advisories=database) for p in args.paths]
    if database is None and any(r.pins for r in reports):
        print(
            "scan.py: advisory check skipped: no --advisories database given (OSV's PyPI "
            "all.zip, or a folder of OSV JSON files)",
            file=sys.stderr,
        )
    return report(reports, args.json, _as_json, _print_plain)


def _target(text: str) -> Target:
    try:
        return Target.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


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
        "pins": report.pins,
    }


if __name__ == "__main__":
    sys.exit(main())
