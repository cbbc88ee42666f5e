"""The pieces of a conversation: user lines, streamed replies, tool-call blocks, cards.

Widgets only host what the kernel said and what the renderers drew; no decisions here. The
events they are given are neutralised already (``KernelEvent``); strings go into ``Text``,
never markup, so a plugin's ``[bold]`` shows as written.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Click
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Collapsible, Markdown, ProgressBar, Static

from deeting_tui.kernel.events import ToolResult
from deeting_tui.render import render

from ..first_screen import KEYS, FirstScreen, Thing, no_plugin_lines, provider_lines
from ..messages import CardPageWanted

#: How much of one message the transcript lays out; the rest is a click away (MoreText).
#: Wrapped at 80 columns this is 50 lines: a screenful and more, drawn in milliseconds.
DISPLAY_CHARS = 4000

#: On a focused card (a result's title, a live stream): its page in the browser.
BROWSER_BINDING = Binding(
    "o", "open_in_browser", "Browser", id="card.browser", tooltip="Open this card in the browser"
)


def cut(text: str, limit: int = DISPLAY_CHARS) -> tuple[str, int]:
    """``text``'s first ``limit`` characters, and how many more there are."""
    if len(text) <= limit:
        return text, 0
    return text[:limit], len(text) - limit


class MoreText(Static, can_focus=True):
    """Under a message cut to its first characters: how much is left, and the way to read it
    all (a click, or Enter when focused) in the FullText viewer."""

    DEFAULT_CSS = """
    MoreText { color: $text-muted; margin: 0 0 0 2; padding: 0 1; }
    MoreText:focus { text-style: reverse; }
    """
    BINDINGS = [Binding("enter", "open", "Read all", id="more_text.open")]

    def __init__(self, heading: str, text: str, hidden: int) -> None:
        super().__init__(Text(f"… {hidden:,} more characters — click or Enter reads it all"))
        self.heading = heading
        self.text = text

    def action_open(self) -> None:
        from ..screens.full_text import FullText

        self.app.push_screen(FullText(self.heading, self.text))

    def on_click(self, event: Click) -> None:
        self.action_open()


def message_widgets(kind: str, text: str) -> list[Widget]:
    """The widgets of a user line, a whole reply or an error: the text cut to
    ``DISPLAY_CHARS``, and a MoreText under it when it was cut."""
    shown, hidden = cut(text)
    widget: Widget
    if kind == "user":
        widget = UserLine(shown)
    elif kind == "reply":
        widget = AssistantReply(shown)
    else:
        widget = ErrorLine(shown)
    if not hidden:
        return [widget]
    heading = {"user": "Your message", "reply": "The reply"}.get(kind, "The error")
    return [widget, MoreText(heading, text, hidden)]


class EarlierEvents(Static, can_focus=True):
    """At the top of a long session: how many earlier events are not shown, and the way to
    show the next batch of them (a click, or Enter when focused)."""

    DEFAULT_CSS = """
    EarlierEvents { color: $text-muted; padding: 0 1; }
    EarlierEvents:focus { text-style: reverse; }
    """
    BINDINGS = [Binding("enter", "more", "Earlier", id="earlier_events.more")]

    class Wanted(Message):
        """The user asked for the earlier events."""

    def show_count(self, count: int, batch: int) -> None:
        self.update(
            Text(f"⋯ {count:,} earlier events — click or Enter shows {min(count, batch):,} more")
        )

    def action_more(self) -> None:
        self.post_message(self.Wanted())

    def on_click(self, event: Click) -> None:
        self.action_more()


class UserLine(Static):
    DEFAULT_CSS = """
    UserLine { color: $text; background: $boost; padding: 0 1; margin: 1 0 0 0; }
    """

    def __init__(self, text: str) -> None:
        super().__init__(Text("> " + text))


