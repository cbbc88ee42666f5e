"""The Textual app: a kernel, the chat screen, and nothing the kernel should decide.

The kernel runs in the app's own event loop; its listener posts each event to the chat screen as a
message, so widgets change only in message handlers. The app resumes the session that changed last,
as README.md's "The chat" says (``new=True``: a new one). A session that cannot be shown is no dead
end: a new session opens instead, with a notice naming the one that failed.

Plugin text reaches the terminal only neutralised (``deeting_tui.terminal_text``): kernel
events as they become ``KernelEvent`` messages, toasts in :meth:`DeetingApp.notify`, manifest
strings and logs in the plugin manager, and under all of them the ``TerminalGuard`` line
filter over everything any widget draws.

First frame first: the chat screen is composed and painted before the kernel exists. The
kernel (and with it the model provider's SDK) is imported, composed and started by a worker
after the first paint, while the input already takes keys; the header says that plugins are
starting, and a message sent meanwhile waits for the kernel (``ChatScreen``), then goes.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.filter import LineFilter
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import WorkerFailed

from deeting_tui.terminal_text import neutralise, one_line

from .browser import CardBrowser
from .messages import (
    CardPageWanted,
    KernelEvent,
    NewSessionWanted,
    SessionsWanted,
    StatusChanged,
)
from .screens.chat import ChatScreen
from .terminal_guard import TerminalGuard

if TYPE_CHECKING:
    from deeting_tui.kernel.events import Event
    from deeting_tui.kernel.kernel import Kernel

#: How often the header re-reads plugin health (a restart that succeeds sends no event).
STATUS_REFRESH_S = 2.0
#: The header's title has the width less its icon (8 columns) and clock space (10); longer,
#: Textual cuts it with an ellipsis.
HEADER_SIDES = 18
#: The header while the kernel starts (before it, nothing is known of the plugins).
STARTING = "starting plugins…"
#: After "N awaiting consent", the longest of these that fits.
READY_PART = re.compile(r" · \d+ ready")
CONSENT_HINTS = (": F2, then e to allow", ": F2, then e", " — F2, e", " (F2)")


class DeetingApp(App[None]):
    TITLE = "Deeting"
    BINDINGS = [
        Binding("f1", "help", "Help", id="app.help", tooltip="Commands and keys of the chat"),
        Binding("f2", "plugins", "Plugins", id="app.plugins", tooltip="Manage plugins"),
        Binding("f3", "sessions", "Sessions", id="app.sessions", tooltip="Stored conversations"),
        Binding("ctrl+n", "new_session", "New", id="app.new_session", tooltip="New session"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(
        self,
        kernel: Kernel | None = None,
        *,
        session_id: str | None = None,
        new: bool = False,
        provider: str | None = None,
        model: str | None = None,
    ) -> None:
        """Without a kernel, one is composed as the CLI does (config, ``provider`` and
        ``model``, else the environment's), after the first frame: that is what ``deeting``
        and ``textual run --dev deeting_tui.ui.app:DeetingApp`` use. Without ``session_id``,
        the latest session is resumed, or with ``new`` a new one."""
        super().__init__()
        self._kernel: Kernel | None = None
        if kernel is not None:
            from deeting_tui.compose import plug_ports

            # The plugin manager renders the kernel's plugin service; its registry and
            # sandbox ports are plugged here for a kernel handed in (as the tests do).
            self._kernel = plug_ports(kernel)
        self._choice = (provider, model)
        #: Set once the kernel has started and the session is shown: until then the screens
        #: use no kernel (a message sent waits for this).
        self.started = asyncio.Event()
        self.session_id = session_id
        self.new = new
        self.problems: list[str] = []
        #: The exception that ended the app, if one did (the CLI says it in one line).
        self.crash: BaseException | None = None
        self._remove_listener: Any = None
        self._guard = TerminalGuard()
        self.chat: ChatScreen
        #: The card pages (``deeting view``'s server, for this chat): started on first use;
        #: it reads the kernel's session store, given once the kernel is composed.
        self.browser = CardBrowser(None, theme=_terminal_theme())

    @property
    def has_kernel(self) -> bool:
        """Whether the kernel is composed (it may be starting still)."""
        return self._kernel is not None

    @property
    def kernel(self) -> Kernel:
        """The kernel; before it is composed (the first moments of ``deeting``), an error:
        what runs before ``started`` is set must not need it."""
        if self._kernel is None:
            raise RuntimeError("the kernel is not composed yet (wait for app.started)")
        return self._kernel

    async def on_mount(self) -> None:
        # Pages start with the terminal's theme (COLORFGBG, else the browser's own choice);
        # a theme the user picks in the chat afterwards is followed by open pages.
        self.theme_changed_signal.subscribe(
            self, lambda theme: self.browser.set_theme("dark" if theme.dark else "light")
        )
        # The chat screen first, with nothing of the kernel: painted at once, input usable.
        self.chat = ChatScreen()
        await self.push_screen(self.chat)
        self.sub_title = STARTING
        # After the first frame is on the terminal: the imports would compete with it.
        self.call_after_refresh(self.start_kernel)

    @work(group="start", exclusive=True)
    async def start_kernel(self) -> None:
        """Compose (the imports in a thread) and start the kernel, show the session, then say
        the chat is ready. An error here ends the app with it (the CLI says it in one line),
        as it did when the kernel was composed before the chat took the terminal."""
        if self._kernel is None:
            provider, model = self._choice
            await asyncio.to_thread(_import_kernel, provider, model)
            from deeting_tui.compose import make_kernel

            self._kernel = make_kernel(provider, model)
        kernel = self._kernel
        self.browser.sessions = kernel.sessions
        self.problems = await kernel.start()
        if self.session_id is None and not self.new:
            latest = kernel.sessions.latest()
            self.session_id = latest.id if latest else None
        chat = self.chat

        def forward(event: Event) -> None:
            chat.post_message(KernelEvent(event))
            self.browser.feed(event)

        self._remove_listener = kernel.add_listener(forward)
        await self.open_session(self.session_id)
        for problem in self.problems:
            self.notify(problem, severity="warning", timeout=10)
        self.set_interval(STATUS_REFRESH_S, self.update_status)  # restarts end silently
        self.started.set()
        self.update_status()
        self.refresh_bindings()

    def get_line_filters(self) -> list[LineFilter]:
        """Textual's filters, then the guard: it sees the lines as they go to the terminal."""
        return [*super().get_line_filters(), self._guard]

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every toast (screens' and widgets' ``notify`` come here) neutralised and never read
        as markup, whatever the caller asked: a message may quote a plugin, and
        ``[link=…]`` in its error must show as written."""
        super().notify(
            neutralise(message),
            title=one_line(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    async def on_unmount(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
        await self.browser.stop()
        if self._kernel is not None:
            await self._kernel.shutdown()

    async def submit(self, text: str) -> None:
        assert self.session_id is not None
        await self.kernel.submit(self.session_id, text)

    async def open_session(self, session_id: str | None) -> None:
        """Make ``session_id`` (None: a new session) current and show what it holds.

        A session that cannot be read or drawn must not lock the user out (the chat resumes
        the latest session at every start): a new session opens instead, and a notice names
        the one that failed, which stays stored (F3 lists it).
        """
        try:
            await self._show_session(session_id)
        except Exception as exc:
            if session_id is None:
                raise
            from .hints import chat_error

            await self._show_session(None)
            self.notify(
                f"session {session_id} could not be shown ({chat_error(exc)}); "
                f"this is a new session",
                severity="error",
                timeout=15,
            )

    async def _show_session(self, session_id: str | None) -> None:
        info = self.kernel.open_session(session_id)
        self.session_id = info.id
        await self.browser.switch(info.id)
        # Without streams: a resumed live card would only show its last frame.
        await self.chat.show_session(self.kernel.conversation(info.id))
        self.update_status()

    def _handle_exception(self, error: Exception) -> None:
        """An exception nothing caught: Textual ends the app with return code 1. The error
        is kept so that the CLI can say it in one line and exit non-zero."""
        if self.crash is None:  # the kernel's start fails in a worker: its own error
            self.crash = error.error if isinstance(error, WorkerFailed) else error
        super()._handle_exception(error)

    def _fatal_error(self) -> None:
        """Textual prints a traceback (with locals) as the app ends; only with
        ``DEETING_DEBUG=1``. Otherwise the CLI's one line says what happened."""
        if os.environ.get("DEETING_DEBUG") == "1":
            super()._fatal_error()
        else:
            self._close_messages_no_wait()

    @work(group="sessions", exclusive=True, exit_on_error=False)
    async def action_sessions(self) -> None:
        from .screens.sessions import SessionList

        chosen = await self.push_screen_wait(SessionList())
        if chosen is not None:
            await self.open_session(chosen)
        elif self.kernel.sessions.exists(self.session_id or ""):
            self.update_status()
        else:  # the current session was deleted
            await self.open_session(None)

    async def action_new_session(self) -> None:
        await self.open_session(None)

    @on(NewSessionWanted)
    def _new_session_wanted(self) -> None:
        self.run_worker(self.action_new_session(), group="session", exclusive=True)

    @on(SessionsWanted)
    def _sessions_wanted(self) -> None:
        self.action_sessions()

    @on(StatusChanged)
    def _status_changed(self) -> None:
        self.update_status()

    def action_plugins(self) -> None:
        from .screens.plugins import PluginManager

        self.push_screen(PluginManager(self.kernel))

    def action_help(self) -> None:
        self.chat.show_help()

    @on(CardPageWanted)
    def _card_page_wanted(self, message: CardPageWanted) -> None:
        self.open_page(message.card_id)

    @work(group="browser", exclusive=True, exit_on_error=False)
    async def open_page(self, card_id: str | None) -> None:
        """A card's page (None: the session's) in the system browser; where none can be
        opened, its URL to copy and how to forward the port over SSH."""
        from deeting_tui.web.opening import ssh_hint

        if self.session_id is None:
            return
        try:
            url = await self.browser.url(self.session_id, card_id)
        except Exception as exc:  # a taken port, a damaged session: said, never a crash
            from .hints import chat_error

            self.notify(f"the card page could not be served: {chat_error(exc)}", severity="error")
            return
        opened = await self.browser.opener(url)
        if not opened.ok:
            from urllib.parse import urlsplit

            from .screens.browser_url import BrowserUrl

            port = urlsplit(url).port or 0
            await self.push_screen(BrowserUrl(url, opened.reason, ssh_hint(port)))

    def _focused_card(self) -> str | None:
        """The card under focus, else the newest drawn in the transcript (None: no card)."""
        from .widgets.transcript import LiveCard, ToolCallBlock

        node = self.focused
        while node is not None:
            if isinstance(node, ToolCallBlock | LiveCard):
                return node.card_id
            node = node.parent  # type: ignore[assignment]
        cards = self.chat.query("ToolCallBlock, LiveCard")
        last = cards.last() if cards else None
        return last.card_id if isinstance(last, ToolCallBlock | LiveCard) else None

    def action_open_card_page(self) -> None:
        card = self._focused_card()
        if card is None:
            self.notify("no result card in this session yet", timeout=4)
            return
        self.open_page(card)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Screen switches only from the chat: not over a dialog, nor twice."""
        if action in ("plugins", "sessions", "new_session", "open_card_page"):
            # Not before the kernel has started: they show what it holds.
            return isinstance(self.screen, ChatScreen) and self.started.is_set()
        if action == "help":
            return isinstance(self.screen, ChatScreen)
        return True

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if isinstance(screen, ChatScreen) and self.started.is_set():
            yield SystemCommand(
                "New session", "Start an empty conversation", self.action_new_session
            )
            yield SystemCommand(
                "Sessions", "Open, rename or delete a conversation", self.action_sessions
            )
            yield SystemCommand(
                "Plugins", "Install, enable, disable, grant, uninstall", self.action_plugins
            )
            yield SystemCommand("Help", "Commands and keys of the chat", self.action_help)
            yield SystemCommand(
                "Open card in browser",
                "The focused result card (else the newest) as a web page (o on a card)",
                self.action_open_card_page,
            )
            yield SystemCommand(
                "Open session in browser",
                "Every card of this session, live, as a web page (deeting view)",
                partial(self.open_page, None),
            )
        yield from screen_commands(screen)

    def update_status(self) -> None:
        """Who answers and how the plugins are, in the header; the session under the input.

        The header has room for ~58 characters at 80 columns, so the session id (needed
        for ``--session``) sits in the input's frame instead of crowding plugin health out.
        """
        if not self.started.is_set():
            self.sub_title = STARTING
            return
        assistant = self.kernel.assistant
        who = getattr(assistant, "name", "offline")
        model = getattr(assistant, "model", None)
        line = one_line(
            f"{who}{' ' + model if model else ''} · {self.kernel.plugins.health_line()}"
        )
        if "awaiting consent" in line:  # say how to give it, as far as the header has room
            room = self.size.width - HEADER_SIDES - len(f"{self.title} — ")
            hint = next((h for h in CONSENT_HINTS if len(line + h) <= room), "")
            if not hint:  # what to do matters more than how many wait for their first use
                line = READY_PART.sub("", line)
                hint = next((h for h in CONSENT_HINTS if len(line + h) <= room), "")
            line += hint
        self.sub_title = line
        if self.session_id is not None and hasattr(self, "chat"):
            self.chat.show_session_id(self.session_id)


def screen_commands(screen: Screen[Any]) -> Iterable[SystemCommand]:
    """The palette lists what the screen's footer offers, so every action is in both.

    Actions the screen says do not apply now (``check_action``) are left out.
    """
    seen: set[str] = set()
    for binding in screen.BINDINGS:
        if not isinstance(binding, Binding) or not binding.show or binding.action in seen:
            continue
        if binding.action.startswith("app.") or screen.check_action(binding.action, ()) is False:
            continue
        seen.add(binding.action)
        help_text = (
            binding.tooltip or f"{binding.description} ({binding.key_display or binding.key})"
        )
        yield SystemCommand(
            binding.description, help_text, partial(screen.run_action, binding.action)
        )


def _import_kernel(provider: str | None, model: str | None) -> None:
    """What composing the kernel imports, done in a thread so that the chat keeps taking
    keys meanwhile (the kernel's modules, the model provider's SDK); the kernel itself is
    then built in the event loop (its session store is tied to that thread)."""
    import deeting_tui.kernel.kernel  # noqa: F401
    from deeting_tui.llm.select import choose, import_provider
    from deeting_tui.paths import load_config, resolve_paths

    config = load_config(resolve_paths())
    import_provider(choose(provider, model, config.provider, config.model))


def _terminal_theme() -> str | None:
    from deeting_tui.web.terminal_theme import terminal_theme

    return terminal_theme()
