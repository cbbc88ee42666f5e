"""The Textual app: a kernel, the chat screen, and nothing the kernel should decide.

The kernel runs in the app's own event loop; its listener posts each event to the chat
screen as a message, so widgets change only in message handlers. The app resumes the session
that changed last, as DESIGN §3 asks.
"""

from __future__ import annotations

from typing import Any

from textual.app import App

from deeting_tui.kernel.kernel import Kernel

from .messages import KernelEvent
from .screens.chat import ChatScreen


class DeetingApp(App[None]):
    TITLE = "Deeting"

    def __init__(self, kernel: Kernel, *, session_id: str | None = None) -> None:
        super().__init__()
        self.kernel = kernel
        self.session_id = session_id
        self.problems: list[str] = []
        self._remove_listener: Any = None

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
        self._update_subtitle()
        for problem in self.problems:
            self.notify(problem, severity="warning", timeout=10)

    async def on_unmount(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
        await self.kernel.shutdown()

    async def submit(self, text: str) -> None:
        assert self.session_id is not None
        await self.kernel.submit(self.session_id, text)

    def new_session(self) -> None:
        self.session_id = self.kernel.open_session().id
        self._update_subtitle()

    def _update_subtitle(self) -> None:
        assistant = self.kernel.assistant
        who = getattr(assistant, "name", "offline")
        model = getattr(assistant, "model", None)
        running = len(self.kernel.loader.runtimes)
        self.sub_title = (
            f"session {self.session_id} · {who}{' ' + model if model else ''} · "
            f"{running} plugin{'s' if running != 1 else ''} running"
        )
