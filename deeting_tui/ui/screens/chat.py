"""The chat: the conversation, anchored to its end, and the input line.

Kernel events arrive as KernelEvent messages; this screen turns them into widgets. A turn
runs as a named worker, so Esc can cancel it (the kernel then cancels the model stream and
every pending tool call). Plugin streams are coalesced to at most 30 redraws a second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Markdown

from deeting_tui.terminal_text import one_line

from ..completion import SlashSuggester, ToolParameters
from ..messages import KernelEvent
from ..widgets.transcript import AssistantReply, ErrorLine, LiveCard, ToolCallBlock, UserLine

if TYPE_CHECKING:
    from ..app import DeetingApp

STREAM_REDRAW_S = 1 / 30

HELP = """**Commands**

- `/TOOL key=value …` — call a plugin's tool directly (see `/plugins` for the tools)
- `/image PATH` — send an image to the plugins that take images
- `/plugins` — installed plugins: enable, disable, grant permissions
- `/sessions` — stored conversations: open or delete one
- `/new` — start a new session
- `/help` — this list

Esc cancels the running turn; ↑/↓ walk your earlier messages; → accepts the greyed-out
completion of a command, tool, argument name or path; Ctrl+P opens the command palette.
"""


class ChatScreen(Screen[None]):
    CSS_PATH = "chat.tcss"
    BINDINGS = [
        Binding(
            "escape", "cancel_turn", "Cancel", id="chat.cancel", tooltip="Stop the running turn"
        ),
        # Ctrl-C is what a terminal user presses to stop something: while a turn runs it
        # cancels it as Esc does; otherwise it stays the input's copy (and the app's hint).
        Binding("ctrl+c", "interrupt_turn", "Stop", show=False, priority=True, id="chat.interrupt"),
        Binding("up", "history(-1)", "Previous", show=False, id="chat.history_back"),
        Binding("down", "history(1)", "Next", show=False, id="chat.history_forward"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._stream: Any = None  # the MarkdownStream of the reply being written
        self._reply: AssistantReply | None = None
        self._history: list[str] = []
        self._history_at = 0
        self._live: dict[str, LiveCard] = {}
        #: Each call's block by call id; a repeated id (old sessions) means the newest call.
        self._calls: dict[str, ToolCallBlock] = {}
        self._pending_streams: dict[str, dict[str, Any]] = {}

    @property
    def deeting(self) -> DeetingApp:
        from ..app import DeetingApp

        assert isinstance(self.app, DeetingApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Header()
        yield VerticalScroll(id="transcript")
        yield Input(
            placeholder="Message, or /TOOL key=value (→ completes) — Esc cancels",
            id="prompt",
            suggester=SlashSuggester(self._tool_parameters),
        )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#transcript", VerticalScroll).anchor()
        self.stream_timer = self.set_interval(STREAM_REDRAW_S, self._redraw_streams)
        self.query_one("#prompt", Input).focus()

    async def show_session(self, events: list[dict[str, Any]]) -> None:
        """Start over with a stored conversation (resume, or open from the session list).

        The events are drawn here and now, not posted: a stored event that cannot be drawn
        raises to the caller, which can then open another session instead of crashing. Each
        still becomes a ``KernelEvent`` first, which neutralises its strings.
        """
        await self._end_reply()
        self._live.clear()
        self._calls.clear()
        self._pending_streams.clear()
        await self.query_one("#transcript", VerticalScroll).remove_children()
        for event in events:
            await self._show(KernelEvent(event))

    def _tool_parameters(self) -> ToolParameters:
        """Each enabled tool's parameter names, required ones first, for completion. A name
        the neutraliser would change (controls, spaces) cannot be typed as ``key=value``: it
        is not offered, so a plugin cannot put its escape sequences in the input line."""
        tools: dict[str, list[str]] = {}
        for info in self.deeting.kernel.tool_infos():
            properties = [p for p in info.parameters.get("properties", {}) if one_line(p) == p]
            required = [p for p in info.parameters.get("required", []) if p in properties]
            tools[info.name] = required + [p for p in properties if p not in required]
        return tools

    # -- input -------------------------------------------------------------------------------

    @on(Input.Submitted, "#prompt")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        event.input.value = ""
        if not text:
            return
        self._history.append(text)
        self._history_at = len(self._history)
        if text == "/new":
            self.run_worker(self.deeting.action_new_session(), group="session", exclusive=True)
            return
        if text == "/plugins":
            from .plugins import PluginManager

            self.app.push_screen(PluginManager(self.deeting.kernel))
            return
        if text == "/sessions":
            self.deeting.action_sessions()
            return
        if text in ("/help", "/?"):
            self.show_help()
            return
        self.run_turn(text)

    def show_session_id(self, session_id: str) -> None:
        self.query_one("#prompt", Input).border_subtitle = f"session {session_id}"

    def show_help(self) -> None:
        self.post_message(KernelEvent({"type": "reply", "text": HELP}))

    def on_screen_resume(self) -> None:
        self.deeting.update_status()  # back from the plugin manager: states may have changed

    @work(group="turn", exclusive=True, exit_on_error=False)
    async def run_turn(self, text: str) -> None:
        await self.deeting.submit(text)

    def action_cancel_turn(self) -> None:
        self.workers.cancel_group(self, "turn")

    def action_interrupt_turn(self) -> None:
        if not any(
            w.node is self and w.group == "turn" and not w.is_finished for w in self.workers
        ):
            raise SkipAction()  # nothing running: ctrl+c goes on to copy
        self.workers.cancel_group(self, "turn")

    def action_history(self, step: int) -> None:
        if not self._history:
            return
        self._history_at = max(0, min(len(self._history), self._history_at + step))
        prompt = self.query_one("#prompt", Input)
        prompt.value = (
            self._history[self._history_at] if self._history_at < len(self._history) else ""
        )
        prompt.cursor_position = len(prompt.value)

    # -- kernel events -----------------------------------------------------------------------

    @on(KernelEvent)
    async def _kernel_event(self, message: KernelEvent) -> None:
        await self._show(message)

    async def _show(self, message: KernelEvent) -> None:
        """Draw one kernel event (live, or stored when a session is shown)."""
        event = message.event
        kind = event["type"]
        transcript = self.query_one("#transcript", VerticalScroll)
        if kind == "user":
            await self._end_reply()
            await transcript.mount(UserLine(event["text"]))
        elif kind == "reply_delta":
            if self._reply is None:
                self._reply = AssistantReply()
                await transcript.mount(self._reply)
                self._stream = Markdown.get_stream(self._reply)
            await self._stream.write(event["text"])
        elif kind == "reply":
            if self._reply is None:
                await transcript.mount(AssistantReply(event["text"]))
            await self._end_reply()
        elif kind == "tool_call":
            await self._end_reply()
            block = ToolCallBlock(
                str(event["call_id"]), event["tool"], event.get("plugin"), event["args"]
            )
            self._calls[block.call_id] = block
            await transcript.mount(block)
        elif kind == "tool_result":
            called = self._calls.get(str(event["call_id"]))
            if called is not None and not called.done:
                await called.finish(event)
        elif kind == "progress":
            running = self._calls.get(str(event["call_id"]))
            if running is not None:
                await running.progress(event["fraction"], event["message"])
        elif kind == "plugin_notice":
            self.notify(str(event.get("message", "")), severity="warning", timeout=8)
            self.deeting.update_status()
        elif kind == "error":
            await self._end_reply()
            await transcript.mount(ErrorLine(str(event.get("message", ""))))
        elif kind == "stream":
            key = f"{event.get('plugin')}:{event.get('topic')}"
            self._pending_streams[key] = event

    async def _end_reply(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()
        self._reply = None

    async def _redraw_streams(self) -> None:
        pending, self._pending_streams = self._pending_streams, {}
        for key, event in pending.items():
            card = self._live.get(key)
            fresh = card is None
            if card is None:
                card = self._live[key] = LiveCard()
            card.show(event.get("renderer"), event.get("payload"), str(event.get("topic")))
            if fresh:  # drawn before it is shown: never an empty frame
                await self.query_one("#transcript", VerticalScroll).mount(card)
