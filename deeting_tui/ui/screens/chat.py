"""The chat: the conversation, anchored to its end, and the input line.

Kernel events arrive as KernelEvent messages; this screen turns them into widgets. A turn
runs as a named worker, so Esc can cancel it (the kernel then cancels the model stream and
every pending tool call). Plugin streams are coalesced to at most 30 redraws a second.

The screen is up before the kernel has started (the app's first frame waits for no plugin):
what is typed meanwhile stays in the line, and a message sent meanwhile is drawn at once as
waiting, then sent, in order, as soon as the kernel is ready; Esc before then gives it back
to the input line.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from textual import on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Input
from textual.worker import WorkerCancelled, WorkerFailed

from deeting_tui.kernel.limits import message_problem
from deeting_tui.terminal_text import one_line

from ..completion import SlashSuggester, ToolParameters
from ..first_screen import Available, FirstScreen, first_screen
from ..help_text import HELP
from ..host import ChatHost
from ..messages import (
    KernelEvent,
    LocalReply,
    NewSessionWanted,
    SessionsWanted,
    StatusChanged,
    neutralised,
)
from ..widgets.prompt import PromptInput, as_line

if TYPE_CHECKING:
    from deeting_tui.kernel.events import (
        ErrorEvent,
        Event,
        PluginNotice,
        Progress,
        Reply,
        ReplyDelta,
        StreamFrame,
        ToolCall,
        ToolResult,
        UserMessage,
    )

    from ..widgets.transcript import AssistantReply, LiveCard, ToolCallBlock, Welcome
    from .replay import Echo

STREAM_REDRAW_S = 1 / 30
#: A stored session shows its last this many events (a few screens); earlier ones come this
#: many at a time, on demand. Drawing the widgets of 10,000 events took many seconds before
#: the first screenful showed (bench/chat_input.py).
SHOWN_EVENTS = 50


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
        # Before the app's focus_next: in the input, Tab first takes a shown completion.
        Binding("tab", "complete_or_next", "Complete", show=False, id="chat.complete"),
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
        self._pending_streams: dict[str, StreamFrame] = {}
        # What the kernel says again right after a tool result: a direct call's or a
        # trigger's reply (the result's summary) or a failed call's error. The block and its
        # card show it already, so the echo is not shown a second time.
        self._echo: Echo | None = None
        self._earlier: list[Event] = []  # stored events not drawn yet, oldest first
        #: Lines sent before the kernel was ready (or while earlier ones wait), oldest first:
        #: sent in turn once it is; each is drawn as waiting meanwhile.
        self._waiting: list[tuple[str, list[Widget]]] = []
        #: How each kind of kernel event is drawn; kinds not in it (none today) are ignored.
        #: How each kind of kernel event is drawn (filled at the first event: the kernel's
        #: event classes are imported after the first frame); kinds not in it are ignored.
        self._handlers: dict[type[Event], Callable[[Any], Awaitable[None]]] = {}

    @property
    def deeting(self) -> ChatHost:
        # Only the Deeting app pushes this screen (see host.py: the app imports the screens,
        # not the reverse).
        return cast(ChatHost, self.app)

    def compose(self) -> ComposeResult:
        yield Header()
        yield VerticalScroll(id="transcript")
        yield PromptInput(
            placeholder="Message, or /TOOL key=value (→ completes) — Esc cancels",
            id="prompt",
            suggester=SlashSuggester(self._tool_parameters),
            select_on_focus=False,  # back with Shift+Tab, the next key must not erase it all
        )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#transcript", VerticalScroll).anchor()
        self.stream_timer = self.set_interval(STREAM_REDRAW_S, self._redraw_streams)
        self.query_one("#prompt", Input).focus()

    async def show_session(self, events: list[Event]) -> None:
        """Start over with a stored conversation (resume, or open from the session list).

        The events are drawn here and now, not posted: a stored event that cannot be drawn
        raises to the caller, which can then open another session instead of crashing. Each
        is neutralised first, as a ``KernelEvent`` is.
        """
        await self._end_reply()
        self._live.clear()
        self._calls.clear()
        self._pending_streams.clear()
        transcript = self.query_one("#transcript", VerticalScroll)
        await transcript.remove_children()
        self._echo = None
        if not events:
            from ..widgets.transcript import Welcome

            welcome = Welcome(self.first_screen())
            await transcript.mount(welcome)
            self.run_worker(self._offer_available(welcome), group="welcome", exclusive=True)
        self._earlier = list(events)
        await self._show_earlier()

    def first_screen(self, available: Sequence[Available] = ()) -> FirstScreen:
        """What a new session's first screen says: a line for each enabled plugin (an example
        that works as typed), then for each ``available`` plugin (not installed; shown with its
        description), the keys, and who answers."""
        from deeting_tui.kernel.plugins import PluginState

        kernel = self.deeting.kernel
        health = kernel.plugins.health()
        assistant = kernel.assistant
        return first_screen(
            kernel.tool_infos(),
            self._tool_parameters(),
            installed=sum(health.values()),
            awaiting_consent=health[PluginState.NEEDS_CONSENT],
            provider=getattr(assistant, "name", "offline"),
            model=getattr(assistant, "model", None),
            available=available,
        )

    async def _offer_available(self, welcome: Welcome) -> None:
        """Add the official plugins that are not installed to the first screen, once read:
        reading the bundle verifies its signatures, which the first paint does not wait for."""
        plugins = self.deeting.kernel.plugins
        found = await asyncio.to_thread(plugins.available)
        if found and welcome.is_mounted:
            welcome.show(self.first_screen([Available(p.name, p.description) for p in found]))

    async def on_earlier_events_wanted(self) -> None:
        """``EarlierEvents.Wanted`` (named, not imported: the transcript's widgets are
        imported after the first frame)."""
        await self._show_earlier()

    async def _show_earlier(self) -> None:
        """Draw the next batch of stored events above those drawn (the last batch first)."""
        from ..widgets.transcript import EarlierEvents, ToolCallBlock
        from .replay import batch_start, replay

        events = self._earlier
        start = batch_start(events, SHOWN_EVENTS)
        self._earlier, batch = events[:start], events[start:]
        transcript = self.query_one("#transcript", VerticalScroll)
        widgets, results = replay([neutralised(event) for event in batch])
        markers = transcript.query(EarlierEvents)
        marker = markers.first(EarlierEvents) if markers else None
        if self._earlier and marker is None:
            marker = EarlierEvents()
            widgets.insert(0, marker)
        if widgets:
            if marker is not None and marker.parent is transcript:
                await transcript.mount_all(widgets, after=marker)
            else:
                await transcript.mount_all(widgets, before=0 if transcript.children else None)
        for block, result in results:
            await block.finish(result)
        running = self.deeting.kernel.call_running
        for widget in widgets:
            if isinstance(widget, ToolCallBlock) and not widget.done:
                self._calls[widget.call_id] = widget  # its result, should it come, finishes it
                if not running(widget.call_id):
                    widget.unanswered()
        if marker is not None:
            if self._earlier:
                marker.show_count(len(self._earlier), SHOWN_EVENTS)
            else:
                await marker.remove()

    def _tool_parameters(self) -> ToolParameters:
        """Each enabled tool's parameter names, required ones first, for completion. A name
        the neutraliser would change (controls, spaces) cannot be typed as ``key=value``: it
        is not offered, so a plugin cannot put its escape sequences in the input line.
        Before the kernel is composed: none yet."""
        tools: dict[str, list[str]] = {}
        if not self.deeting.has_kernel:
            return tools
        for info in self.deeting.kernel.tool_infos():
            properties = [p for p in info.parameters.get("properties", {}) if one_line(p) == p]
            required = [p for p in info.parameters.get("required", []) if p in properties]
            tools[info.name] = required + [p for p in properties if p not in required]
        return tools

    # -- input -------------------------------------------------------------------------------

    @on(Input.Submitted, "#prompt")
    def _submitted(self, event: Input.Submitted) -> None:
        text = PromptInput.message(event.value).strip()
        problem = message_problem(text)
        if problem is not None:  # refused: the text goes back in the line, to be cut or fixed
            self.notify(problem, severity="error", timeout=10)
            self.query_one("#prompt", PromptInput).restore(event.value)
            return
        if not text:
            return
        self._history.append(text)
        self._history_at = len(self._history)
        if text in ("/help", "/?"):
            self.show_help()
            return
        if self._waiting or not self.deeting.started.is_set():
            self._wait(text)
            return
        if self._command(text):
            return
        self.run_turn(text)

    def _command(self, text: str) -> bool:
        """Run the chat's own command ``text`` is, if it is one (True)."""
        if text == "/new":
            self.post_message(NewSessionWanted())
            return True
        if text == "/plugins":
            from .plugins import PluginManager

            self.app.push_screen(PluginManager(self.deeting.kernel))
            return True
        if text == "/sessions":
            self.post_message(SessionsWanted())
            return True
        return False

    def _wait(self, text: str) -> None:
        """A line sent before the kernel is ready (or while lines sent before then still
        wait): drawn as waiting, then sent once the kernel is, after those. A demanding user
        expects it to go, not to be refused: the kernel is up in a moment."""
        from ..widgets.transcript import message_widgets

        widgets = message_widgets("user", text)
        for widget in widgets:
            widget.add_class("waiting")
        self._waiting.append((text, widgets))
        self._transcript().mount_all(widgets)
        if len(self._waiting) == 1:
            if not self.deeting.started.is_set():
                self.notify("plugins are starting: your message goes as soon as they are ready")
            self._send_waiting()

    @work(group="waiting", exclusive=True, exit_on_error=False)
    async def _send_waiting(self) -> None:
        """Send the waiting lines in order, each turn over before the next; Esc (or Ctrl-C)
        meanwhile gives every line not sent yet back to the input line, never losing it."""
        try:
            await self.deeting.started.wait()
            while self._waiting:
                text, widgets = self._waiting[0]
                for widget in widgets:
                    if widget.is_attached:
                        await widget.remove()
                self._waiting.pop(0)
                if not self._command(text):
                    with contextlib.suppress(WorkerCancelled, WorkerFailed):
                        await self.run_turn(text).wait()
        except asyncio.CancelledError:
            waiting, self._waiting = self._waiting, []
            for _text, widgets in waiting:
                for widget in widgets:
                    if widget.is_attached:
                        await widget.remove()
            lines = "\n".join(text for text, _widgets in waiting)
            for prompt in self.query("#prompt").results(PromptInput):
                if lines:
                    prompt.restore(as_line(lines))
            raise

    def show_session_id(self, session_id: str) -> None:
        # The status timer may tick while the app is closing and this screen's widgets are
        # already gone: nothing to show then, and no error to end the app with.
        for prompt in self.query("#prompt").results(Input):
            prompt.border_subtitle = f"session {session_id}"

    def show_help(self) -> None:
        self.post_message(LocalReply(HELP))

    def on_resize(self) -> None:
        # The header's consent hint is as long as it has room for.
        self.post_message(StatusChanged())

    def on_screen_resume(self) -> None:
        # Back from the plugin manager: the plugins' states may have changed.
        self.post_message(StatusChanged())

    @work(group="turn", exclusive=True, exit_on_error=False)
    async def run_turn(self, text: str) -> None:
        await self.deeting.submit(text)

    def action_cancel_turn(self) -> None:
        self.workers.cancel_group(self, "waiting")  # what waits goes back to the input
        self.workers.cancel_group(self, "turn")

    def action_interrupt_turn(self) -> None:
        if not self._turn_running():
            raise SkipAction()  # nothing running: ctrl+c goes on to copy
        self.action_cancel_turn()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Esc Cancel is dimmed in the footer while no turn runs: nothing to cancel."""
        if action == "cancel_turn":
            return True if self._turn_running() else None
        return True

    def _turn_running(self) -> bool:
        return bool(self._waiting) or any(
            w.group == "turn" and not w.is_finished for w in self.workers
        )

    def on_worker_state_changed(self) -> None:
        self.refresh_bindings()  # a turn began or ended: Esc Cancel lights up or dims

    def action_complete_or_next(self) -> None:
        prompt = self.query_one("#prompt", Input)
        if prompt.has_focus and prompt._suggestion:
            prompt.value = prompt._suggestion
            prompt.cursor_position = len(prompt.value)
        else:
            self.focus_next()

    def action_history(self, step: int) -> None:
        if not self._history:
            return
        self._history_at = max(0, min(len(self._history), self._history_at + step))
        prompt = self.query_one("#prompt", Input)
        prompt.value = as_line(
            self._history[self._history_at] if self._history_at < len(self._history) else ""
        )
        prompt.cursor_position = len(prompt.value)

    # -- kernel events -----------------------------------------------------------------------

    @on(KernelEvent)
    async def _kernel_event(self, message: KernelEvent) -> None:
        await self._show(message.event)

    @on(LocalReply)
    async def _local_reply(self, message: LocalReply) -> None:
        """The chat's own text (``/help``): drawn as a reply, never stored or sent."""
        from ..widgets.transcript import message_widgets

        self._echo = None
        await self._end_reply()
        await self._transcript().mount_all(message_widgets("reply", message.markdown))

    async def _show(self, event: Event) -> None:
        """Draw one kernel event (neutralised already) with the handler for its class."""
        from deeting_tui.kernel.events import (
            ErrorEvent,
            PluginNotice,
            Progress,
            Reply,
            ReplyDelta,
            StreamFrame,
            ToolCall,
            ToolResult,
            UserMessage,
        )

        from .replay import repeats

        if not self._handlers:
            self._handlers = {
                UserMessage: self._on_user,
                ReplyDelta: self._on_reply_delta,
                Reply: self._on_reply,
                ToolCall: self._on_tool_call,
                ToolResult: self._on_tool_result,
                Progress: self._on_progress,
                PluginNotice: self._on_plugin_notice,
                ErrorEvent: self._on_error,
                StreamFrame: self._on_stream,
            }
        if isinstance(event, UserMessage | Reply | ReplyDelta | ToolCall | ToolResult | ErrorEvent):
            echo, self._echo = self._echo, None
            if repeats(echo, event):
                return
        handler = self._handlers.get(type(event))
        if handler is not None:
            await handler(event)

    def _transcript(self) -> VerticalScroll:
        return self.query_one("#transcript", VerticalScroll)

    async def _on_user(self, event: UserMessage) -> None:
        from ..widgets.transcript import Welcome, message_widgets

        await self._end_reply()
        await self._transcript().query(Welcome).remove()
        await self._transcript().mount_all(message_widgets("user", event.text))

    async def _on_reply_delta(self, event: ReplyDelta) -> None:
        if self._reply is None:
            from textual.widgets import Markdown

            from ..widgets.transcript import AssistantReply

            self._reply = AssistantReply()
            await self._transcript().mount(self._reply)
            self._stream = Markdown.get_stream(self._reply)
        await self._stream.write(event.text)

    async def _on_reply(self, event: Reply) -> None:
        if self._reply is None:
            from ..hints import chat_event_line
            from ..widgets.transcript import message_widgets

            await self._transcript().mount_all(message_widgets("reply", chat_event_line(event)))
        await self._end_reply()

    async def _on_tool_call(self, event: ToolCall) -> None:
        from ..widgets.transcript import ToolCallBlock

        await self._end_reply()
        block = ToolCallBlock(event.call_id, event.tool, event.plugin, event.args)
        self._calls[block.call_id] = block
        await self._transcript().mount(block)

    async def _on_tool_result(self, event: ToolResult) -> None:
        called = self._calls.get(event.call_id)
        if called is not None and not called.done:
            from .replay import echo_of

            await called.finish(event)
            self._echo = echo_of(event)
        self.post_message(StatusChanged())  # its plugin may have just started (first use)

    async def _on_progress(self, event: Progress) -> None:
        running = self._calls.get(event.call_id)
        if running is not None:
            await running.progress(event.fraction, event.message)

    async def _on_plugin_notice(self, event: PluginNotice) -> None:
        from ..hints import chat_event_line

        self.notify(chat_event_line(event), severity="warning", timeout=8)
        self.post_message(StatusChanged())

    async def _on_error(self, event: ErrorEvent) -> None:
        from ..hints import chat_event_line
        from ..widgets.transcript import message_widgets

        await self._end_reply()
        await self._transcript().mount_all(message_widgets("error", chat_event_line(event)))

    async def _on_stream(self, event: StreamFrame) -> None:
        self._pending_streams[f"{event.plugin}:{event.topic}"] = event  # drawn by the timer

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
                from ..widgets.transcript import LiveCard

                card = self._live[key] = LiveCard(event.plugin, event.topic)
            card.show(event.renderer, event.payload, event.topic)
            if fresh:  # drawn before it is shown: never an empty frame
                await self.query_one("#transcript", VerticalScroll).mount(card)
