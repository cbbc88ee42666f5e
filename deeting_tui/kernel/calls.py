"""Tool calls: the Kernel's ``call_tool``, from the recorded call to its recorded result.

A mixin of :class:`~deeting_tui.kernel.kernel.Kernel` (its state is the kernel's).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from deeting_tui.rpc.errors import NOT_READY, RpcError
from deeting_tui.terminal_text import quote_prefix

from ..paths import Config, Paths
from ..workers.supervisor import ProgressListener, Supervisor
from .assistant import Assistant, ToolInfo, ToolOutcome
from .bus import EventBus
from .events import (
    ErrorEvent,
    Event,
    Progress,
    Reply,
    ToolCall,
    ToolResult,
    UserMessage,
)
from .installed import InstalledStore
from .journal import SessionJournal
from .loader import Loader
from .permissions import GrantStore
from .renderers import PayloadSchemas
from .routing import (
    TriggerTable,
)
from .session import SessionStore
from .streams import StreamGate
from .tools import ToolEntry, ToolIndex, argument_problems

if TYPE_CHECKING:
    pass

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


class ToolCalls:
    # What this part of the Kernel uses of the rest (kernel.py sets or defines them).
    paths: Paths
    config: Config
    assistant: Assistant | None
    bus: EventBus
    sessions: SessionStore
    journal: SessionJournal
    streams: StreamGate
    grants: GrantStore
    installed: InstalledStore
    tools: ToolIndex
    loader: Loader
    payload_schemas: PayloadSchemas
    triggers: TriggerTable
    active_session: str | None
    _calls_running: set[str]
    _background: set[asyncio.Task[Any]]

    if TYPE_CHECKING:

        def error(
            self,
            session_id: str | None,
            message: str,
            *,
            plugin: str | None = None,
            line: int | None = None,
            input: str | None = None,
        ) -> None: ...

        def reply(
            self,
            session_id: str,
            text: str,
            *,
            provider: str | None = None,
            model: str | None = None,
        ) -> None: ...

        def _emit(
            self, event: UserMessage | Reply | ToolCall | ToolResult | ErrorEvent
        ) -> None: ...

        def _notify(self, event: Event) -> None: ...

        def _known_tools(self) -> str: ...

        def tool_infos(self) -> list[ToolInfo]: ...

        def _plugin_notice(self, plugin: str | None, message: str) -> None: ...

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
            known = self._known_tools()
            outcome = ToolOutcome(
                False, tool, None, error=f"unknown tool '{quote_prefix(tool)}' — {known}"
            )
            if report_errors:
                self.error(session_id, outcome.error or "")
            return outcome
        call_id = new_call_id()
        self._emit(
            ToolCall(
                session_id=session_id, call_id=call_id, tool=tool, plugin=entry.plugin, args=args
            )
        )
        self._calls_running.add(call_id)
        try:
            return await self._run_call(session_id, call_id, entry, args, reply, report_errors)
        finally:
            self._calls_running.discard(call_id)

    def call_running(self, call_id: str) -> bool:
        """Whether this kernel is running that call now: a stored call with no result that
        is not running here was cut short (Deeting quit or was killed mid-call)."""
        return call_id in self._calls_running

    async def _run_call(
        self,
        session_id: str,
        call_id: str,
        entry: ToolEntry,
        args: dict[str, Any],
        reply: bool,
        report_errors: bool,
    ) -> ToolOutcome:
        """The recorded call ``call_id``: route it to its plugin's worker and record the
        result (or that it was cancelled)."""
        tool = entry.spec.name
        runtime = self.loader.runtimes.get(entry.plugin)
        started = time.perf_counter()
        problems = argument_problems(entry, args)
        if problems:
            outcome = ToolOutcome(
                False, tool, entry.plugin, error="invalid arguments: " + "; ".join(problems)
            )
        elif runtime is None:
            outcome = ToolOutcome(
                False, tool, entry.plugin, error=f"plugin '{entry.plugin}' is not running"
            )
        else:

            def progress(fraction: float | None, message: str) -> None:
                # Shown, not stored: a progress bar is only true while its call runs.
                self._notify(
                    Progress(
                        session_id=session_id,
                        call_id=call_id,
                        tool=tool,
                        plugin=entry.plugin,
                        fraction=fraction,
                        message=message,
                    )
                )

            try:
                outcome = await self._invoke(runtime.supervisor, tool, args, progress)
            except asyncio.CancelledError:
                # Esc or Ctrl-C: the call's block ends now, marked cancelled, whatever the
                # worker still does (the supervisor stops it, and restarts it if it must).
                self._cancelled_call(session_id, call_id, tool, entry.plugin, started)
                raise
        outcome.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        if outcome.ok and outcome.renderer is None:
            outcome.renderer = runtime.spec.renderer if runtime else None
        unfit = self.payload_schemas.problem(outcome.renderer, outcome.data) if outcome.ok else None
        self._emit(
            ToolResult(
                session_id=session_id,
                call_id=call_id,
                tool=tool,
                plugin=entry.plugin,
                ok=outcome.ok,
                data=outcome.data,
                text=outcome.text,
                renderer=outcome.renderer,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
                renderer_error=unfit or None,
            )
        )
        if unfit:  # an error card instead of a renderer tripping over the data
            self.error(session_id, f"{tool}: {unfit}", plugin=entry.plugin)
        if not outcome.ok and report_errors:
            self.error(session_id, f"{tool}: {outcome.error}", plugin=entry.plugin)
        elif outcome.ok and reply:
            self.reply(session_id, outcome.summary())
        self.journal.flush()
        return outcome

    def _cancelled_call(
        self, session_id: str, call_id: str, tool: str, plugin: str, started: float
    ) -> None:
        """Record a call its caller gave up on: a result marked cancelled, not an error."""
        self._emit(
            ToolResult(
                session_id=session_id,
                call_id=call_id,
                tool=tool,
                plugin=plugin,
                ok=False,
                cancelled=True,
                error="cancelled",
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
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
