"""``deeting mcp serve [--plugin NAME]...``: the enabled plugins' tools as an MCP server on stdio.

Any MCP client (a desktop assistant, an IDE) lists and calls our plugins' tools; every call
goes through the same kernel the chat and ``deeting --script`` use, to the plugin's sandboxed
worker, under the grants the user gave (headless: nothing is ever asked; a missing grant is
the call's error, saying which scope would allow it).

- The plugins are wired in without their workers: a worker starts at its tool's first call
  (``tools/list`` starts none), even a plugin that would start with the chat (a tick's, a live
  feed's), since this process has no clock and nobody watching a feed.
- The calls are recorded in a session of their own, made at the first call and titled with
  the client's name ("MCP: " and its ``clientInfo``), so the chat's sessions (F3) and
  ``deeting view`` show them, card and all.
- stdout is the protocol's alone (see wire.py); notices and errors go to stderr, one
  neutralised line each.
- EOF on stdin, SIGTERM or SIGINT: the kernel shuts down (every worker stops), exit 0.

What the client sees of a tool and of a result is served.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import json
import logging
import math
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import mcp_types as types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.stdio import stdio_server

from deeting_tui import __version__
from deeting_tui.command_output import error_line, event_line
from deeting_tui.compose import fresh_home, plug_ports
from deeting_tui.errors import DeetingError
from deeting_tui.kernel.assistant import ToolInfo, ToolOutcome
from deeting_tui.kernel.events import ErrorEvent, Event, PluginNotice, Progress, ToolCall
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.permissions import PermissionMissing
from deeting_tui.paths import load_config, resolve_paths
from deeting_tui.terminal_text import neutralise, one_line, quote_prefix

from .served import Pinned, call_result, failed, read_pins, tool_entry
from .wire import LineReader, LineWriter, Wire, claim_stdio

log = logging.getLogger("deeting.mcp.serve")


def run_serve(args: argparse.Namespace) -> int:
    """The command: 0 at a clean end (EOF, SIGTERM, SIGINT), 2 for a --plugin it cannot serve."""
    return asyncio.run(serve(list(args.plugin)))


async def serve(names: Sequence[str]) -> int:
    # The wire is claimed before anything else exists: no process the kernel starts (the
    # forkserver, a worker, a stock server under its bridge) ever holds the protocol's fds.
    with claim_stdio() as wire:
        paths = resolve_paths()
        first_run = fresh_home(paths)
        kernel = plug_ports(Kernel(paths, config=load_config(paths)), first_run=first_run)
        remove = kernel.add_listener(_say_on_stderr)
        try:
            warning = await kernel.plugins.first_run()  # a fresh home's bundled plugins first
            if warning:
                _stderr(f"deeting: warning: {one_line(warning)}")
            refusal = _refusal(kernel, names)
            if refusal is not None:
                _stderr(f"deeting: error: mcp serve: {one_line(refusal)}")
                return 2
            served = set(names) or {r.name for r in kernel.installed.all() if r.enabled}
            for problem in await kernel.start(ticker=False, only=served):
                _stderr(f"deeting: warning: {one_line(problem)}")
            bridge = ToolServer(kernel, served if names else None)
            await _serve_until_stopped(bridge, wire)
            return 0
        finally:
            remove()
            await kernel.shutdown()


def _refusal(kernel: Kernel, names: Sequence[str]) -> str | None:
    """Why a --plugin NAME cannot be served (not installed, not enabled), or None."""
    for name in names:
        record = kernel.installed.get(name)
        if record is None:
            return (
                f"--plugin {quote_prefix(name)}: no plugin of that name is installed — "
                "see: deeting plugin list"
            )
        if not record.enabled:
            missing = _missing_grant(kernel, name)
            if missing is not None:  # enabling alone would not do: the grant is the fix
                return f"--plugin {name}: it is disabled: {error_line(missing)}"
            why = f" ({record.disabled_reason})" if record.disabled_reason else ""
            return f"--plugin {name}: it is disabled{why} — run: deeting plugin enable {name}"
    return None


def _missing_grant(kernel: Kernel, name: str) -> PermissionMissing | None:
    """What the plugin still needs granted, if anything (its start would be refused)."""
    try:
        kernel.grants.check(name, kernel.loader.spec(name).permissions)
    except PermissionMissing as exc:
        return exc
    except DeetingError:
        return None  # a damaged copy: its start says so
    return None


async def _serve_until_stopped(bridge: ToolServer, wire: Wire) -> None:
    """Serve on the claimed stdio until EOF, or until SIGTERM or SIGINT ends the serving."""
    loop = asyncio.get_running_loop()
    serving = asyncio.ensure_future(bridge.run(LineReader(wire.reader), LineWriter(wire.writer)))
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, serving.cancel)
    try:
        await serving
    except asyncio.CancelledError:
        if not serving.cancelled():
            raise  # we were cancelled, not the serving by a signal
    finally:
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(number)


def _stderr(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # a client that closed our stderr
        print(line, file=sys.stderr, flush=True)


def _say_on_stderr(event: Event) -> None:
    """The kernel's notices and errors, for the client's log of our stderr."""
    if isinstance(event, PluginNotice):
        _stderr(f"deeting: {one_line(event_line(event))}")
    elif isinstance(event, ErrorEvent):
        _stderr(f"deeting: error: {one_line(event_line(event))}")


# -- the MCP side ------------------------------------------------------------------------------


@dataclass
class _Running:
    """One ``tools/call`` on its way through the kernel: its call id (learnt from the
    kernel's ``ToolCall`` event, emitted in the call's own task) and its progress reports."""

    call_id: str | None = None
    #: Its progress reports, in order; None ends them (the call has its answer).
    reports: asyncio.Queue[Progress | None] = field(default_factory=asyncio.Queue)
    scale: ProgressScale = field(default_factory=lambda: ProgressScale())


#: The ``tools/call`` the current task is running (read by the kernel listener).
_running: contextvars.ContextVar[_Running | None] = contextvars.ContextVar(
    "deeting_mcp_call", default=None
)


class ProgressScale:
    """Kernel progress (a fraction, or none, and a message) as MCP's ``progress``, which must
    never go down: the fraction of 1, or the last one again when a report has none or a
    smaller one (its message still says what is going on)."""

    def __init__(self) -> None:
        self.last = 0.0

    def value(self, fraction: float | None) -> float:
        if fraction is not None and math.isfinite(fraction):
            self.last = max(self.last, min(1.0, fraction))
        return self.last


class ToolServer:
    """The MCP server: ``tools/list`` and ``tools/call`` over one kernel."""

    def __init__(self, kernel: Kernel, only: set[str] | None) -> None:
        self.kernel = kernel
        self.only = only
        self.session_id: str | None = None
        self._calls: dict[str, _Running] = {}
        self._pinned: dict[Path, dict[str, Pinned]] = {}
        #: The client's connection, once it asked something: where a changed list is said.
        self._client: Any = None
        #: The tools as the client last listed them (see :meth:`_say_if_changed`).
        self._listed: tuple[tuple[str, str, str], ...] | None = None
        self._background: set[asyncio.Task[None]] = set()
        kernel.add_listener(self._hear)
        self.server: Server[Any] = Server(
            "deeting",
            version=__version__,
            title="Deeting",
            description="Deeting's plugins, each in its own sandbox",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )

    async def run(self, reader: LineReader, writer: LineWriter) -> None:
        streams = stdio_server(stdin=cast(Any, reader), stdout=cast(Any, writer))
        async with streams as (read_stream, write_stream):
            options = self.server.create_initialization_options(
                NotificationOptions(tools_changed=True)
            )
            await self.server.run(read_stream, write_stream, options)

    def tools(self) -> list[ToolInfo]:
        """The tools served now (the kernel's, less those of plugins not asked for)."""
        infos = self.kernel.tool_infos()
        return [i for i in infos if self.only is None or i.plugin in self.only]

    async def _list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        self._client = ctx.session
        tools = self.tools()
        self._listed = _fingerprint(tools)
        return types.ListToolsResult(tools=[tool_entry(info, self._pins(info)) for info in tools])

    async def _say_if_changed(self) -> None:
        """``notifications/tools/list_changed`` when the tools differ from those the client
        last listed: a plugin enabled, disabled, upgraded or revoked elsewhere (the kernel
        follows state.json, and tells each change as a notice). Said once per listing."""
        if self._client is None or self._listed is None:
            return
        if _fingerprint(self.tools()) == self._listed:
            return
        self._listed = None  # the client lists again to see them; until then, nothing more
        try:
            await self._client.send_tool_list_changed()
        except Exception as exc:  # the client has gone: its end of input ends the run
            log.warning("could not tell the client its tools changed: %s", exc)

    def _pins(self, info: ToolInfo) -> Pinned | None:
        runtime = self.kernel.loader.runtimes.get(info.plugin)
        if runtime is None:
            return None
        root = runtime.spec.root  # a version's own folder: an upgrade reads its own pins
        if root not in self._pinned:
            self._pinned[root] = read_pins(runtime.spec)
        return self._pinned[root].get(info.name)

    async def _call_tool(
        self, ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        served = {info.name for info in self.tools()}
        if params.name not in served:
            known = ", ".join(sorted(served)) or "none"
            return failed(f"unknown tool '{quote_prefix(params.name)}' — known tools: {known}")
        arguments = dict(params.arguments or {})
        session_id = self._session(ctx)
        running = _Running()
        call = asyncio.ensure_future(
            self._through_kernel(running, session_id, params.name, arguments)
        )
        pump = asyncio.ensure_future(self._report(ctx, running))
        try:
            outcome = await asyncio.shield(call)
        except asyncio.CancelledError:
            # notifications/cancelled (or the end of the run): the kernel's call is cancelled
            # as Esc cancels it in the chat (recorded as cancelled; the worker gets its
            # cancel), and this request ends without an answer, as MCP wants.
            call.cancel()
            pump.cancel()
            await asyncio.gather(call, pump, return_exceptions=True)
            raise
        except Exception as exc:  # a bug of ours: the client gets an error, not a dead server
            pump.cancel()
            log.error("tools/call %s failed: %s", params.name, exc)
            if os.environ.get("DEETING_DEBUG") == "1":
                sys.stderr.write(neutralise(traceback.format_exc()))
            return failed(f"{params.name}: deeting failed: {type(exc).__name__}: {exc}")
        finally:
            if running.call_id is not None:
                self._calls.pop(running.call_id, None)
        running.reports.put_nowait(None)  # every report sent, in order, before the answer
        await pump
        return call_result(outcome, session_id=session_id, call_id=running.call_id)

    async def _through_kernel(
        self, running: _Running, session_id: str, tool: str, arguments: dict[str, Any]
    ) -> ToolOutcome:
        _running.set(running)  # this task's own context: the kernel's ToolCall is heard in it
        return await self.kernel.call_tool(session_id, tool, arguments)

    def _session(self, ctx: Any) -> str:
        """This run's session, made at its first call, titled with the client's name."""
        if self.session_id is None:
            info = self.kernel.open_session()
            self.kernel.sessions.rename(info.id, f"MCP: {_client_name(ctx)}")
            self.session_id = info.id
        return self.session_id

    def _hear(self, event: Event) -> None:
        if isinstance(event, PluginNotice):
            task = asyncio.ensure_future(self._say_if_changed())
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        elif isinstance(event, ToolCall):
            running = _running.get()
            if running is not None and running.call_id is None:
                running.call_id = event.call_id
                self._calls[event.call_id] = running
        elif isinstance(event, Progress):
            running = self._calls.get(event.call_id)
            if running is not None:
                running.reports.put_nowait(event)

    async def _report(self, ctx: Any, running: _Running) -> None:
        """Send the call's progress as it comes (nothing when the client gave no token),
        until the call's end says there is no more."""
        while (report := await running.reports.get()) is not None:
            await self._progress(ctx, running.scale, report)

    async def _progress(self, ctx: Any, scale: ProgressScale, report: Progress) -> None:
        value = scale.value(report.fraction)
        try:
            await ctx.session.report_progress(value, 1.0, report.message or None)
        except Exception as exc:  # a report that cannot go out must not cost the answer
            log.warning("a progress report could not be sent: %s", exc)


def _fingerprint(tools: list[ToolInfo]) -> tuple[tuple[str, str, str], ...]:
    """What a client sees of the tools, to tell whether it changed."""
    return tuple(
        (info.name, info.description, json.dumps(info.parameters, sort_keys=True)) for info in tools
    )


def _client_name(ctx: Any) -> str:
    """The client's name as it introduced itself (``initialize``), or a plain word."""
    with contextlib.suppress(AttributeError):
        info = ctx.session.client_params.client_info
        return str(info.title or info.name) or "a client"
    return "a client"
