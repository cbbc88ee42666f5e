"""The Kernel: bus, sessions, permissions and plugin lifecycle wired behind one async API.

Both front ends (headless script mode and the Textual UI) drive the same few calls —
``open_session``, ``submit``, ``call_tool`` — and observe the same event stream through
listeners, so behaviour added here reaches both. Every event is stored in the session as it
happens: committed at the event loop's next pause, before the kernel waits for anything, and
at the latest when the turn that caused it ends (see journal.py).

A running kernel also follows state.json: a version swapped in by ``deeting plugin upgrade``
in another terminal is hot-switched to without a dropped call (see upgrade.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import logging
import mimetypes
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deeting_tui.errors import Hint
from deeting_tui.terminal_text import quote_prefix

from ..paths import Config, Paths
from ..quota.watchdog import Confinement
from ..workers.launcher import Launcher, default_launcher
from ..workers.supervisor import SupervisionPolicy
from .arguments import ArgumentError, parse_arguments, split_command
from .assistant import Assistant, ToolInfo
from .bus import EventBus
from .calls import MAX_HANDOFFS as MAX_HANDOFFS
from .calls import ToolCalls
from .calls import new_call_id as new_call_id
from .conversation import Conversation
from .events import (
    ErrorEvent,
    Event,
    Reply,
    ToolCall,
    ToolResult,
    UserMessage,
)
from .limits import message_problem
from .permissions import GrantStore
from .plugins import PluginService
from .plugins.follow import PointerFollower
from .plugins.installed import InstalledStore
from .plugins.loader import Loader
from .plugins.upgrade import Upgrader
from .renderers import PayloadSchemas
from .routing import (
    ASSISTANT_PRIORITY,
    TRIGGER_BAND,
    TriggerTable,
)
from .sessions.journal import SessionJournal
from .sessions.store import SessionInfo, SessionStore
from .streams import StreamGate
from .tools import ToolIndex, warm_validation
from .wiring import PluginWiring

log = logging.getLogger("deeting.kernel")


MAX_IMAGE_BYTES = 20 * 1024 * 1024

#: Hears every event the kernel emits (events.py), stored or only shown.
Listener = Callable[[Event], None]


@dataclass
class Turn:
    """One user message and everything it caused; ``failed`` decides the exit code."""

    session_id: str
    failed: bool = False
    errors: list[str] = field(default_factory=list)


_current_turn: contextvars.ContextVar[Turn | None] = contextvars.ContextVar(
    "deeting_turn", default=None
)


class Kernel(ToolCalls, Conversation, PluginWiring):
    def __init__(
        self,
        paths: Paths,
        *,
        config: Config | None = None,
        assistant: Assistant | None = None,
        launcher: Launcher | None = None,
        policy: SupervisionPolicy | None = None,
        payload_schemas: PayloadSchemas | None = None,
        confinement: Confinement | None = None,
    ) -> None:
        self.paths = paths
        self.payload_schemas = payload_schemas or PayloadSchemas()
        self.config = config or Config()
        self.bus = EventBus()
        self.sessions = SessionStore(paths.sessions_db)
        self.journal = SessionJournal(self.sessions, self._history_lost)
        self.streams = StreamGate(notice=self._plugin_notice, log_path=paths.plugin_log)
        self.grants = GrantStore(paths.grants_file)
        self.installed = InstalledStore(paths.plugin_state_file)
        self.tools = ToolIndex()
        self.launcher = launcher or default_launcher(paths.logs_dir / "forkserver.log")
        #: Cgroups and the resource watchdog for every worker (see watchdog.py).
        self.confinement = confinement or Confinement()
        self.loader = Loader(
            paths,
            self.installed,
            self.grants,
            self.launcher,
            self._hooks_for,
            self,
            policy,
            confinement=self.confinement,
            upgrader=Upgrader,
        )
        self.loader.on_notice = self._plugin_notice
        #: Plugin administration for the front ends (plugins/); compose.py plugs its ports.
        self.plugins = PluginService(self)
        #: Whether :meth:`start` started the enabled plugins (a CLI command's kernel does not).
        self.runs_plugins = False
        self.assistant = assistant
        self.active_session: str | None = None
        self._listeners: list[Listener] = []
        #: The ids of the tool calls this kernel is running now (a stored call that is not
        #: among them and has no result was interrupted: see ``call_running``).
        self._calls_running: set[str] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._idler: asyncio.Task[None] | None = None
        self.follower: PointerFollower | None = None
        self._following: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        #: Every enabled plugin's trigger, matched in one pass (see routing.py).
        self.triggers = TriggerTable()
        self.bus.subscribe("user.message", self._route_triggers, priority=TRIGGER_BAND)
        if assistant is not None:
            self.bus.subscribe("user.message", self._assistant_handler, priority=ASSISTANT_PRIORITY)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(
        self,
        *,
        plugins: bool = True,
        ticker: bool = True,
        follow: bool = True,
        only: Collection[str] | None = None,
    ) -> list[str]:
        """Restore enabled plugins; returns one message per plugin that failed to start.

        With ``follow`` (and ``plugins``), the kernel then keeps its running plugins on
        what state.json says as other processes change it (see :class:`PointerFollower`).
        ``only``: restore only these of the enabled plugins, each waiting for its first use
        (``deeting mcp serve``; see :meth:`Loader.start_enabled`).
        """
        # Started before (tests and the CLI install with one kernel, then run it): the old
        # follower's idea of what is enabled is stale, and it would start a plugin a second
        # time, racing start_enabled below; two watchdogs would sample every worker twice.
        await self._stop_background()
        loop = asyncio.get_running_loop()
        self._watchdog = loop.create_task(self.confinement.run())
        self.runs_plugins = self.runs_plugins or plugins
        problems: list[str] = []
        if plugins:  # a fresh home's first run installs the bundled plugins, before they start
            first_run = await self.plugins.first_run()
            problems += [first_run] if first_run else []
            # Workers start as their plugins are used (a trigger, a tool call, an event),
            # except those that must run from the start (the tick's, a live feed's).
            problems += await self.loader.start_enabled(on_demand=True, only=only)
            warming = loop.create_task(asyncio.to_thread(warm_validation))
            self._background.add(warming)
            warming.add_done_callback(self._background.discard)
            if self.config.idle_stop:
                self._idler = loop.create_task(self._stop_idle_forever(self.config.idle_stop))
        if ticker:
            self._ticker = loop.create_task(self._tick_forever())
        if plugins and follow:
            self.follower = PointerFollower(
                self.loader,
                self.paths.grants_file,
                reload_grants=self._reload_grants,
                notify=self._plugin_notice,
            )
            self._following = loop.create_task(self.follower.run())
        return problems

    async def shutdown(self) -> None:
        await self._stop_background()
        await self.loader.shutdown()
        self.launcher.close()
        self.confinement.close()
        close_assistant = getattr(self.assistant, "aclose", None)
        if close_assistant is not None:
            with contextlib.suppress(Exception):  # a provider's close must not lose the session
                await close_assistant()
        self.streams.close()
        self.journal.flush()
        self.sessions.close()

    async def _stop_background(self) -> None:
        """End the follower, the ticker and the watchdog's loop of the last start."""
        if self.follower is not None:
            self.follower.close()
            self.follower = None
        for task in (self._following, self._ticker, self._watchdog, self._idler):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._following = self._ticker = self._watchdog = self._idler = None

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # -- sessions ----------------------------------------------------------------------------

    def open_session(self, session_id: str | None = None) -> SessionInfo:
        """Continue ``session_id`` (SessionNotFound if unknown) or start a new session."""
        info = self.sessions.get(session_id) if session_id else self.sessions.create()
        self.active_session = info.id
        return info

    # -- turns -------------------------------------------------------------------------------

    async def submit(self, session_id: str, text: str) -> Turn:
        """Handle one line from the user: ``/image``, ``/TOOL …`` or a message."""
        turn = Turn(session_id)
        token = _current_turn.set(turn)
        self.active_session = session_id
        try:
            text = text.strip()
            problem = message_problem(text)
            if problem is not None:  # refused whole: not stored, not offered to anyone
                self.error(session_id, problem)
                return turn
            self._emit(UserMessage(session_id=session_id, text=text))
            command = split_command(text)
            if command is not None and command[0] == "image":
                await self._submit_image(session_id, command[1])
            elif command is not None and self.tools.get(command[0]) is not None:
                await self._direct_call(session_id, *command)
            elif command is not None and self.assistant is None:
                name = quote_prefix(command[0])
                self.error(session_id, f"unknown tool '/{name}' — {self._known_tools()}")
            else:
                handled = await self.bus.publish(
                    "user.message", {"text": text, "session_id": session_id}
                )
                if not handled:
                    self.error(session_id, "nothing handled the message (no assistant)")
        finally:
            _current_turn.reset(token)
            self.journal.flush()
        return turn

    async def _direct_call(self, session_id: str, tool: str, rest: str) -> None:
        entry = self.tools.get(tool)
        assert entry is not None
        try:
            args = parse_arguments(rest, entry.spec.parameters)
        except ArgumentError as exc:
            self.error(session_id, f"/{tool}: {exc}")
            return
        await self.call_tool(session_id, tool, args, reply=True)

    async def _submit_image(self, session_id: str, path_text: str) -> None:
        path = Path(path_text).expanduser()
        try:
            size = path.stat().st_size
            if size > MAX_IMAGE_BYTES:
                raise ValueError(f"{size} bytes is over the {MAX_IMAGE_BYTES >> 20} MiB limit")
            data = path.read_bytes()
        except (OSError, ValueError) as exc:
            why = getattr(exc, "strerror", None) or exc
            self.error(session_id, f"/image {quote_prefix(path_text)}: {why}")
            return
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        payload = {
            "path": str(path),
            "mime": mime,
            "bytes_b64": base64.b64encode(data).decode(),
            "session_id": session_id,
        }
        if not await self.bus.publish("user.image", payload):
            self.error(session_id, f"/image {quote_prefix(path_text)}: no plugin handles images")

    def reply(
        self,
        session_id: str,
        text: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        hint: Hint | None = None,
        tool_specs: dict[str, int] | None = None,
    ) -> None:
        """Record a reply; ``hint``: a fix it points to, as data for each front end to phrase;
        ``tool_specs``: the model call's tool-spec figures (llm/tool_budget.py)."""
        self._emit(
            Reply(
                session_id=session_id,
                text=text,
                provider=provider,
                model=model,
                hint=hint,
                tool_specs=tool_specs,
            )
        )

    def error(
        self,
        session_id: str | None,
        message: str,
        *,
        plugin: str | None = None,
        line: int | None = None,
        input: str | None = None,
        hint: Hint | None = None,
    ) -> None:
        """Record an error in the session (and fail the running turn); ``plugin`` when a
        plugin's call failed, ``line`` and ``input`` for a script line not sent, ``hint``
        the fix, for each front end to phrase."""
        turn = _current_turn.get()
        if turn is not None:
            turn.failed = True
            turn.errors.append(message)
        session_id = session_id or self.active_session
        if session_id is None:
            log.error("%s", message)
            return
        self._emit(
            ErrorEvent(
                session_id=session_id,
                message=message,
                plugin=plugin,
                line=line,
                input=input,
                hint=hint,
            )
        )

    def _emit(self, event: UserMessage | Reply | ToolCall | ToolResult | ErrorEvent) -> None:
        """Store a conversation event in its session, then tell the listeners."""
        self.journal.record(event.session_id, event.TYPE, event.to_stored())
        self._notify(event)

    def _history_lost(self, session_id: str, message: str) -> None:
        """Shown, not stored: the store is what just failed."""
        turn = _current_turn.get()
        if turn is not None:
            turn.failed = True
            turn.errors.append(message)
        self._notify(ErrorEvent(session_id=session_id, message=message))

    def _notify(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed")

    def _known_tools(self) -> str:
        names = self.tools.names()
        return "known tools: " + ", ".join(names) if names else "no tools are installed"

    def tool_infos(self) -> list[ToolInfo]:
        return self.tools.infos()

    async def _tick_forever(self) -> None:
        interval = self.config.tick_interval
        loop = asyncio.get_running_loop()
        next_at = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += interval
            if self.bus.has_subscribers("system.tick"):
                await self.bus.publish("system.tick", {"ts": time.time()})

    async def _stop_idle_forever(self, idle_after: float) -> None:
        """Stop on-demand workers unused for ``idle_after`` seconds (loader.stop_idle),
        looking a few times per period: a worker stops at most a quarter period late."""
        interval = min(max(idle_after / 4, 0.25), 30.0)
        while True:
            await asyncio.sleep(interval)  # a period, not synchronisation
            try:
                await self.loader.stop_idle(idle_after)
            except Exception:  # one failed stop must not end the others' for the session
                log.exception("stopping idle plugins failed")
