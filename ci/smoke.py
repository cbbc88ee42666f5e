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

The examples are read by ``smoke_examples.py``, the offline loop is ``smoke_offline.py``;
this module runs the calls and judges them. ``python ci/smoke.py plugins/*``; ``--json`` for
one document. Exit 0: every call passed;
1: any problem; 2: bad usage.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

if not __package__:  # run as a script: the checkout's ``ci`` and deeting_tui, not others
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from ci._cli import parse, plugin_parser, report
from ci.smoke_examples import EXAMPLES_FILE, Example, load_examples
from ci.smoke_offline import OfflineEventLoop
from deeting_tui.kernel.assistant import ToolOutcome
from deeting_tui.kernel.events import Event, PluginNotice
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.plugins.loader import PluginError
from deeting_tui.kernel.renderers import PayloadSchemas
from deeting_tui.paths import resolve_paths
from deeting_tui.plugin.archive import ArchiveError, extract_zip
from deeting_tui.plugin.checker import check_plugin
from deeting_tui.plugin.manifest import PluginSpec, Problem
from deeting_tui.terminal_text import TerminalSafeLastResort, neutralise_line, one_line

__all__ = ["CallReport", "SmokeReport", "main", "smoke_paths"]


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


# -- running ---------------------------------------------------------------------------------


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
        spec, report.problems = check_plugin(root, layout="source" if root == path else "archive")
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
            # A zip is installed as the zip, so its vendored wheels/ are what its deps/ gets;
            # a folder's dependencies are fetched as a folder install fetches them.
            source = path if root != path else root
            await _run_examples(source, examples, Path(tmp) / "home", report)
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
