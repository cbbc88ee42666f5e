"""The Textual app: a kernel, the chat screen, and nothing the kernel should decide.

The kernel runs in the app's own event loop; its listener posts each event to the chat
screen as a message, so widgets change only in message handlers. The app resumes the session
that changed last, as DESIGN §3 asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.screen import Screen

from deeting_tui.kernel.kernel import Kernel

from .messages import KernelEvent
from .screens.chat import ChatScreen


class DeetingApp(App[None]):
    TITLE = "Deeting"

    def __init__(self, kernel: Kernel | None = None, *, session_id: str | None = None) -> None:
        """Without a kernel, one is composed as the CLI does (config, provider from the
        environment): that is what ``textual run --dev deeting_tui.ui.app:DeetingApp`` uses."""
        super().__init__()
        if kernel is None:
            from deeting_tui.cli import make_kernel

            kernel = make_kernel()
        self.kernel = kernel
        self.session_id = session_id
        self.problems: list[str] = []
        self._remove_listener: Any = None
        self.chat: ChatScreen

    async def on_mount(self) -> None:
        self.problems = await self.kernel.start()
        if self.session_id is None:
            latest = self.kernel.sessions.latest()
            self.session_id = latest.id if latest else None
        self.session_id = self.kernel.open_session(self.session_id).id
        chat = ChatScreen()

        def forward(event: dict[str, Any]) -> None:
            chat.post_message(KernelEvent(event))

        self._remove_listener = self.kernel.add_listener(forward)
        await self.push_screen(chat)
        self.chat = chat
        await self.open_session(self.session_id)
        for problem in self.problems:
            self.notify(problem, severity="warning", timeout=10)

    async def on_unmount(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
        await self.kernel.shutdown()

    async def submit(self, text: str) -> None:
        assert self.session_id is not None
        await self.kernel.submit(self.session_id, text)

    async def open_session(self, session_id: str) -> None:
        """Make ``session_id`` current and show what it holds."""
        self.session_id = self.kernel.open_session(session_id).id
        stored = [
            {"type": e.kind, "session_id": e.session_id, **e.payload}
            for e in self.kernel.sessions.events(self.session_id)
        ]
        await self.chat.show_session(stored)
        self._update_subtitle()

    @work(group="sessions", exclusive=True, exit_on_error=False)
    async def action_sessions(self) -> None:
        from .screens.sessions import SessionList

        chosen = await self.push_screen_wait(SessionList())
        if chosen is not None:
            await self.open_session(chosen)
        elif self.kernel.sessions.exists(self.session_id or ""):
            self._update_subtitle()
        else:  # the current session was deleted
            await self.open_session(self.kernel.open_session().id)

    async def action_new_session(self) -> None:
        await self.open_session(self.kernel.open_session().id)

    def action_plugins(self) -> None:
        from .screens.plugins import PluginManager

        self.push_screen(PluginManager(self.kernel))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("New session", "Start an empty conversation", self.action_new_session)
        yield SystemCommand("Sessions", "Open or delete a conversation", self.action_sessions)
        yield SystemCommand("Plugins", "Enable, disable, grant permissions", self.action_plugins)

    def _update_subtitle(self) -> None:
        assistant = self.kernel.assistant
        who = getattr(assistant, "name", "offline")
        model = getattr(assistant, "model", None)
        running = len(self.kernel.loader.runtimes)
        self.sub_title = (
            f"session {self.session_id} · {who}{' ' + model if model else ''} · "
            f"{running} plugin{'s' if running != 1 else ''} running"
        )
