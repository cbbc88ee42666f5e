"""The chat's first screen: a new session says what to try (an example per enabled plugin,
from its trigger examples), the keys that matter, and who answers; whole at 80x24. It goes
as the conversation starts, and a resumed session with history never shows it. Plugin
strings on it are neutralised and never read as markup.

Through Pilot on the real kernel with the official plugins installed as ``./dev.sh run``
installs them (calc, clock, notes enabled; sysinfo, weather waiting for consent).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import FIXTURES, OFFICIAL
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from ui_support import app_with_plugins, assert_screen_safe, screen_text, settled, until

from deeting_tui.kernel.assistant import ToolInfo
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.first_screen import (
    LINE_CHARS,
    PLUGIN_ROWS,
    Available,
    first_screen,
    provider_lines,
    what_to_try,
)
from deeting_tui.ui.screens.chat import ChatScreen
from deeting_tui.ui.widgets.transcript import Welcome

SMALL = (80, 24)
OFFICIAL_PLUGINS = [OFFICIAL / name for name in ("calc", "clock", "notes", "sysinfo", "weather")]


async def _ready(pilot: Pilot[Any], app: DeetingApp) -> None:
    await until(pilot, lambda: isinstance(getattr(app, "chat", None), ChatScreen), "the chat")
    await until(pilot, lambda: bool(app.chat.query(Welcome)) or bool(app.session_id), "a session")
    await pilot.pause()


async def _send(pilot: Pilot[Any], app: DeetingApp, text: str) -> None:
    await pilot.press(*[c if c != " " else "space" for c in text], "enter")
    await settled(app.chat, "turn")
    await pilot.pause()


def _welcome_fits(app: DeetingApp) -> None:
    """The welcome is whole on the screen: no row of it scrolled away, none wider than 80."""
    transcript = app.chat.query_one("#transcript", VerticalScroll)
    assert transcript.max_scroll_y == 0, "the welcome is taller than the transcript"
    (welcome,) = app.chat.query(Welcome)
    assert welcome.region.bottom <= transcript.region.bottom
    lines = str(welcome.content).splitlines()
    assert welcome.content_region.height == len(lines), "a line of the welcome wrapped"
    assert max(len(line) for line in lines) <= welcome.content_region.width == LINE_CHARS


def _examples(folder: Path) -> list[str]:
    trigger = orjson.loads((folder / "kimai.json").read_bytes()).get("trigger") or {}
    return list(trigger.get("examples", []))


async def test_a_fresh_session_says_what_to_try_for_each_installed_plugin(home: Path) -> None:
    app = await app_with_plugins(*OFFICIAL_PLUGINS)
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        shown = screen_text(app)
        # One example per enabled plugin, taken from its manifest, that works as typed.
        for name in ("calc", "clock", "notes"):
            examples = _examples(OFFICIAL / name)
            assert any(
                re.search(rf"^\s*{re.escape(e)} — goes straight to {name}'?s? ", shown, re.M)
                for e in examples
            ), (name, shown)
        assert "2 plugins awaiting consent: move to one, e allows what it asks" in shown
        assert "Keys: F1 help · F2 plugins · F3 sessions · Ctrl+P palette · Ctrl+Q quit" in shown
        assert "Answering: the offline assistant — no model" in shown
        assert "ANTHROPIC_API_KEY or OPENAI_API_KEY" in shown
        _welcome_fits(app)
        # Each example works as typed; the welcome goes with the first message.
        await _send(pilot, app, "calc 2+3")
        assert not app.chat.query(Welcome)
        assert "Welcome to Deeting" not in screen_text(app)


async def test_a_resumed_session_with_history_shows_no_welcome(home: Path) -> None:
    app = await app_with_plugins(OFFICIAL / "calc")
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        await _send(pilot, app, "calc 2+3")
        session = app.session_id
    resumed = await app_with_plugins()  # the same home, a new chat: the latest session
    async with resumed.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: resumed.session_id == session, "the resumed session")
        await until(pilot, lambda: "2+3" in screen_text(resumed), "the stored conversation")
        assert not resumed.chat.query(Welcome)
        assert "Welcome to Deeting" not in screen_text(resumed)


async def test_no_plugin_installed_says_how_to_get_one(home: Path) -> None:
    app = await app_with_plugins()
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        shown = screen_text(app)
        assert "F2, then i — install a plugin: a registry name, a folder or a .zip" in shown
        assert "deeting registry sync — then: deeting plugin install NAME" in shown
        _welcome_fits(app)


def _hostile_echo(tmp_path: Path, examples: list[str], description: str) -> Path:
    plugin = tmp_path / "echo-fixture"
    shutil.copytree(FIXTURES / "good_plugin", plugin, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = orjson.loads((plugin / "kimai.json").read_bytes())
    manifest["trigger"]["examples"] = examples
    manifest["description"] = description
    (plugin / "kimai.json").write_bytes(orjson.dumps(manifest))
    return plugin


@pytest.mark.parametrize(
    "example",
    ["echo [bold]boom[/bold]", "echo [link=https://ev.il/]x[/link]", "echo [/]"],
    ids=["bold", "link", "closing-tag"],
)
async def test_a_plugin_example_with_markup_shows_literally(
    home: Path, tmp_path: Path, example: str
) -> None:
    app = await app_with_plugins(_hostile_echo(tmp_path, [example], "[red]x[/red]"))
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        shown = assert_screen_safe(app, "the first screen")
        assert f"{example} — goes straight to echo-fixture's" in shown, shown
        _welcome_fits(app)
        (welcome,) = app.chat.query(Welcome)
        text = welcome.render()
        assert not any(span.style and "link" in str(span.style) for span in text.spans)


async def test_an_example_with_controls_is_not_offered_and_nothing_reaches_the_terminal(
    home: Path, tmp_path: Path
) -> None:
    """An example the neutraliser would change would not work as typed: a call to fill in
    is offered instead; a description with escapes is drawn neutralised."""
    # The manifest's schema refuses C0 controls (ESC among them): C1 and bidi are left.
    hostile = ["echo \x9b2Jx", "echo \u202egnp.exe"]
    plugin = _hostile_echo(tmp_path, hostile, "\u202ered\x9b31m")
    app = await app_with_plugins(plugin)
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        shown = assert_screen_safe(app, "the first screen")
        assert re.search(r"^\s*/(echo|add) \w+=… — calls echo-fixture's", shown, re.M), shown
        # What the lead wires in: plugins not installed, with their descriptions.
        offer = Available("wea[bold]ther", "\x1b]8;;https://evil.example\x07[link=x]y[/link]")
        await app.chat.query_one("#transcript").mount(Welcome(app.chat.first_screen([offer])))
        await pilot.pause()
        shown = assert_screen_safe(app, "the first screen with an available plugin")
        assert "wea[bold]ther — not installed, F2 adds it: [link=x]y[/link]" in shown, shown


def _tool(plugin: str, name: str, examples: tuple[str, ...] = ()) -> ToolInfo:
    return ToolInfo(name, plugin, "", {"properties": {}}, None, examples)


async def test_many_plugins_fit_80x24_with_the_rest_counted(home: Path) -> None:
    tools = [_tool(f"plugin-{i}", f"tool{i}", (f"do thing number {i}",)) for i in range(11)]
    screen = first_screen(tools, {}, installed=13, awaiting_consent=2, provider="offline")
    assert len(screen.plugins) == PLUGIN_ROWS - 1 and screen.more == 11 - (PLUGIN_ROWS - 1)
    app = await app_with_plugins()
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        transcript = app.chat.query_one("#transcript", VerticalScroll)
        await transcript.query(Welcome).remove()
        await transcript.mount(Welcome(screen))
        await pilot.pause()
        shown = screen_text(app)
        assert "do thing number 0 — goes straight to plugin-0's tool0 tool" in shown
        assert f"…and {screen.more} more — help lists every tool, F2 every plugin" in shown
        assert "set ANTHROPIC_API_KEY or OPENAI_API_KEY" in shown  # the last line, whole
        _welcome_fits(app)


def test_long_plugin_strings_are_kept_to_one_row() -> None:
    long_name = "p" * 60
    tools = [
        _tool(long_name, "t" * 30, ("x" * 41, "short one")),
        _tool("other", "run", ("y" * 41,)),
    ]
    things = what_to_try(tools, {"run": ["argument"]}, [Available("z", "d" * 200)])
    assert things[0].thing == "short one"  # a too-long example is passed over
    assert things[1].thing == "/run argument=…"  # no example fits: a call to fill in
    for thing in things:
        assert len(f"  {thing.thing} — {thing.what}") <= LINE_CHARS
    assert things[2].what.endswith("…")


def test_a_model_provider_is_named_with_its_model() -> None:
    screen = first_screen([], {}, installed=0, awaiting_consent=0, provider="anthropic",
                          model="claude-x")  # fmt: skip
    (line,) = provider_lines(screen)
    assert line.startswith("Answering: anthropic (claude-x)") and len(line) <= LINE_CHARS


async def test_available_plugins_are_offered_with_their_description_when_none_is_installed(
    home: Path,
) -> None:
    """The seam the bundled official plugins plug into: not installed, listed with what they
    do and how to add them, in place of the way to find a plugin."""
    app = await app_with_plugins()
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        offers = [Available("weather", "Current weather and a forecast for a place")]
        transcript = app.chat.query_one("#transcript", VerticalScroll)
        await transcript.query(Welcome).remove()
        await transcript.mount(Welcome(app.chat.first_screen(offers)))
        await pilot.pause()
        shown = screen_text(app)
        line = "weather — not installed, F2 adds it: Current weather and a forecast f…"
        assert line in shown, shown  # the description cut to the line, never the key
        assert "F2, then i" not in shown
        _welcome_fits(app)


@pytest.fixture(scope="session")
def bundle_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bundle-cache")


async def test_a_fresh_home_offers_the_bundled_plugins_it_did_not_install(
    home: Path, tmp_path: Path, bundle_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pip-installed deeting on a fresh home: the first run installed calc, clock and notes
    from the bundle, so the welcome shows what to type for them, and, once the bundle is read
    (after the first paint), sysinfo and weather as one key away."""
    from bundle_support import make_bundle

    from deeting_tui.compose import make_kernel

    monkeypatch.setenv("DEETING_BUNDLE", str(make_bundle(tmp_path / "bundled", bundle_cache)))
    app = DeetingApp(make_kernel("offline"))  # as `deeting` composes it: the first run included
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        await until(pilot, lambda: "weather — not installed" in screen_text(app), "the offers")
        shown = screen_text(app)
        assert "calc 2+3" in shown and "sysinfo — not installed, F2 adds it" in shown, shown
        assert "F2, then i" not in shown
        _welcome_fits(app)
