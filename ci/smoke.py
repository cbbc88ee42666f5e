"""Smoke-test plugins in the real sandboxed worker with the example calls they declare.

Each plugin ships ``examples.yaml`` beside its manifest: a list of calls, at least one per
tool::

    - tool: weather
      arguments: {location: Paris, days: 2}
      expect: {error: true, summary_contains: "cannot reach"}   # optional

For every plugin this builds a real kernel on a throw-away ``DEETING_HOME``, installs the
plugin as a user would (its declared permissions granted), makes each call through the
kernel — so arguments are checked against the tool's schema, the worker is sandboxed and
supervised — and then judges the answer: a success must be a Result whose ``data`` fits its
renderer's payload schema (``renderers/NAME/schema.json``), an expected error must be one
clear line, and a crashed worker always fails. Timing is reported per call.

The run is offline unless ``--network`` is given: the kernel's network proxy neither looks
up nor reaches any host but loopback, so a plugin granted ``network:HOST`` answers the same
on a laptop, in CI and on a runner that happens to have a connection; its examples say
``expect: {error: true}``. A plugin that declares bare ``network`` would connect by itself,
past the proxy, so offline it is not run: it is reported, to be smoked with ``--network``.

``python ci/smoke.py plugins/*``; ``--json`` for one document. Exit 0: every call passed;
1: any problem; 2: bad usage.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

if not __package__:  # run as a script: the checkout's ``ci`` and deeting_tui, not others
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from ci._cli import parse, plugin_parser, report
from deeting_tui.kernel.assistant import ToolOutcome
from deeting_tui.kernel.events import Event, PluginNotice
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.loader import PluginError
from deeting_tui.kernel.renderers import PayloadSchemas
from deeting_tui.paths import resolve_paths
from deeting_tui.plugin.archive import ArchiveError, extract_zip
from deeting_tui.plugin.manifest import PluginSpec, Problem, check_plugin
from deeting_tui.terminal_text import TerminalSafeLastResort, neutralise_line, one_line

__all__ = [
    "EXAMPLES_FILE",
    "CallReport",
    "Example",
    "OfflineEventLoop",
    "SmokeReport",
    "load_examples",
    "main",
    "smoke_paths",
]

EXAMPLES_FILE = "examples.yaml"
MAX_EXAMPLES_BYTES = 1 << 20
ENTRY_KEYS = ("tool", "arguments", "expect")
EXPECT_KEYS = ("error", "summary_contains")
SHAPE = "a list of calls like '- {tool: NAME, arguments: {...}, expect: {error: false}}'"


@dataclass(frozen=True)
class Example:
    index: int
    tool: str
    arguments: dict[str, Any] = field(hash=False)
    error: bool = False
    summary_contains: str | None = None


@dataclass
class CallReport:
    example: Example
    ok: bool = False  # the call succeeded (a Result), as opposed to an error result
    duration_ms: float = 0.0
    renderer: str | None = None
    summary: str = ""
    problems: list[Problem] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass
class SmokeReport:
    path: Path
    spec: PluginSpec | None = None
    problems: list[Problem] = field(default_factory=list)
    calls: list[CallReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(call.passed for call in self.calls)


# -- examples.yaml ---------------------------------------------------------------------------


class _Problems(list[Problem]):
    """Problems found in examples.yaml, each located by its field (``[2].expect.error``)."""

    def add(self, where: str, message: str) -> None:
        self.append(Problem(EXAMPLES_FILE, where, message))


def load_examples(root: Path, spec: PluginSpec) -> tuple[list[Example], list[Problem]]:
    """The plugin's example calls, or every reason they cannot be run (and no calls)."""
    problems = _Problems()
    document = _read_examples(root / EXAMPLES_FILE, problems)
    if problems:
        return [], problems
    if not isinstance(document, list) or not document:
        found = "an empty list" if document == [] else _kind(document)
        problems.add("", f"must be {SHAPE}, not {found}")
        return [], problems
    examples = [_example(index, entry, spec, problems) for index, entry in enumerate(document)]
    if problems:
        return [], problems
    called = {example.tool for example in examples if example is not None}
    for tool in spec.tools:
        if tool.name not in called:
            problems.add("", f"no example calls tool {tool.name!r}: every tool needs at least one")
    return ([], problems) if problems else ([e for e in examples if e is not None], [])