class Welcome(Static):
    """The first screen of an empty session (``first_screen.py`` gathers what it says): what
    to try, plugin by plugin, the keys that matter, and who answers. Shown, never stored; it
    goes when the first message is sent."""

    DEFAULT_CSS = """
    Welcome { color: $text-muted; padding: 0 1; margin: 1 0 0 0; }
    """

    def __init__(self, screen: FirstScreen) -> None:
        super().__init__(welcome_text(screen))

    def show(self, screen: FirstScreen) -> None:
        """Say it again with more known (the available plugins, read after the first paint)."""
        self.update(welcome_text(screen))


def welcome_text(screen: FirstScreen) -> Text:
    text = Text("Welcome to Deeting. Things to try — type one, then Enter:\n", style="bold")
    things = list(screen.plugins) or ([] if screen.installed else no_plugin_lines())
    if screen.more:
        things.append(Thing(f"…and {screen.more} more", "help lists every tool, F2 every plugin"))
    things.append(Thing("help", "the assistant says what it can do"))
    if screen.awaiting_consent:
        count = screen.awaiting_consent
        some = f"{count} plugin{'s' if count > 1 else ''}"
        things.append(Thing("F2", f"{some} awaiting consent: move to one, e allows what it asks"))
    elif screen.installed:
        things.append(Thing("F2", "the plugins: install, enable, grant permissions"))
    for thing in things:
        text.append("  ")
        text.append(thing.thing, style="bold cyan")
        text.append(f" — {thing.what}\n", style="not bold")
    text.append("Keys:", style="not bold")
    for index, (key, what) in enumerate(KEYS):
        text.append(" · " if index else " ", style="not bold")
        text.append(key, style="bold cyan")
        text.append(f" {what}", style="not bold")
    text.append("\n")
    text.append("\n".join(provider_lines(screen)), style="not bold")
    return text


class AssistantReply(Markdown):
    """A reply; text may arrive in pieces (see ChatScreen's stream handling)."""

    DEFAULT_CSS = """
    AssistantReply { margin: 0 0 0 2; padding: 0; background: transparent; }
    """


class ErrorLine(Static):
    DEFAULT_CSS = """
    ErrorLine { color: $error; padding: 0 1; margin: 0 0 0 2; }
    """

    def __init__(self, message: str) -> None:
        super().__init__(Text("✗ " + message))


