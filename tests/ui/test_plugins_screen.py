"""The plugin manager and the permission dialog, through Pilot on the real kernel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support import FAST_POLICY, FIXTURES, OFFICIAL
from textual.widgets import DataTable

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.paths import resolve_paths
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.plugin.scopes import explain, parse_scope
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.screens.permission import PermissionDialog
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


async def _open_manager(pilot: object, app: DeetingApp) -> PluginManager:
    await pilot.click("#prompt")  # type: ignore[attr-defined]
    for char in "/plugins":
        await pilot.press(char)  # type: ignore[attr-defined]
    await pilot.press("enter")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    assert isinstance(app.screen, PluginManager)
    return app.screen


def _states(manager: PluginManager) -> dict[str, str]:
    table = manager.query_one("#plugins", DataTable)
    rows = (table.get_row_at(i) for i in range(table.row_count))
    return {str(row[0]): str(row[2]) for row in rows}


async def test_enabling_asks_for_consent_and_deny_changes_nothing(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        manager = await _open_manager(pilot, app)
        assert _states(manager) == {"echo-fixture": "enabled", "weather": "needs consent"}
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


def test_scopes_are_explained_with_a_risk() -> None:
    assert explain(parse_scope("network:api.open-meteo.com")) == (
        "network: api.open-meteo.com — may connect to this host only",
        "medium",
    )
    assert explain(parse_scope("network"))[1] == "high"
    assert explain(parse_scope("filesystem:read:/proc"))[0].endswith("may read files here")
    assert explain(parse_scope("shell"))[1] == "high" and explain(parse_scope("gpu"))[1] == "low"