def _read_examples(path: Path, problems: _Problems) -> object:
    if not path.is_file():
        problems.add("", f"missing — {SHAPE}, at least one per tool")
        return None
    try:
        if path.stat().st_size > MAX_EXAMPLES_BYTES:
            problems.add("", f"too large: over {MAX_EXAMPLES_BYTES} bytes")
            return None
        return yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problems.add("", f"not valid YAML{where}: {getattr(error, 'problem', None) or error}")
    except (OSError, UnicodeDecodeError) as error:
        problems.add("", f"cannot be read: {error}")
    return None


def _example(index: int, entry: object, spec: PluginSpec, problems: _Problems) -> Example | None:
    at, before = f"[{index}]", len(problems)
    if not isinstance(entry, dict):
        problems.add(at, f"must be a mapping with tool, arguments, expect — not {_kind(entry)}")
        return None
    for key in entry:
        if key not in ENTRY_KEYS:
            problems.add(f"{at}.{key}", f"unknown key (allowed: {', '.join(ENTRY_KEYS)})")
    tool, arguments = entry.get("tool"), entry.get("arguments", {})
    names = ", ".join(t.name for t in spec.tools) or "none"
    if not isinstance(tool, str) or not tool:
        problems.add(f"{at}.tool", f"missing: name the tool to call (tools: {names})")
    elif spec.tool(tool) is None:
        problems.add(f"{at}.tool", f"{tool!r} is not a tool of this plugin (tools: {names})")
    if not isinstance(arguments, dict) or not all(isinstance(k, str) for k in arguments):
        problems.add(
            f"{at}.arguments", f"must be a mapping of names to values, not {_kind(arguments)}"
        )
    error, contains = _expect(at, entry.get("expect"), problems)
    if len(problems) != before:
        return None
    return Example(index, str(tool), dict(arguments), error, contains)


def _expect(at: str, expect: object, problems: _Problems) -> tuple[bool, str | None]:
    if expect is None:
        return False, None
    if not isinstance(expect, dict):
        wanted = " and/or ".join(EXPECT_KEYS)
        problems.add(f"{at}.expect", f"must be a mapping with {wanted}, not {_kind(expect)}")
        return False, None
    for key in expect:
        if key not in EXPECT_KEYS:
            problems.add(f"{at}.expect.{key}", f"unknown key (allowed: {', '.join(EXPECT_KEYS)})")
    error, contains = expect.get("error", False), expect.get("summary_contains")
    if not isinstance(error, bool):
        problems.add(f"{at}.expect.error", f"must be true or false, not {error!r}")
    if contains is not None and (not isinstance(contains, str) or not contains.strip()):
        problems.add(
            f"{at}.expect.summary_contains", f"must be a non-empty string, not {contains!r}"
        )
    return error is True, contains if isinstance(contains, str) else None


def _kind(value: object) -> str:
    if value is None:
        return "nothing (an empty file or value)"
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), f"a {type(value).__name__}")


# -- running ---------------------------------------------------------------------------------