class ToolCallBlock(Vertical):
    """One tool call: a spinner and the time it has run, a progress bar when the plugin
    reports progress, then the duration and a collapsible body with arguments and card (or
    the error, or "cancelled" as soon as the user cancelled it)."""

    DEFAULT_CSS = """
    ToolCallBlock { height: auto; margin: 0 0 0 2; }
    ToolCallBlock > .status { color: $text-muted; }
    ToolCallBlock > .status.-done { color: $success; }
    ToolCallBlock > .status.-failed { color: $error; }
    ToolCallBlock > .status.-cancelled { color: $warning; }
    ToolCallBlock > ProgressBar { margin: 0 0 0 2; height: 1; }
    ToolCallBlock > .progress-message { color: $text-muted; margin: 0 0 0 2; }
    ToolCallBlock Collapsible { margin: 0; padding: 0; border: none; }
    """

    SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
    SPIN_INTERVAL_S = 0.1
    # Active while focus is inside the block: its result's title, once it has one.
    BINDINGS = [BROWSER_BINDING]

    def __init__(self, call_id: str, tool: str, plugin: str | None, args: dict[str, Any]) -> None:
        # No widget id from the call id: ids are data (stored, maybe by an older version that
        # repeated them), and a repeated widget id is a crash. The chat maps ids to blocks.
        super().__init__()
        self.call_id = call_id
        self.tool = tool
        self.plugin = plugin
        self.args = args
        self.started = time.monotonic()
        self.done = False
        self._frame = 0
        self._spinner: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._running_line(), classes="status")

    def on_mount(self) -> None:
        if not self.done:
            self._spinner = self.set_interval(self.SPIN_INTERVAL_S, self._spin)

    def _running_line(self) -> Text:
        elapsed = time.monotonic() - self.started
        line = Text(f"{self.SPINNER[self._frame % len(self.SPINNER)]} {self.tool} ")
        line.append(_short_args(self.args), style="dim")
        line.append(f"  {elapsed:.1f} s" if elapsed >= 1 else "  running…")
        return line

    def _spin(self) -> None:
        self._frame += 1
        self.query_one(".status", Static).update(self._running_line())

    @property
    def card_id(self) -> str:
        """The id of this call's card on the browser page (``web.cards.card_id``)."""
        return self.call_id

    def action_open_in_browser(self) -> None:
        self.post_message(CardPageWanted(self.card_id))

    async def progress(self, fraction: float | None, message: str) -> None:
        """Show the plugin's latest progress report (fraction None: amount unknown)."""
        if self.done:
            return
        bars = self.query(ProgressBar)
        if bars:
            bar = bars.first(ProgressBar)
            label = self.query_one(".progress-message", Static)
        else:
            bar = ProgressBar(total=None, show_eta=False)
            label = Static("", classes="progress-message")
            await self.mount(bar, label)
        if fraction is None:
            bar.update(total=None)
        else:
            bar.update(total=100, progress=round(fraction * 100, 1))
        label.update(Text(message))
        label.display = bool(message)

    def unanswered(self) -> None:
        """A stored call with no result, which nothing runs now (Deeting quit or was killed
        mid-call): said so, instead of a spinner that would never stop. A result that still
        arrives (another process ran it) replaces this line."""
        if self.done:
            return
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None
        status = self.query_one(".status", Static)
        status.add_class("-cancelled")
        line = Text(f"⊘ {self.tool} ")
        line.append(_short_args(self.args), style="dim")
        line.append("  no result: the call was cut short")
        status.update(line)

    async def finish(self, result: ToolResult) -> None:
        self.done = True
        if self._spinner is not None:
            self._spinner.stop()
        await self.query(ProgressBar).remove()
        await self.query(".progress-message").remove()
        status = self.query_one(".status", Static)
        took = _duration(result.duration_ms or 0)
        if result.ok:
            status.add_class("-done")
            status.update(Text(f"✓ {self.tool}  {took}"))
            text = result.text
            if text is not None:  # an echo of a huge message: a card of its prefix
                shown, hidden = cut(text)
                text = shown + (f"\n… {hidden:,} more characters" if hidden else "")
            card = render(result.renderer, result.data, text=text)
            arguments = Static(Text(_short_args(self.args, limit=2000), style="dim"))
            body = Collapsible(arguments, Static(card), title="result", collapsed=False)
            await self.mount(body)
        elif result.cancelled:
            status.add_class("-cancelled")
            status.update(Text(f"⊘ {self.tool}  cancelled after {took}"))
        else:
            status.add_class("-failed")
            error, hidden = cut(str(result.error))
            more = f"… ({hidden:,} more characters)" if hidden else ""
            status.update(Text(f"✗ {self.tool}  {took}: {error}{more}"))


def _short_args(args: dict[str, Any], limit: int = 60) -> str:
    text = " ".join(f"{k}={orjson.dumps(v).decode()}" for k, v in args.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


class LiveCard(Static, can_focus=True):
    """A plugin's stream (push_stream), redrawn in place as new payloads arrive. Focused
    (Tab), o opens its page, where it keeps moving too."""

    DEFAULT_CSS = """
    LiveCard { border: round $accent; height: auto; margin: 0 0 0 2; }
    LiveCard:focus { border: double $accent; }
    """
    BINDINGS = [BROWSER_BINDING]

    def __init__(self, plugin: str = "", topic: str = "") -> None:
        super().__init__()
        #: The id of this stream's card on the browser page (``web.cards.card_id``).
        self.card_id = f"stream:{plugin}:{topic}"

    def action_open_in_browser(self) -> None:
        self.post_message(CardPageWanted(self.card_id))

    def show(self, renderer: str | None, payload: Any, topic: str) -> None:
        self.border_title = Text(topic)
        self.update(render(renderer, payload))
