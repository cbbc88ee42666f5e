"""The Textual app: a kernel, the chat screen, and nothing the kernel should decide.

The kernel runs in the app's own event loop; its listener posts each event to the chat screen as a
message, so widgets change only in message handlers. The app resumes the session that changed last,
as README.md's "The chat" says (``new=True``: a new one). A session that cannot be shown is no dead
end: a new session opens instead, with a notice naming the one that failed.

Plugin text reaches the terminal only neutralised (``deeting_tui.terminal_text``): kernel
events as they become ``KernelEvent`` messages, toasts in :meth:`DeetingApp.notify`, manifest
strings and logs in the plugin manager, and under all of them the ``TerminalGuard`` line
filter over everything any widget draws.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import partial
from typing import Any

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.filter import LineFilter
from textual.notifications import SeverityLevel
from textual.screen import Screen

from deeting_tui.kernel.events import Event
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.terminal_text import neutralise, one_line

from .browser import CardBrowser
from .hints import chat_error
from .messages import (
    CardPageWanted,
    KernelEvent,
    NewSessionWanted,
    SessionsWanted,
    StatusChanged,
)
from .screens.chat import ChatScreen
from .terminal_guard import TerminalGuard

#: How often the header re-reads plugin health (a restart that succeeds sends no event).
STATUS_REFRESH_S = 2.0
#: The header's title has the width less its icon (8 columns) and clock space (10); longer,
#: Textual cuts it with an ellipsis.
HEADER_SIDES = 18
#: After "N awaiting consent", the longest of these that fits.
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
        self, kernel: Kernel | None = None, *, session_id: str | None = None, new: bool = False
    ) -> None:
        """Without a kernel, one is composed as the CLI does (config, provider from the
        environment): that is what ``textual run --dev deeting_tui.ui.app:DeetingApp`` uses.
        Without ``session_id``, the latest session is resumed, or with ``new`` a new one."""
        super().__init__()
        from deeting_tui.compose import make_kernel, plug_ports

        # The plugin manager renders the kernel's plugin service; its registry and sandbox
        # ports are plugged here for a kernel handed in (as the tests do).
        self.kernel = plug_ports(kernel) if kernel is not None else make_kernel()
        self.session_id = session_id
        self.new = new
        self.problems: list[str] = []
        #: The exception that ended the app, if one did (the CLI says it in one line).
        self.crash: BaseException | None = None
        self._remove_listener: Any = None
        self._guard = TerminalGuard()
        self.chat: ChatScreen
        #: The card pages (``deeting view``'s server, for this chat): started on first use.
        self.browser = CardBrowser(self.kernel.sessions, theme=_terminal_theme())

    async def on_mount(self) -> None:
        # Pages start with the terminal's theme (COLORFGBG, else the browser's own choice);
        # a theme the user picks in the chat afterwards is followed by open pages.
        self.theme_changed_signal.subscribe(
            self, lambda theme: self.browser.set_theme("dark" if theme.dark else "light")
        )
        self.problems = await self.kernel.start()
        if self.session_id is None and not self.new:
            latest = self.kernel.sessions.latest()
            self.session_id = latest.id if latest else None
        chat = ChatScreen()

        def forward(event: Event) -> None:
            chat.post_message(KernelEvent(event))
            self.browser.feed(event)

        self._remove_listener = self.kernel.add_listener(forward)
        await self.push_screen(chat)
        self.chat = chat
        await self.open_session(self.session_id)
        for problem in self.problems:
            self.notify(problem, severity="warning", timeout=10)
        self.set_interval(STATUS_REFRESH_S, self.update_status)  # restarts end silently

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
        await self.kernel.shutdown()

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
        if self.crash is None:
            self.crash = error
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
        if action in ("help", "plugins", "sessions", "new_session"):
            return isinstance(self.screen, ChatScreen)
        return True

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if isinstance(screen, ChatScreen):
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
        assistant = self.kernel.assistant
        who = getattr(assistant, "name", "offline")
        model = getattr(assistant, "model", None)
        line = one_line(
            f"{who}{' ' + model if model else ''} · {self.kernel.plugins.health_line()}"
        )
        if "awaiting consent" in line:  # say how to give it, as far as the header has room
            room = self.size.width - HEADER_SIDES - len(f"{self.title} — ")
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


def _terminal_theme() -> str | None:
    from deeting_tui.web.terminal_theme import terminal_theme

    return terminal_theme()