class OfflineEventLoop(asyncio.SelectorEventLoop):
    """The kernel's loop for an offline run: it looks up and reaches loopback only.

    A plugin granted ``network:HOST`` reaches the internet only through the kernel's proxy,
    and the proxy resolves and connects from this loop; refusing here makes the proxy answer
    "bad gateway", as it would on a machine without a network. The name lookup is refused
    too: resolving a plugin's host is itself a query on the network. (A plugin granted bare
    ``network`` connects by itself, from its worker: the offline run does not start those.)
    """

    async def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        host = kwargs.get("host", args[1] if len(args) > 1 else None)
        if host is not None and not _is_loopback(host):
            raise OSError(errno.ENETUNREACH, f"smoke run is offline: no route to {host}")
        return await super().create_connection(*args, **kwargs)

    async def getaddrinfo(self, host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, f"smoke run is offline: {host} not looked up")
        return await super().getaddrinfo(host, *args, **kwargs)

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise OSError(errno.ENETUNREACH, f"smoke run is offline: no route to {address[0]}")
        return await super().sock_connect(sock, address)

    async def create_datagram_endpoint(self, *args: Any, **kwargs: Any) -> Any:
        remote = kwargs.get("remote_addr")
        if remote is not None and not _is_loopback(remote[0]):
            raise OSError(errno.ENETUNREACH, f"smoke run is offline: no route to {remote[0]}")
        return await super().create_datagram_endpoint(*args, **kwargs)


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def smoke_paths(paths: Sequence[Path], *, network: bool = False) -> list[SmokeReport]:
    """Smoke-test each plugin folder or zip, one fresh kernel and home each."""
    factory = asyncio.SelectorEventLoop if network else OfflineEventLoop
    with asyncio.Runner(loop_factory=factory) as runner:
        return [runner.run(_smoke_path(Path(path), network)) for path in paths]


async def _smoke_path(path: Path, network: bool = False) -> SmokeReport:
    with tempfile.TemporaryDirectory(prefix="deeting-smoke-") as tmp:
        if path.is_file() and zipfile.is_zipfile(path):
            try:
                root = extract_zip(path, Path(tmp) / "plugin")
            except ArchiveError as error:
                return SmokeReport(path, problems=[Problem(path.name, "", f"refused: {error}")])
        else:
            root = path
        report = SmokeReport(path)
        spec, report.problems = check_plugin(root)
        if spec is None:
            report.problems.append(
                Problem("", "", f"not a valid plugin — see: python ci/lint.py {path}")
            )
            return report
        report.spec = spec
        if not network and any(str(scope) == "network" for scope in spec.permissions):
            report.problems.append(
                Problem(
                    "kimai.json",
                    "permissions",
                    "'network' (any host) connects past the kernel's proxy, so an offline run "
                    "cannot hold it back: smoke it with --network, or declare network:HOST",
                )
            )
            return report
        examples, report.problems = load_examples(root, spec)
        if examples:
            await _run_examples(root, examples, Path(tmp) / "home", report)
        return report


async def _run_examples(
    root: Path, examples: list[Example], home: Path, report: SmokeReport
) -> None:
    kernel = Kernel(resolve_paths({"DEETING_HOME": str(home)}))
    notices: list[str] = []  # the supervisor's crash and restart messages

    def listen(event: Event) -> None:
        if isinstance(event, PluginNotice):
            notices.append(event.message)

    kernel.add_listener(listen)
    await kernel.start(plugins=False, ticker=False)
    try:
        try:
            installed = await kernel.loader.install(root, yes=True)  # every declared scope
        except PluginError as error:
            report.problems.append(Problem("", "", f"install failed: {error}"))
            return
        if not installed.enabled:
            report.problems.append(Problem("", "", f"did not start: {installed.problem}"))
            return
        session = kernel.open_session().id
        renderers = _known_renderers(kernel.payload_schemas)
        for example in examples:
            seen = len(notices)
            outcome = await kernel.call_tool(
                session, example.tool, example.arguments, report_errors=False
            )
            call = CallReport(example, outcome.ok, outcome.duration_ms, outcome.renderer)
            call.summary = outcome.summary()
            _judge(call, outcome, notices[seen:], kernel.payload_schemas, renderers)
            report.calls.append(call)
    finally:
        await kernel.shutdown()


def _known_renderers(schemas: PayloadSchemas) -> set[str]:
    return {
        entry.name
        for folder in schemas.folders
        if folder.is_dir()
        for entry in folder.iterdir()
        if entry.is_dir()
    }


