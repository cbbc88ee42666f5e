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
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deeting_tui.plugin.manifest import EVENT_PRIORITY, TRIGGER_PRIORITY, PluginSpec
from deeting_tui.plugin.scopes import MESSAGES, covers, parsed_scopes, reads_user_input
from deeting_tui.plugin.triggers import TriggerRegexError
from deeting_tui.rpc.errors import NOT_READY, RpcError
from deeting_tui.terminal_text import quote_prefix

from ..paths import Config, Paths
from ..quota.watchdog import Confinement
from ..workers.launcher import Launcher, default_launcher
from ..workers.supervisor import ProgressListener, SupervisionPolicy, Supervisor, SupervisorHooks
from .arguments import ArgumentError, parse_arguments, split_command, trigger_arguments
from .assistant import Assistant, AssistantTurn, ToolInfo, ToolOutcome
from .bus import EventBus
from .follow import PointerFollower
from .installed import Cause, InstalledStore
from .journal import SessionJournal
from .limits import message_problem
from .loader import AskGrants, Loader, PluginError, PluginRuntime
from .permissions import GrantStore
from .plugins import PluginService
from .renderers import PayloadSchemas
from .routing import (
    ASSISTANT_PRIORITY,
    INLINE_MATCH_CHARS,
    MAX_TRIGGER_TEXT,
    TRIGGER_BAND,
    Trigger,
    TriggerTable,
    clamp_priority,
)
from .session import SessionInfo, SessionStore
from .session_events import CONVERSATION_KINDS, EncodedEvent
from .streams import StreamGate
from .tools import ToolConflict, ToolEntry, ToolIndex, argument_problems
from .upgrade import Upgrader, UpgradeReport, upgrade_notice

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


MAX_IMAGE_BYTES = 20 * 1024 * 1024
#: How many times a call refused by a replaced worker (never sent) moves to its successor.
MAX_HANDOFFS = 3

Listener = Callable[[dict[str, Any]], None]


@dataclass
class Turn:
    """One user message and everything it caused; ``failed`` decides the exit code."""

    session_id: str
    failed: bool = False
    errors: list[str] = field(default_factory=list)


_current_turn: contextvars.ContextVar[Turn | None] = contextvars.ContextVar(
    "deeting_turn", default=None
)


