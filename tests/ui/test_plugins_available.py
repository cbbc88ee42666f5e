"""The plugins deeting carries in the plugin manager: rows marked available, one key from
installed (the consent dialog first when they ask for something), verified as a download."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from bundle_support import make_bundle
from rich.console import Console
from support import FIXTURES
from textual.pilot import Pilot
from textual.widgets import DataTable, Static
from ui_support import app_with_plugins, record_notes, settled, until

from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.screens.permission import PermissionDialog
from deeting_tui.ui.screens.plugins import PluginManager

SIZE = (110, 34)


@pytest.fixture(scope="session")
def bundle_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bundle-cache")


@pytest.fixture
async def app(
    home: Path, tmp_path: Path, bundle_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> DeetingApp:
    monkeypatch.setenv("DEETING_BUNDLE", str(make_bundle(tmp_path / "bundled", bundle_cache)))
    return await app_with_plugins(FIXTURES / "good_plugin")


async def _manager(pilot: Pilot[Any], app: DeetingApp, row: str) -> PluginManager:
    app.action_plugins()
    await until(pilot, lambda: isinstance(app.screen, PluginManager), "the plugin manager")
    manager = app.screen
    assert isinstance(manager, PluginManager)
    table = manager.query_one("#plugins", DataTable)
    await until(pilot, lambda: row in table.rows, f"the row of {row}")
    table.move_cursor(row=table.get_row_index(row))
    await pilot.pause()
    return manager


def _states(manager: PluginManager) -> dict[str, str]:
    table = manager.query_one("#plugins", DataTable)
    rows = (table.get_row_at(i) for i in range(table.row_count))
    return {str(row[0]): str(row[2]) for row in rows}


async def test_available_plugins_are_rows_and_e_installs_one_after_consent(
    app: DeetingApp,
) -> None:
    notes = record_notes(app)
    async with app.run_test(size=SIZE) as pilot:
        manager = await _manager(pilot, app, "weather")
        assert _states(manager) == {
            "echo-fixture": "ready",
            **dict.fromkeys(("calc", "clock", "notes", "sysinfo", "weather"), "available"),
        }
        console = Console(file=StringIO(), width=200, color_system=None)
        console.print(manager.query_one("#summary", Static).content)
        assert isinstance(console.file, StringIO)
        shown = console.file.getvalue()
        assert "press e or Enter" in shown and "network:api.open-meteo.com" in shown
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, PermissionDialog), "consent")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, PluginManager), "back")
        await settled(app, "plugins")
        await pilot.pause()
        assert _states(manager)["weather"] == "enabled"
        record = app.kernel.installed.get("weather")
        assert record is not None and record.source.startswith("bundled with deeting")
        assert any("weather" in message for _severity, message in notes)


async def test_enter_installs_one_that_asks_for_nothing_at_once(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        manager = await _manager(pilot, app, "calc")
        await pilot.press("enter")
        await until(pilot, lambda: app.kernel.installed.get("calc") is not None, "calc")
        await settled(app, "plugins")
        await pilot.pause()
        assert not isinstance(app.screen, PermissionDialog)
        assert _states(manager)["calc"] == "enabled"


async def test_denied_consent_installs_it_without_starting_it(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        manager = await _manager(pilot, app, "sysinfo")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, PermissionDialog), "consent")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, PluginManager), "back")
        await settled(app, "plugins")
        await pilot.pause()
        assert _states(manager)["sysinfo"] == "needs consent"
        assert not app.kernel.grants.granted("sysinfo")


async def test_the_chat_on_a_fresh_home_starts_with_the_bundled_plugins(
    home: Path, tmp_path: Path, bundle_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chat's kernel starts after the first run: calc answers the first message."""
    from support import FAST_POLICY

    from deeting_tui.compose import fresh_home, plug_ports
    from deeting_tui.kernel.kernel import Kernel
    from deeting_tui.llm.offline import OfflineAssistant
    from deeting_tui.paths import resolve_paths

    monkeypatch.setenv("DEETING_BUNDLE", str(make_bundle(tmp_path / "bundled", bundle_cache)))
    paths = resolve_paths()
    first_run = fresh_home(paths)
    kernel = Kernel(paths, assistant=OfflineAssistant(), policy=FAST_POLICY)
    app = DeetingApp(plug_ports(kernel, first_run=first_run))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(app.kernel.loader.runtimes) == 3, "three plugins")
        assert sorted(app.kernel.loader.runtimes) == ["calc", "clock", "notes"]
        assert app.problems == []