def _judge(
    call: CallReport,
    outcome: ToolOutcome,
    crashes: list[str],
    schemas: PayloadSchemas,
    renderers: set[str],
) -> None:
    """Everything wrong with one call's answer, as problems located by the example."""
    example = call.example

    def fail(message: str) -> None:
        call.problems.append(Problem(EXAMPLES_FILE, f"[{example.index}] {example.tool}", message))

    for crash in crashes:
        fail(f"the worker crashed: {crash}")
    if not call.ok:
        message = outcome.error or ""
        if not example.error:
            fail(f"failed: {message or '(no message)'}")
        elif not message.strip() or "\n" in message or "Traceback" in message:
            fail(f"the error is not one clear line: {message!r}")
    elif example.error:
        fail(f"expected an error result, but it succeeded: {_short(call.summary)}")
    else:
        if call.renderer is not None and call.renderer not in renderers:
            known = ", ".join(sorted(renderers))
            fail(f"renderer {call.renderer!r} is not a core renderer (known: {known})")
        unfit = schemas.problem(call.renderer, outcome.data)
        if unfit:
            fail(unfit)
        if outcome.data is None and not (outcome.text or "").strip():
            fail("the result has neither data nor text: the model would see '(no output)'")
    wanted = example.summary_contains
    if wanted is not None and wanted not in call.summary:
        fail(f"the summary does not contain {wanted!r}: {_short(call.summary)}")


def _short(text: str, limit: int = 160) -> str:
    text = one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the command -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = plugin_parser(
        "smoke.py", "Run Deeting plugins in the sandboxed worker with their examples.yaml calls."
    )
    parser.add_argument(
        "--network", action="store_true", help="let plugins reach the internet (default: offline)"
    )
    args = parse(parser, argv)
    if isinstance(args, int):
        return args
    logging.lastResort = TerminalSafeLastResort()  # the kernel's warnings quote the plugin
    reports = smoke_paths(args.paths, network=args.network)
    return report(reports, args.json, _as_json, _print_plain)


def _print_plain(report: SmokeReport) -> None:
    for call in report.calls:
        example = call.example
        status = "ok  " if call.passed else "FAIL"
        if call.ok:
            said = f"result: {call.summary}"
        else:
            expected = " (expected)" if example.error else ""
            said = f"error{expected}: {call.summary.removeprefix('error: ')}"
        where = f"{report.path}: [{example.index}] {example.tool}"
        _say(f"{status} {where} {call.duration_ms:.1f} ms, {_short(said, 100)}")
        for problem in call.problems:
            _say(f"{report.path}: {problem}")
    for problem in report.problems:
        _say(f"{report.path}: {problem}")
    if report.ok and report.spec is not None:
        calls = f"{len(report.calls)} call{'s' * (len(report.calls) != 1)}"
        _say(f"ok   {report.path} ({report.spec.name}@{report.spec.version}, {calls})")


def _say(line: str) -> None:
    """A plugin's results and errors are its own words: neutralised, on one line each."""
    print(neutralise_line(line))


def _problem_json(problem: Problem) -> dict[str, str]:
    return {"file": problem.file, "field": problem.field, "message": problem.message}


def _as_json(report: SmokeReport) -> dict[str, object]:
    document: dict[str, object] = {"path": str(report.path), "ok": report.ok}
    if report.spec is not None:
        document.update(name=report.spec.name, version=report.spec.version)
    document["problems"] = [_problem_json(p) for p in report.problems]
    document["calls"] = [
        {
            "index": call.example.index,
            "tool": call.example.tool,
            "arguments": call.example.arguments,
            "expect_error": call.example.error,
            "ok": call.ok,
            "passed": call.passed,
            "duration_ms": call.duration_ms,
            "renderer": call.renderer,
            "summary": call.summary,
            "problems": [_problem_json(p) for p in call.problems],
        }
        for call in report.calls
    ]
    return document


if __name__ == "__main__":
    sys.exit(main())
