"""Tool calls: the Kernel's ``call_tool``, from the recorded call to its recorded result.

A mixin of :class:`~deeting_tui.kernel.kernel.Kernel`; the state and methods it uses of the
other parts are declared once, in state.py.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from deeting_tui.rpc.errors import NOT_READY, RpcError
from deeting_tui.terminal_text import quote_prefix

from ..workers.supervisor import ProgressListener, Supervisor
from .assistant import ToolOutcome
from .events import (
    Progress,
    ToolCall,
    ToolResult,
)
from .plugins.lifecycle import PluginError
from .state import KernelState
from .tools import ToolEntry, argument_problems

log = logging.getLogger("deeting.kernel")


def new_call_id() -> str:
    """A tool call's id, unique across processes and time, not just within this one.

    Ids are stored with the session and outlive the process: ``deeting --script`` and the
    chat append to the same session, the chat resumes it tomorrow, and the model is sent
    every stored id back as its tool-use id. A per-process counter (``c1``, ``c2`` …) gave
    the first call of every process the same id. The time (ms, hex) keeps ids in order and
    80 random bits keep two processes in the same millisecond apart; the alphabet
    (``[0-9a-z]``) is what both model APIs accept as a tool-use id.
    """
    return f"c{time.time_ns() // 1_000_000:011x}{secrets.token_hex(10)}"


#: How many times a call refused by a replaced worker (never sent) moves to its successor.
MAX_HANDOFFS = 3


@dataclass(frozen=True, slots=True)
class _Call:
    """A recorded tool call on its way: where it is stored, its id, the tool it calls."""

    session_id: str
    id: str
    entry: ToolEntry
    started: float = field(default_factory=time.perf_counter)

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 3)


class ToolCalls(KernelState):
    async def call_tool(
        self,
        session_id: str,
        tool: str,
        args: dict[str, Any],
        *,
        reply: bool = False,
        report_errors: bool = True,
    ) -> ToolOutcome:
        """Validate, record, route to the plugin's worker, record the result.

        ``report_errors=False`` is for calls a model made: their failures go back to the
        model as results it can act on, and do not fail the user's turn by themselves.
        """
        entry = self.tools.get(tool)
        if entry is None:
            return self._unknown_tool(session_id, tool, report_errors)
        call = _Call(session_id, new_call_id(), entry)
        self._emit(
            ToolCall(
                session_id=session_id, call_id=call.id, tool=tool, plugin=entry.plugin, args=args
            )
        )
        self._calls_running.add(call.id)
        try:
            outcome = await self._outcome(call, args)
        finally:
            self._calls_running.discard(call.id)
        unfit = self._record_result(call, outcome)
        self._report(call, outcome, unfit, reply=reply, report_errors=report_errors)
        self.journal.flush()
        return outcome

    def call_running(self, call_id: str) -> bool:
        """Whether this kernel is running that call now: a stored call with no result that
        is not running here was cut short (Deeting quit or was killed mid-call)."""
        return call_id in self._calls_running

    def _unknown_tool(self, session_id: str, tool: str, report_errors: bool) -> ToolOutcome:
        known = self._known_tools()
        outcome = ToolOutcome(
            False, tool, None, error=f"unknown tool '{quote_prefix(tool)}' — {known}"
        )
        if report_errors:
            self.error(session_id, outcome.error or "")
        return outcome

    async def _outcome(self, call: _Call, args: dict[str, Any]) -> ToolOutcome:
        """The recorded ``call``, checked and routed to its plugin's worker; a call its caller
        gives up on (Esc, Ctrl-C) is recorded as cancelled here, and the cancel goes on."""
        tool, plugin = call.entry.spec.name, call.entry.plugin
        problems = argument_problems(call.entry, args)
        if problems:
            return ToolOutcome(
                False, tool, plugin, error="invalid arguments: " + "; ".join(problems)
            )
        try:
            runtime = await self.loader.awake(plugin)  # a plugin's first use starts its worker
            if runtime is None:
                return ToolOutcome(False, tool, plugin, error=f"plugin '{plugin}' is not running")
            outcome = await self._invoke(runtime.supervisor, tool, args, self._progress_of(call))
        except PluginError as exc:
            return ToolOutcome(False, tool, plugin, error=exc.message)
        except asyncio.CancelledError:
            # The call's block ends now, marked cancelled, whatever the worker still does
            # (the supervisor stops it, and restarts it if it must).
            self._cancelled_call(call)
            raise
        finally:
            self.loader.touch(plugin)  # idle counts from the end of its last call
        if outcome.ok and outcome.renderer is None:
            outcome.renderer = runtime.spec.renderer
        return outcome

    def _progress_of(self, call: _Call) -> ProgressListener:
        def progress(fraction: float | None, message: str) -> None:
            # Shown, not stored: a progress bar is only true while its call runs.
            self._notify(
                Progress(
                    session_id=call.session_id,
                    call_id=call.id,
                    tool=call.entry.spec.name,
                    plugin=call.entry.plugin,
                    fraction=fraction,
                    message=message,
                )
            )

        return progress

    def _record_result(self, call: _Call, outcome: ToolOutcome) -> str | None:
        """Store and show the call's result; returns why its data does not fit its renderer's
        schema, if it does not (the result says so too)."""
        outcome.duration_ms = call.elapsed_ms()
        unfit = self.payload_schemas.problem(outcome.renderer, outcome.data) if outcome.ok else None
        self._emit(
            ToolResult(
                session_id=call.session_id,
                call_id=call.id,
                tool=call.entry.spec.name,
                plugin=call.entry.plugin,
                ok=outcome.ok,
                data=outcome.data,
                text=outcome.text,
                renderer=outcome.renderer,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
                renderer_error=unfit or None,
            )
        )
        return unfit

    def _report(
        self,
        call: _Call,
        outcome: ToolOutcome,
        unfit: str | None,
        *,
        reply: bool,
        report_errors: bool,
    ) -> None:
        """What the user is told after the result: an error, or the reply of a direct call."""
        tool, plugin = call.entry.spec.name, call.entry.plugin
        if unfit:  # an error card instead of a renderer tripping over the data
            self.error(call.session_id, f"{tool}: {unfit}", plugin=plugin)
        if not outcome.ok and report_errors:
            self.error(call.session_id, f"{tool}: {outcome.error}", plugin=plugin)
        elif outcome.ok and reply:
            self.reply(call.session_id, outcome.summary())

    def _cancelled_call(self, call: _Call) -> None:
        """Record a call its caller gave up on: a result marked cancelled, not an error."""
        self._emit(
            ToolResult(
                session_id=call.session_id,
                call_id=call.id,
                tool=call.entry.spec.name,
                plugin=call.entry.plugin,
                ok=False,
                cancelled=True,
                error="cancelled",
                duration_ms=call.elapsed_ms(),
            )
        )
        self.journal.flush()

    async def _invoke(
        self,
        supervisor: Supervisor,
        tool: str,
        args: dict[str, Any],
        progress: ProgressListener | None = None,
    ) -> ToolOutcome:
        handoffs = 0
        while True:
            try:
                result = await supervisor.call(tool, args, progress)
                break
            except RpcError as exc:
                successor = self._successor(supervisor)
                if exc.code != NOT_READY or successor is None or handoffs >= MAX_HANDOFFS:
                    return ToolOutcome(False, tool, supervisor.name, error=exc.message)
                # An upgrade replaced this worker before the call was sent: the new one
                # serves it, and the caller never sees the switch.
                supervisor, handoffs = successor, handoffs + 1
        return ToolOutcome(
            True,
            tool,
            supervisor.name,
            data=result.data,
            text=result.text,
            renderer=result.renderer,
        )

    def _successor(self, supervisor: Supervisor) -> Supervisor | None:
        runtime = self.loader.runtimes.get(supervisor.name)
        if runtime is None or runtime.supervisor is supervisor:
            return None
        return runtime.supervisor
