"""The chat's window on the browser: one card server, started the first time it is needed.

A key on a result card (or the palette) opens that card's page (``web.CardServer``). The
server is started then, not before (most chats never open a page), once per app; it shows
the open session: its stored events are loaded when it starts and again when the chat
switches session, and every kernel event of that session is fed to it as the kernel emits
it, so a live stream keeps moving in the browser. The app stops it when it exits, connections
and all.

The events fed here are the kernel's own, not the chat's neutralised copies: the page escapes
and sanitises in the browser, and a card's id must be the same the server derives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deeting_tui.kernel.events import Event
    from deeting_tui.kernel.sessions.store import SessionStore
    from deeting_tui.web.opening import Opened
    from deeting_tui.web.server import CardServer

#: What opens a URL in the system browser (``web.opening.open_url_async``; tests swap it).
Opener = Callable[[str], Awaitable["Opened"]]


async def _system_browser(url: str) -> Opened:
    from deeting_tui.web.opening import open_url_async

    return await open_url_async(url)


class CardBrowser:
    """The app's card server and what it shows (see the module's docstring)."""

    def __init__(self, sessions: SessionStore | None, theme: str | None = None) -> None:
        """``sessions`` is the kernel's store; None until the kernel is composed (the app
        sets it then, before any page can be wanted)."""
        self.sessions = sessions
        self.theme = theme
        self.opener: Opener = _system_browser
        self.server: CardServer | None = None
        self._session_id: str | None = None
        self._lock = asyncio.Lock()
        #: Events fed while the session's stored events are read: published after them.
        self._held: list[Event] | None = None

    @property
    def running(self) -> bool:
        return self.server is not None

    async def url(self, session_id: str, card_id: str | None = None) -> str:
        """The page of ``session_id`` (one card's, with ``card_id``), the server started and
        showing that session first if it was not."""
        async with self._lock:
            if self.server is None:
                from deeting_tui.web.server import CardServer

                server = CardServer(theme=self.theme)
                await server.start()
                self.server = server
                await self._load(session_id)
            elif session_id != self._session_id:
                await self._load(session_id)
            return self.server.url if card_id is None else self.server.card_url(card_id)

    def set_theme(self, theme: str | None) -> None:
        """The chat's theme changed (its palette): open pages follow it."""
        self.theme = theme
        if self.server is not None:
            self.server.set_theme(theme)

    def feed(self, event: Event) -> None:
        """A kernel event as it happens: published when it belongs to the session shown."""
        if self.server is None or getattr(event, "session_id", None) != self._session_id:
            return
        if self._held is not None:
            self._held.append(event)
        else:
            self.server.publish(event)

    async def switch(self, session_id: str) -> None:
        """The chat opened another session: the page shows it too (if a page is served)."""
        if self.server is None:
            self._session_id = session_id
            return
        async with self._lock:
            await self._load(session_id)

    async def stop(self) -> None:
        """Close the server and every connection to it (idempotent)."""
        server, self.server = self.server, None
        if server is not None:
            await server.stop()

    async def _load(self, session_id: str) -> None:
        from deeting_tui.web.loading import stored_events

        assert self.server is not None
        self._session_id = session_id
        self._held = []
        try:
            assert self.sessions is not None, "no page before the kernel is composed"
            info = self.sessions.get(session_id)
            events, _last = await asyncio.to_thread(stored_events, self.sessions, session_id)
            title = info.title or self.sessions.first_message(session_id)
            if self.server is not None:  # not stopped meanwhile (the app quit)
                self.server.load(session_id, title, events)
        finally:
            held, self._held = self._held or [], None
        for event in held:
            if self.server is not None:
                self.server.publish(event)
