"""The plugin manager and the permission dialog, through Pilot on the real kernel: states,
enable/disable with consent, the details pane, and which actions the footer offers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from support import FAST_POLICY, FIXTURES, OFFICIAL
from textual.pilot import Pilot
from textual.widgets import DataTable, Markdown, Static
from ui_support import until

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths
from deeting_tui.plugin.scopes import explain, parse_scope
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.screens.permission import PermissionDialog
from deeting_tui.ui.screens.plugin_details import PluginDetails, tail
from deeting_tui.ui.screens.plugins import PluginManager

SIZE = (110, 34)


@pytest.fixture
async def app(home: Path) -> AsyncIterator[DeetingApp]:
    kernel = Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)
    await kernel.start(ticker=False)
    await kernel.loader.install(FIXTURES / "good_plugin")
    report = await kernel.loader.install(OFFICIAL / "weather")  # asks for network: not enabled
    assert not report.enabled
    await kernel.loader.shutdown()
    yield DeetingApp(kernel)


async def _open_manager(pilot: Pilot[Any], app: DeetingApp) -> PluginManager:
    await pilot.click("#prompt")
    for char in "/plugins":
        await pilot.press(char)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, PluginManager), "the plugin manager")
    assert isinstance(app.screen, PluginManager)
    return app.screen


def _states(manager: PluginManager) -> dict[str, str]:
    table = manager.query_one("#plugins", DataTable)
    rows = (table.get_row_at(i) for i in range(table.row_count))
    return {str(row[0]): str(row[2]) for row in rows}


def _plain(widget: Static) -> str:
    console = Console(file=StringIO(), width=200, color_system=None)
    console.print(widget.content)
    out = console.file
    assert isinstance(out, StringIO)
    return out.getvalue()


async def test_enabling_asks_for_consent_and_deny_changes_nothing(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        manager = await _open_manager(pilot, app)
        assert _states(manager) == {"echo-fixture": "ready", "weather": "needs consent"}
        await pilot.press("down")  # weather
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, PermissionDialog)
        assert app.screen.plugin == "weather"
        await pilot.press("d")
        await manager.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen is manager
        assert _states(manager)["weather"] == "needs consent"
        assert app.kernel.grants.granted("weather") == []


async def test_allow_grants_exactly_what_was_asked_and_enables(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        manager = await _open_manager(pilot, app)
        await pilot.press("down", "e")
        await pilot.pause()
        await pilot.press("a")
        await manager.workers.wait_for_complete()
        await pilot.pause()
        assert _states(manager)["weather"] == "enabled"
        assert [str(s) for s in app.kernel.grants.granted("weather")] == [
            "network:api.open-meteo.com",
            "network:geocoding-api.open-meteo.com",
        ]
        await pilot.press("d")  # disable it again from the list
        await manager.workers.wait_for_complete()
        await pilot.pause()
        assert _states(manager)["weather"] == "disabled"
        await pilot.press("escape")
        assert not isinstance(app.screen, PluginManager)


async def test_details_follow_the_cursor_with_readme_tools_and_log(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        manager = await _open_manager(pilot, app)
        details = manager.query_one("#details", PluginDetails)
        readme = details.query_one("#readme", Markdown)
        summary = details.query_one("#summary", Static)
        await until(pilot, lambda: "known-good plugin" in readme.source, "echo's README")
        text = _plain(summary)
        assert "echo-fixture 1.0.0 — Echoes text back" in text
        assert "/echo — Repeat the given text back, unchanged." in text
        assert "/add — Add two numbers" in text
        assert "^echo (?P<text>.+)$ → /echo (priority 50)" in text
        assert re.search(r"installed +a local dev install from a folder", text), text
        assert "sandbox" in text and "capabilities" in text and "processes" in text
        files = _plain(details.query_one("#files", Static))
        assert str(FIXTURES / "good_plugin") in files
        assert str(app.kernel.paths.plugin_log("echo-fixture")) in files

        log = app.kernel.paths.plugin_log("echo-fixture")
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as out:
            out.writelines(f"line {i}\n" for i in range(30))
        await pilot.press("r")  # or wait a poll
        shown = _plain(details.query_one("#log", Static)).splitlines()
        assert shown[-20:] == [f"line {i}" for i in range(10, 30)] and "line 9" not in shown

        await pilot.press("down")  # weather: the details change with the cursor
        await until(pilot, lambda: "Open-Meteo" in readme.source, "weather's README")
        text = _plain(summary)
        assert "weather 1.0.0" in text and re.search(r"state +needs consent", text), text
        assert "✗ network: api.open-meteo.com — TCP connections to this host only" in text
        assert re.search(r"renderer +weather-cards", text), text
        assert _plain(details.query_one("#log", Static)) == "the log is empty\n"  # its own log


async def test_end_keeps_the_details_at_the_log_tail_as_it_grows(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        manager = await _open_manager(pilot, app)
        details = manager.query_one("#details", PluginDetails)
        readme = details.query_one("#readme", Markdown)
        await until(pilot, lambda: "known-good plugin" in readme.source, "echo's README")
        details.focus()
        await pilot.press("end")
        await pilot.pause()
        before = details.max_scroll_y
        log = app.kernel.paths.plugin_log("echo-fixture")
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as out:  # a crash logged while the user reads the tail
            out.writelines(f"late line {i}\n" for i in range(30))
        details.refresh_log()  # what the screen's poll does when the log changed
        await until(pilot, lambda: details.max_scroll_y > before, "the longer log laid out")
        await pilot.pause()
        assert details.scroll_y == details.max_scroll_y  # followed it to its last line
        manager.refresh_table()  # the table rebuilt (a resize, a change elsewhere): same page
        await pilot.pause()
        assert details.max_scroll_y > 0 and details.scroll_y == details.max_scroll_y
        await pilot.press("home")  # the user scrolls away: it stays where they put it
        await pilot.pause()
        with log.open("a") as out:
            out.writelines(f"later line {i}\n" for i in range(5))
        details.refresh_log()
        await pilot.pause()
        assert details.scroll_y == 0


async def test_the_footer_offers_only_what_applies(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        manager = await _open_manager(pilot, app)

        def offered() -> set[str]:
            actions = ("enable", "disable", "grants", "uninstall", "install")
            return {a for a in actions if manager.check_action(a, ())}

        assert offered() == {"disable", "grants", "uninstall", "install"}  # echo: running
        await pilot.press("down")
        assert offered() == {"enable", "grants", "uninstall", "install"}  # weather: stopped
        footer_keys = {key for key, b in manager.active_bindings.items() if b.enabled}
        assert "e" in footer_keys and "d" not in footer_keys
        for name in ("echo-fixture", "weather"):
            await app.kernel.loader.uninstall(name)
        manager.refresh_table()
        await pilot.pause()
        assert offered() == {"install"}  # nothing to act on but installing one
        assert "press i to install" in _plain(manager.query_one("#summary", Static)).lower()


async def test_at_80x24_the_table_and_the_details_both_show(app: DeetingApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        manager = await _open_manager(pilot, app)
        table = manager.query_one("#plugins", DataTable)
        details = manager.query_one("#details", PluginDetails)
        assert table.region.height >= 3 and details.region.height >= 8
        assert details.region.y >= table.region.bottom  # below the table, not over it


async def test_when_wide_the_details_sit_beside_the_table(app: DeetingApp) -> None:
    async with app.run_test(size=(160, 40)) as pilot:
        manager = await _open_manager(pilot, app)
        table = manager.query_one("#plugins", DataTable)
        details = manager.query_one("#details", PluginDetails)
        assert details.region.x >= table.region.right  # side by side when wide


def test_the_log_tail_reads_only_the_end(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text("".join(f"line {i}\n" for i in range(100_000)))
    assert tail(log) == [f"line {i}" for i in range(99_980, 100_000)]
    assert tail(tmp_path / "none.log") is None
    (tmp_path / "empty.log").write_text("")
    assert tail(tmp_path / "empty.log") == []


def test_scopes_are_explained_with_a_risk() -> None:
    assert explain(parse_scope("network:api.open-meteo.com")) == (
        "network: api.open-meteo.com — TCP connections to this host only (public addresses, "
        "any port), through Deeting's proxy; no listening",
        "medium",
    )
    assert explain(parse_scope("network"))[1] == "high"
    assert explain(parse_scope("filesystem:read:/proc"))[0].endswith("may read files here")
    assert explain(parse_scope("shell"))[1] == "high" and explain(parse_scope("gpu"))[1] == "low"


async def test_the_cli_and_the_chat_name_states_and_origins_alike(
    app: DeetingApp, home: Path
) -> None:
    """`deeting plugin list` (another process, a kernel that runs no plugin) and the plugin
    manager read one service: the same state word for each plugin, and the same origin."""
    import asyncio
    import os
    import sys

    import orjson

    done = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "deeting_tui",
        "plugin",
        "list",
        "--json",
        env={**os.environ, "DEETING_HOME": str(home)},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(done.communicate(), 60)
    listed = {p["name"]: p for p in orjson.loads(out)["plugins"]}
    async with app.run_test(size=SIZE) as pilot:
        manager = await _open_manager(pilot, app)
        assert {n: p["state"] for n, p in listed.items()} == _states(manager)
        assert _states(manager) == {"echo-fixture": "ready", "weather": "needs consent"}
        for name in listed:
            details = manager.query_one("#details", PluginDetails)
            details.show(name)
            await pilot.pause()
            shown = _plain(details.query_one("#summary", Static))
            assert re.search(r"installed +a local dev install from a folder", shown), shown
            assert listed[name]["dev"] is True