class Kernel:
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
        #: Plugin administration for the front ends (plugins.py); compose.py plugs its ports.
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
        self, *, plugins: bool = True, ticker: bool = True, follow: bool = True
    ) -> list[str]:
        """Restore enabled plugins; returns one message per plugin that failed to start.

        With ``follow`` (and ``plugins``), the kernel then keeps its running plugins on
        what state.json says as other processes change it (see :class:`PointerFollower`).
        """
        # Started before (tests and the CLI install with one kernel, then run it): the old
        # follower's idea of what is enabled is stale, and it would start a plugin a second
        # time, racing start_enabled below; two watchdogs would sample every worker twice.
        await self._stop_background()
        loop = asyncio.get_running_loop()
        self._watchdog = loop.create_task(self.confinement.run())
        self.runs_plugins = self.runs_plugins or plugins
        problems = await self.loader.start_enabled() if plugins else []
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
        for task in (self._following, self._ticker, self._watchdog):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._following = self._ticker = self._watchdog = None

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
            self._emit(session_id, "user", {"text": text})
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
            session_id,
            "tool_call",
            {"call_id": call_id, "tool": tool, "plugin": entry.plugin, "args": args},
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
                    {
                        "type": "progress",
                        "session_id": session_id,
                        "call_id": call_id,
                        "tool": tool,
                        "plugin": entry.plugin,
                        "fraction": fraction,
                        "message": message,
                    }
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
            session_id,
            "tool_result",
            {
                "call_id": call_id,
                "tool": tool,
                "plugin": entry.plugin,
                "ok": outcome.ok,
                "data": outcome.data,
                "text": outcome.text,
                "renderer": outcome.renderer,
                "error": outcome.error,
                "duration_ms": outcome.duration_ms,
                **({"renderer_error": unfit} if unfit else {}),
            },
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
            session_id,
            "tool_result",
            {
                "call_id": call_id,
                "tool": tool,
                "plugin": plugin,
                "ok": False,
                "cancelled": True,
                "data": None,
                "text": None,
                "renderer": None,
                "error": "cancelled",
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            },
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
                result = await supervisor.invoke(tool, args, progress)
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
            data=result.get("data"),
            text=result.get("text"),
            renderer=result.get("renderer"),
        )

    def _successor(self, supervisor: Supervisor) -> Supervisor | None:
        runtime = self.loader.runtimes.get(supervisor.name)
        if runtime is None or runtime.supervisor is supervisor:
            return None
        return runtime.supervisor

    def reply(self, session_id: str, text: str, **extra: Any) -> None:
        self._emit(session_id, "reply", {"text": text, **extra})

    def error(self, session_id: str | None, message: str, **extra: Any) -> None:
        turn = _current_turn.get()
        if turn is not None:
            turn.failed = True
            turn.errors.append(message)
        session_id = session_id or self.active_session
        if session_id is None:
            log.error("%s", message)
            return
        self._emit(session_id, "error", {"message": message, **extra})

    def _emit(self, session_id: str, kind: str, fields: dict[str, Any]) -> None:
        self.journal.record(session_id, kind, fields)
        self._notify({"type": kind, "session_id": session_id, **fields})

    def _history_lost(self, session_id: str, message: str) -> None:
        """Shown, not stored: the store is what just failed."""
        turn = _current_turn.get()
        if turn is not None:
            turn.failed = True
            turn.errors.append(message)
        self._notify({"type": "error", "session_id": session_id, "message": message})

    def _notify(self, event: dict[str, Any]) -> None:
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

    # -- the assistant -----------------------------------------------------------------------

    async def _assistant_handler(self, topic: str, payload: dict[str, Any]) -> bool:
        assert self.assistant is not None
        session_id = payload["session_id"]

        async def call(tool: str, args: dict[str, Any]) -> ToolOutcome:
            return await self.call_tool(session_id, tool, args, report_errors=False)

        # Which model answered, on each of its replies (--json shows it; the chat will too).
        model = getattr(self.assistant, "model", None)
        by = {"provider": self.assistant.name, **({"model": model} if model else {})}
        turn = AssistantTurn(
            session_id=session_id,
            text=payload["text"],
            tools=self.tool_infos(),
            call_tool=call,
            reply=lambda text: self.reply(session_id, text, **by),
            fail=lambda message: self.error(session_id, message),
            history=self._history_before_this_message(session_id),
            partial=lambda text: self._notify(
                {"type": "reply_delta", "session_id": session_id, "text": text, **by}
            ),
        )
        try:
            await self.assistant.respond(turn)
        except Exception as exc:
            log.exception("assistant failed")
            self.error(session_id, f"assistant ({self.assistant.name}) failed: {exc}")
        return True

    def _history_before_this_message(self, session_id: str) -> list[tuple[str, dict[str, Any]]]:
        self.journal.flush()
        stored = self.sessions.events(session_id, kinds=CONVERSATION_KINDS)
        events = [(e.kind, e.payload) for e in stored]
        if events and events[-1][0] == "user":
            events.pop()  # the message being answered: the assistant gets it as turn.text
        return events

    # -- wiring enabled plugins (the Loader calls these) -------------------------------------

    def attach(self, runtime: PluginRuntime) -> None:
        spec = runtime.spec
        triggers = self._triggers_with(spec)  # before anything changes: it may refuse
        try:
            self.tools.add_plugin(spec)
        except ToolConflict as exc:
            raise PluginError(str(exc)) from None
        self.triggers = triggers
        for pattern, handler, priority in self._subscriptions(runtime):
            self.bus.subscribe(
                pattern, handler, priority=priority, owner=spec.name, order=self._installed_at(spec)
            )

    def detach(self, runtime: PluginRuntime) -> None:
        self.bus.unsubscribe_owner(runtime.spec.name)
        self.triggers = self.triggers.without(runtime.spec.name)
        self.tools.remove_plugin(runtime.spec.name)

    def swap(self, old: PluginRuntime, new: PluginRuntime) -> None:
        """A hot upgrade's switch: no await, so no call or publish sees neither version."""
        name = new.spec.name
        triggers = self._triggers_with(new.spec)
        self.tools.remove_plugin(name)
        try:
            self.tools.add_plugin(new.spec)
        except ToolConflict as exc:
            self.tools.add_plugin(old.spec)  # it was there a moment ago: cannot conflict
            raise PluginError(str(exc)) from None
        self.triggers = triggers
        # Publishes already under way finish with the old handlers; later ones see the new.
        self.bus.replace_owner(name, self._subscriptions(new), order=self._installed_at(new.spec))

    def _installed_at(self, spec: PluginSpec) -> float:
        """Ties of priority go to the plugin installed first (see routing.py)."""
        record = self.installed.get(spec.name)
        return record.installed_at if record is not None else time.time()

    def _triggers_with(self, spec: PluginSpec) -> TriggerTable:
        """The trigger table with ``spec``'s trigger (or without any of ``spec``'s)."""
        table = self.triggers.without(spec.name)
        if spec.trigger is None:
            return table
        try:
            trigger = Trigger(
                spec.name,
                spec.trigger.tool,
                spec.trigger.pattern,
                clamp_priority(spec.trigger.priority, TRIGGER_PRIORITY),
                self._installed_at(spec),
            )
            return table.with_trigger(trigger)
        except TriggerRegexError as exc:
            raise PluginError(f"'{spec.name}': its trigger cannot be used: {exc}") from None

    def _subscriptions(self, runtime: PluginRuntime) -> list[tuple[str, Any, int]]:
        """The plugin's ``events``, priorities clamped; those that would deliver what the
        user types only if its worker was started with the ``messages`` scope granted (a
        revoke stops the worker, so it never outlives the grant)."""
        spec = runtime.spec
        granted = parsed_scopes(runtime.supervisor.config.scopes)
        may_read = any(covers(scope, MESSAGES) for scope in granted)
        subscriptions: list[tuple[str, Any, int]] = []
        for event in spec.events:
            if reads_user_input(event.topic) and not may_read:
                log.warning(
                    "plugin %s: not subscribed to %s: the 'messages' permission is not granted",
                    spec.name,
                    event.topic,
                )
                continue
            priority = clamp_priority(event.priority, EVENT_PRIORITY)
            subscriptions.append((event.topic, self._event_handler(spec.name), priority))
        return subscriptions

    async def _route_triggers(self, topic: str, payload: dict[str, Any]) -> bool:
        """Offer the message to the triggers that match it, best first (routing.py)."""
        text, table = payload["text"], self.triggers
        if not table or not isinstance(text, str) or len(text) > MAX_TRIGGER_TEXT:
            return False  # too long for a command: on to the readers and the assistant
        inline = len(text) <= INLINE_MATCH_CHARS
        candidates = (
            table.candidates(text) if inline else await asyncio.to_thread(table.candidates, text)
        )
        for trigger in candidates:
            entry = self.tools.get(trigger.tool)
            if entry is None or entry.plugin != trigger.plugin:
                continue  # disabled (or replaced) since the table was taken
            match = (
                trigger.search(text) if inline else await asyncio.to_thread(trigger.search, text)
            )
            if match is None:
                continue
            args = trigger_arguments(match, entry.spec.parameters)
            await self.call_tool(payload["session_id"], trigger.tool, args, reply=True)
            return True
        return False

    def _event_handler(self, plugin: str) -> Any:
        """Delivers to whichever worker serves ``plugin`` now (an upgrade may switch it)."""

        async def handle(topic: str, payload: dict[str, Any]) -> bool | None:
            runtime = self.loader.runtimes.get(plugin)
            if runtime is None:
                return False
            supervisor = runtime.supervisor
            if topic in ("user.message", "user.image"):
                try:
                    result = await supervisor.request(
                        "on_event", {"topic": topic, "payload": payload}
                    )
                except RpcError as exc:
                    log.warning("plugin %s: on_event(%s) failed: %s", supervisor.name, topic, exc)
                    return False
                return bool(isinstance(result, dict) and result.get("handled"))
            supervisor.send_event(topic, payload)
            return None

        return handle

    # -- upgrades ----------------------------------------------------------------------------

    async def upgrade_plugin(
        self,
        name: str,
        version: str,
        *,
        grant: Sequence[str] = (),
        yes: bool = False,
        ask_all: AskGrants | None = None,
        allow_downgrade: bool = False,
    ) -> UpgradeReport:
        """Loader.upgrade, told to the front ends as a ``plugin_notice``."""
        report = await self.loader.upgrade(
            name, version, grant=grant, yes=yes, ask_all=ask_all, allow_downgrade=allow_downgrade
        )
        self._plugin_notice(name, upgrade_notice(report))
        return report

    async def rollback_plugin(
        self, name: str, *, ask_all: AskGrants | None = None
    ) -> UpgradeReport:
        report = await self.loader.rollback(name, ask_all=ask_all)
        self._plugin_notice(name, upgrade_notice(report))
        return report

    def _reload_grants(self) -> None:
        """grants.json changed on disk (another process granted or revoked): read it anew.
        A damaged file raises GrantStoreError and the grants in memory stay."""
        self.grants = GrantStore(self.paths.grants_file)
        self.loader.grants = self.grants

    def _plugin_notice(self, plugin: str | None, message: str) -> None:
        self._notify({"type": "plugin_notice", "plugin": plugin, "message": message})

    # -- reports from supervisors -----------------------------------------------------------

    def _hooks_for(self, name: str) -> SupervisorHooks:
        return SupervisorHooks(
            on_stream=self._on_stream,
            on_notice=self._on_notice,
            on_disabled=self._on_disabled,
            on_restarted=self._reactivate,
            on_denial=self._plugin_notice,
        )

    def _on_stream(self, plugin: str, params: dict[str, Any]) -> None:
        """A frame from a worker: checked (a bad one is dropped and said once, see
        streams.py), then shown, stored as the stream's latest state, and published."""
        runtime = self.loader.runtimes.get(plugin)
        frame = self.streams.admit(plugin, params, runtime.spec.renderer if runtime else None)
        if frame is None:
            return
        session_id = self.active_session
        if session_id is not None:
            self.journal.record_encoded(
                EncodedEvent(
                    session_id,
                    "stream",
                    time.time(),
                    frame.encoded,
                    plugin,
                    frame.topic,
                    frame.size,
                )
            )
            self._notify({"type": "stream", "session_id": session_id, **frame.event})
        self._publish_soon(f"stream.{frame.topic}", frame.event)

    def _on_notice(self, plugin: str, message: str) -> None:
        # Listeners hear it too (not stored): a front end shows the crash and the restart.
        self._plugin_notice(plugin, message)
        self._publish_soon("plugin.crashed", {"plugin": plugin, "message": message})

    def _on_disabled(self, plugin: str, message: str) -> None:
        runtime = self.loader.forget_runtime(plugin)
        # The supervisor gives up on a worker for a crash loop or for its disk quota: the
        # cause is stored as such, so no front end has to read it out of the message.
        looped = runtime is None or runtime.supervisor.guard.tripped
        self.installed.set_enabled(plugin, False, message, Cause.CRASHED if looped else Cause.QUOTA)
        self.error(None, message, plugin=plugin)
        self._plugin_notice(plugin, message)
        self._publish_soon("plugin.disabled", {"plugin": plugin, "message": message})

    async def _reactivate(self, supervisor: Supervisor) -> None:
        if "activate" in supervisor.hooks_defined:
            await supervisor.run_hook("activate")

    def _publish_soon(self, topic: str, payload: dict[str, Any]) -> None:
        if not self.bus.has_subscribers(topic):
            return
        task = asyncio.get_running_loop().create_task(self.bus.publish(topic, payload))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _tick_forever(self) -> None:
        interval = self.config.tick_interval
        loop = asyncio.get_running_loop()
        next_at = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += interval
            if self.bus.has_subscribers("system.tick"):
                await self.bus.publish("system.tick", {"ts": time.time()})
