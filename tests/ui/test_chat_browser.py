"""The chat's card pages: o on a focused result card opens that card's page (the server
started then, fed live, switched with the session, stopped with the app); where no browser
can be opened, the URL and the SSH forward are shown instead, and no browser is tried."""

from __future__ import annotations

import asyncio
import webbrowser
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from support import FIXTURES
from textual.pilot import Pilot
from textual.widgets import Static
from textual.widgets._collapsible import CollapsibleTitle
from ui_support import app_with_plugins, settled, until

from deeting_tui.kernel.events import StreamFrame
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.screens.browser_url import BrowserUrl
from deeting_tui.ui.widgets.transcript import LiveCard, ToolCallBlock
from deeting_tui.web.cards import card_id
from deeting_tui.web.opening import Opened

SIZE = (100, 32)


@pytest.fixture
async def app(home: Path) -> DeetingApp:
    return await app_with_plugins(FIXTURES / "good_plugin")


def _record_opens(app: DeetingApp) -> list[str]:
    opened: list[str] = []

    async def opener(url: str) -> Opened:
        opened.append(url)
        return Opened(True)

    app.browser.opener = opener
    return opened


async def _send(pilot: Pilot[Any], text: str) -> None:
    app = pilot.app
    assert isinstance(app, DeetingApp)
    blocks = len(app.chat.query(ToolCallBlock))
    app.chat.query_one("#prompt").focus()
    await pilot.pause()
    await pilot.press(*[c if c != " " else "space" for c in text], "enter")
    await until(
        pilot,
        lambda: (
            len(app.chat.query(ToolCallBlock)) > blocks
            and all(b.done for b in app.chat.query(ToolCallBlock))
        ),
        f"the result of {text}",
    )


async def _press_o_on(pilot: Pilot[Any], block: ToolCallBlock) -> None:
    block.query_one(CollapsibleTitle).focus()
    await pilot.pause()
    await pilot.press("o")
    await settled(pilot.app, "browser")


async def _events(url: str) -> AsyncIterator[dict[str, Any]]:
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", url + "events") as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                yield orjson.loads(line.removeprefix("data:"))


async def test_o_on_a_result_card_opens_its_page_fed_live(app: DeetingApp) -> None:
    opened = _record_opens(app)
    async with app.run_test(size=SIZE) as pilot:
        await _send(pilot, "/add a=1 b=2")
        assert app.browser.server is None  # nothing served until a page is wanted
        (block,) = app.chat.query(ToolCallBlock)
        await _press_o_on(pilot, block)
        server = app.browser.server
        assert server is not None
        assert opened == [server.card_url(block.call_id)]
        events = _events(server.url)
        reset = await anext(events)
        assert reset["session"]["id"] == app.session_id
        assert [c["id"] for c in reset["cards"]] == [block.call_id]
        # A result that comes now reaches the page as it happens.
        await _send(pilot, "/add a=20 b=22")
        async with asyncio.timeout(10):
            async for op in events:
                result = (op.get("card") or {}).get("result") or {}
                if result.get("structuredContent") == {"sum": 42}:
                    break
        await events.aclose()
        # The same server serves the next card.
        newest = app.chat.query(ToolCallBlock).last()
        await _press_o_on(pilot, newest)
        assert app.browser.server is server
        assert opened[-1] == server.card_url(newest.call_id)


async def test_no_display_shows_the_url_and_the_ssh_hint_and_tries_no_browser(
    app: DeetingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_TTY", "BROWSER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    tried: list[str] = []
    monkeypatch.setattr(webbrowser, "get", lambda *a: tried.append("get"))
    async with app.run_test(size=SIZE) as pilot:
        await _send(pilot, "/add a=1 b=2")
        block = app.chat.query(ToolCallBlock).last()
        await _press_o_on(pilot, block)
        await until(pilot, lambda: isinstance(app.screen, BrowserUrl), "the URL dialog")
        server = app.browser.server
        assert server is not None
        dialog = app.screen
        url = str(dialog.query_one("#url", Static).render())
        assert url == server.card_url(block.call_id)
        port = server.port
        assert f"ssh -L {port}:127.0.0.1:{port} HOST" in str(dialog.query_one("#ssh").render())
        assert "no graphical display" in str(dialog.query_one("#reason").render())
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, BrowserUrl), "the dialog closed")
    assert tried == []


async def test_the_server_stops_when_the_app_exits(app: DeetingApp) -> None:
    _record_opens(app)
    async with app.run_test(size=SIZE) as pilot:
        await _send(pilot, "/add a=1 b=2")
        await _press_o_on(pilot, app.chat.query(ToolCallBlock).last())
        server = app.browser.server
        assert server is not None
        url = server.url
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(url)).status_code == 200
        events = _events(url)
        await anext(events)  # a page is connected
    assert app.browser.server is None
    with pytest.raises(httpx.TransportError):
        async with httpx.AsyncClient(timeout=2) as client:
            await client.get(url)
    with pytest.raises((httpx.TransportError, StopAsyncIteration)):
        async with asyncio.timeout(5):
            await anext(events)  # its stream was closed with the server


async def test_the_palette_opens_the_session_and_the_page_follows_a_session_switch(
    app: DeetingApp,
) -> None:
    opened = _record_opens(app)
    async with app.run_test(size=SIZE) as pilot:
        await _send(pilot, "/add a=1 b=2")
        commands = {c.title: c.callback for c in app.get_system_commands(app.screen)}
        commands["Open session in browser"]()
        await settled(app, "browser")
        server = app.browser.server
        assert server is not None and opened == [server.url]
        commands["Open card in browser"]()
        await settled(app, "browser")
        assert opened[-1] == server.card_url(app.chat.query(ToolCallBlock).last().call_id)
        events = _events(server.url)
        first = await anext(events)
        await app.open_session(None)
        async with asyncio.timeout(10):
            switched = await anext(events)
        assert switched["op"] == "reset" and switched["cards"] == []
        assert switched["session"]["id"] == app.session_id != first["session"]["id"]
        await events.aclose()


async def test_a_session_without_cards_says_so_instead_of_opening(app: DeetingApp) -> None:
    opened = _record_opens(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        commands = {c.title: c.callback for c in app.get_system_commands(app.screen)}
        commands["Open card in browser"]()
        await pilot.pause()
        assert opened == [] and app.browser.server is None


def test_a_live_cards_id_is_the_pages() -> None:
    frame = StreamFrame(session_id="s", plugin="clock", topic="tick", payload={})
    assert LiveCard("clock", "tick").card_id == card_id(frame)


async def test_o_on_a_live_card_opens_the_streams_page(app: DeetingApp) -> None:
    from deeting_tui.ui.messages import KernelEvent

    opened = _record_opens(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        frame = StreamFrame(
            session_id=app.session_id or "",
            plugin="clock",
            topic="tick",
            payload={"text": "12:00"},
            renderer="text",
        )
        app.chat.post_message(KernelEvent(frame))
        await until(pilot, lambda: bool(app.chat.query(LiveCard)), "the live card")
        app.chat.query_one(LiveCard).focus()
        await pilot.pause()
        shown = app.screen.active_bindings["o"]  # in the footer while the card has focus
        assert shown.binding.show and shown.binding.description == "Browser"
        await pilot.press("o")
        await settled(app, "browser")
        assert app.browser.server is not None
        assert opened == [app.browser.server.card_url("stream:clock:tick")]


async def test_a_theme_picked_in_the_chat_is_followed_by_open_pages(app: DeetingApp) -> None:
    _record_opens(app)
    async with app.run_test(size=SIZE) as pilot:
        await _send(pilot, "/add a=1 b=2")
        (block,) = app.chat.query(ToolCallBlock)
        await _press_o_on(pilot, block)
        server = app.browser.server
        assert server is not None
        events = _events(server.url)
        await anext(events)  # the reset
        app.theme = "textual-light"
        await pilot.pause()
        assert await anext(events) == {"op": "theme", "theme": "light"}
        app.theme = "nord"
        await pilot.pause()
        assert await anext(events) == {"op": "theme", "theme": "dark"}
        await events.aclose()
