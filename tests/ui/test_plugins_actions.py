"""Changing plugins from the manager, through Pilot on the real kernel: single-scope grant and
revoke, uninstall, and install from a folder or a zip with consent, progress and errors."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest
from registry_support import TestRegistry, zip_plugin
from support import FIXTURES, OFFICIAL
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, ProgressBar, SelectionList
from ui_support import Notes, app_with_plugins, record_notes, settled, until

from deeting_tui.kernel.events import Event, PluginNotice
from deeting_tui.kernel.plugins.loader import INSTALL_STEPS
from deeting_tui.store.client import RegistryClient
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.screens.confirm import ConfirmDialog
from deeting_tui.ui.screens.grants import GrantsDialog
from deeting_tui.ui.screens.install import InstallDialog, PathSuggester
from deeting_tui.ui.screens.permission import PermissionDialog
from deeting_tui.ui.screens.plugins import PluginManager

SIZE = (110, 34)
API, GEO = "network:api.open-meteo.com", "network:geocoding-api.open-meteo.com"


@pytest.fixture
async def app(home: Path) -> DeetingApp:
    """echo-fixture enabled; weather installed but waiting for consent (network)."""
    return await app_with_plugins(FIXTURES / "good_plugin", OFFICIAL / "weather")


@pytest.fixture
def notes(app: DeetingApp) -> Notes:
    return record_notes(app)


async def _manager(pilot: Pilot[Any], app: DeetingApp) -> PluginManager:
    app.action_plugins()
    await until(pilot, lambda: isinstance(app.screen, PluginManager), "the plugin manager")
    assert isinstance(app.screen, PluginManager)
    return app.screen


def _states(manager: PluginManager) -> dict[str, str]:
    table = manager.query_one("#plugins", DataTable)
    rows = (table.get_row_at(i) for i in range(table.row_count))
    return {str(row[0]): str(row[2]) for row in rows}


def _granted(app: DeetingApp, name: str) -> list[str]:
    return [str(s) for s in app.kernel.grants.granted(name)]


def _installed(app: DeetingApp) -> list[tuple[str, str, bool]]:
    return [(r.name, r.version, r.enabled) for r in app.kernel.installed.all()]


# -- grant / revoke ---------------------------------------------------------------------------


async def _toggle(pilot: Pilot[Any], app: DeetingApp, *keys: str, consent: str | None) -> None:
    """Move in the scope list, toggle with space, answer the consent dialog if one comes."""
    await pilot.press(*keys, "space")
    if consent is not None:
        await until(pilot, lambda: isinstance(app.screen, PermissionDialog), "consent")
        await pilot.press(consent)
    await until(pilot, lambda: isinstance(app.screen, GrantsDialog), "back to the scopes")
    await settled(app, "grants")
    await pilot.pause()


async def test_grant_scopes_one_by_one_then_revoke_one(app: DeetingApp, notes: Notes) -> None:
    async with app.run_test(size=SIZE) as pilot:
        manager = await _manager(pilot, app)
        await pilot.press("down", "g")  # weather
        await until(pilot, lambda: isinstance(app.screen, GrantsDialog), "the scopes")
        scopes = app.screen.query_one("#scopes", SelectionList)
        assert scopes.option_count == 2 and scopes.selected == []

        await _toggle(pilot, app, consent="a")
        assert _granted(app, "weather") == [API] and scopes.selected == [API]
        assert "weather" not in app.kernel.loader.runtimes
        assert notes[-1] == ("information", f"granted '{API}' to weather — it still needs: {GEO}")

        await _toggle(pilot, app, "down", consent="a")
        assert _granted(app, "weather") == [API, GEO] and "weather" in app.kernel.loader.runtimes
        assert notes[-1][1].endswith("— enabled weather")

        await _toggle(pilot, app, "up", consent=None)  # revoking needs no consent
        assert _granted(app, "weather") == [GEO] and scopes.selected == [GEO]
        assert "weather" not in app.kernel.loader.runtimes
        reason = f"permission '{API}' was revoked"
        assert app.kernel.loader.record("weather").disabled_reason == reason
        assert notes[-1][1] == (
            f"revoked '{API}' from weather — disabled weather ({reason}; grant it again to "
            "re-enable)"
        )
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is manager, "the manager")
        assert _states(manager)["weather"] == "needs consent"


async def test_denying_a_grant_changes_nothing(app: DeetingApp, notes: Notes) -> None:
    async with app.run_test(size=SIZE) as pilot:
        manager = await _manager(pilot, app)
        await pilot.press("down", "g")
        await until(pilot, lambda: isinstance(app.screen, GrantsDialog), "the scopes")
        scopes = app.screen.query_one("#scopes", SelectionList)
        await _toggle(pilot, app, consent="d")
        assert _granted(app, "weather") == [] and scopes.selected == []  # the tick went back
        assert notes[-1] == ("information", f"did not grant '{API}' to weather")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is manager, "the manager")
        assert _states(manager) == {"echo-fixture": "ready", "weather": "needs consent"}


# -- uninstall --------------------------------------------------------------------------------


async def test_uninstall_asks_first_and_no_keeps_everything(app: DeetingApp, notes: Notes) -> None:
    code = app.kernel.paths.plugin_code("echo-fixture", "1.0.0")
    async with app.run_test(size=SIZE) as pilot:
        manager = await _manager(pilot, app)
        before = _installed(app)
        await pilot.press("x")  # echo-fixture, the first row
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.press("n")
        await settled(app, "plugins")
        assert _installed(app) == before and code.is_dir() and not notes
        assert "echo-fixture" in app.kernel.loader.runtimes

        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.press("y")
        await settled(app, "plugins")
        await pilot.pause()
        assert _installed(app) == [("weather", "1.0.0", False)] and not code.exists()
        assert "echo-fixture" not in app.kernel.loader.runtimes
        assert _states(manager) == {"weather": "needs consent"}
        assert notes[-1][1].startswith("uninstalled echo-fixture 1.0.0")


# -- install ----------------------------------------------------------------------------------


async def _install(pilot: Pilot[Any], app: DeetingApp, path: Path | str) -> InstallDialog:
    if not isinstance(app.screen, InstallDialog):
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, InstallDialog), "the install dialog")
    dialog = app.screen
    assert isinstance(dialog, InstallDialog)
    dialog.query_one("#path", Input).value = str(path)
    await pilot.press("enter")
    return dialog


async def test_install_a_folder_with_consent_enables_it(app: DeetingApp, notes: Notes) -> None:
    async with app.run_test(size=SIZE) as pilot:
        manager = await _manager(pilot, app)
        dialog = await _install(pilot, app, OFFICIAL / "sysinfo")
        await until(pilot, lambda: isinstance(app.screen, PermissionDialog), "consent")
        assert isinstance(app.screen, PermissionDialog)
        assert [str(s) for s in app.screen.scopes] == ["filesystem:read:/proc"]
        progress = dialog.query_one("#progress", ProgressBar)
        grant_step = INSTALL_STEPS.index("permissions") / len(INSTALL_STEPS)
        await until(pilot, lambda: progress.progress == pytest.approx(grant_step), "the grant step")
        await pilot.press("a")
        await until(pilot, lambda: app.screen is manager, "the manager")
        assert _states(manager)["sysinfo"] == "enabled"
        assert _granted(app, "sysinfo") == ["filesystem:read:/proc"]
        assert notes[-1] == (
            "information",
            "installed sysinfo 1.0.0 (a local dev install from a folder) and enabled it — "
            "tools: sysinfo",
        )
        table = manager.query_one("#plugins", DataTable)
        assert str(table.get_row_at(table.cursor_row)[0]) == "sysinfo"  # the cursor went to it


async def test_install_denied_is_installed_but_waits(app: DeetingApp, notes: Notes) -> None:
    async with app.run_test(size=SIZE) as pilot:
        manager = await _manager(pilot, app)
        await _install(pilot, app, OFFICIAL / "sysinfo")
        await until(pilot, lambda: isinstance(app.screen, PermissionDialog), "consent")
        await pilot.press("d")
        await until(pilot, lambda: app.screen is manager, "the manager")
        assert _states(manager)["sysinfo"] == "needs consent"
        assert _granted(app, "sysinfo") == [] and "sysinfo" not in app.kernel.loader.runtimes
        severity, message = notes[-1]
        assert severity == "warning"
        assert message == (
            "installed sysinfo 1.0.0 (a local dev install from a folder) but did not enable "
            "it: it needs filesystem:read:/proc — press g to grant"
        )


async def test_install_from_a_zip(app: DeetingApp, notes: Notes, tmp_path: Path) -> None:
    archive = tmp_path / "calc-1.0.0.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for file in sorted((OFFICIAL / "calc").rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                out.write(file, Path("calc") / file.relative_to(OFFICIAL / "calc"))
    async with app.run_test(size=SIZE) as pilot:
        manager = await _manager(pilot, app)
        await _install(pilot, app, archive)  # calc asks for nothing: no consent dialog
        await until(pilot, lambda: app.screen is manager, "the manager")
        assert _states(manager)["calc"] == "enabled"
        record = app.kernel.loader.record("calc")
        assert not record.dev and record.source == str(archive)
        assert "(from an archive) and enabled it" in notes[-1][1]


async def test_bad_paths_and_invalid_plugins_change_nothing(
    app: DeetingApp, notes: Notes, tmp_path: Path
) -> None:
    not_a_zip = tmp_path / "notes.txt"
    not_a_zip.write_text("hello")
    async with app.run_test(size=SIZE) as pilot:
        manager = await _manager(pilot, app)
        before = _installed(app)
        cases = [
            ("", "type a registry name, or the path of a plugin folder or a .zip"),
            (tmp_path / "missing", "no such folder or zip"),
            (not_a_zip, "not a plugin folder or a zip archive"),
            (FIXTURES / "bad_plugins" / "bad_scope", "not a valid plugin"),
            (FIXTURES / "good_plugin", "is already installed"),
        ]
        for path, words in cases:
            dialog = await _install(pilot, app, path)
            await settled(app, "install")
            await pilot.pause()
            severity, message = notes[-1]
            assert severity == "error" and words in message, message
            assert app.screen is dialog and not dialog.installing  # open, to fix the path
            assert not dialog.query_one("#path", Input).disabled
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is manager, "the manager")
        assert _installed(app) == before
        assert _states(manager) == {"echo-fixture": "ready", "weather": "needs consent"}
        assert not list((app.kernel.paths.plugins_dir / ".staging").iterdir())


async def test_paths_complete_from_the_folder(tmp_path: Path) -> None:
    (tmp_path / "alpha").mkdir()
    (tmp_path / "alps.zip").write_text("")
    (tmp_path / "aloe.txt").write_text("")
    (tmp_path / ".hidden").mkdir()
    suggest = PathSuggester().get_suggestion
    assert await suggest(f"{tmp_path}/al") == f"{tmp_path}/alpha/"  # folders and zips first
    assert await suggest(f"{tmp_path}/alps") == f"{tmp_path}/alps.zip"
    assert await suggest(f"{tmp_path}/alo") == f"{tmp_path}/aloe.txt"
    assert await suggest(f"{tmp_path}/") == f"{tmp_path}/alpha/"  # hidden ones only on '.'
    assert await suggest(f"{tmp_path}/.h") == f"{tmp_path}/.hidden/"
    assert await suggest(f"{tmp_path}/zzz") is None
    assert await suggest(f"{tmp_path}/nope/x") is None


# -- the registry -----------------------------------------------------------------------------


@pytest.fixture
async def registry(app: DeetingApp, tmp_path: Path) -> TestRegistry:
    """A synced registry: upgrade-fixture 1.0.0 installed from it, 3.0.0 (which asks for
    filesystem:read:/proc) published since; echo-fixture 2.0.0 listed, not installed."""
    made = TestRegistry(tmp_path / "registry")
    made.add("1.0.0", name="upgrade-fixture", data=zip_plugin(FIXTURES / "upgrade_v1"))
    made.publish()
    client = RegistryClient(app.kernel.paths)
    await client.sync([], made.url, made.root_file)
    await app.kernel.plugins.install("upgrade-fixture")
    await app.kernel.loader.shutdown()
    made.add("3.0.0", name="upgrade-fixture", data=zip_plugin(FIXTURES / "upgrade_v3_more_scopes"))
    made.add("2.0.0")
    made.publish()
    await client.sync([("upgrade-fixture", "1.0.0")])
    return made


async def test_upgrade_from_the_registry_asks_for_the_new_scope(
    app: DeetingApp, notes: Notes, registry: TestRegistry
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        manager = await _manager(pilot, app)
        table = manager.query_one("#plugins", DataTable)
        await until(pilot, lambda: table.row_count == 3, "the table")
        table.move_cursor(row=table.get_row_index("upgrade-fixture"))
        await pilot.pause()
        version = table.get_row("upgrade-fixture")[1]
        assert str(version) == "1.0.0 → 3.0.0"
        assert manager.check_action("upgrade", ()) is True
        assert "upgrade-fixture" in app.kernel.loader.runtimes

        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, PermissionDialog), "consent")
        assert isinstance(app.screen, PermissionDialog)
        assert [str(s) for s in app.screen.scopes] == ["filesystem:read:/proc"]
        await pilot.press("d")  # deny: the old version keeps running
        await until(pilot, lambda: app.screen is manager and not manager.busy, "the manager")
        assert notes[-1][0] == "error" and "the old version (1.0.0) stays active" in notes[-1][1]
        assert app.kernel.loader.record("upgrade-fixture").version == "1.0.0"
        assert "upgrade-fixture" in app.kernel.loader.runtimes

        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, PermissionDialog), "consent")
        await pilot.press("a")
        await until(pilot, lambda: app.screen is manager and not manager.busy, "the manager")
        assert (
            "information",
            "upgraded upgrade-fixture 1.0.0 → 3.0.0 without a pause",
        ) in notes
        record = app.kernel.loader.record("upgrade-fixture")
        assert (record.version, record.previous) == ("3.0.0", "1.0.0")
        assert str(table.get_row("upgrade-fixture")[1]) == "3.0.0"
        assert manager.check_action("upgrade", ()) is False  # nothing newer now


async def test_an_upgrade_in_the_plugin_manager_is_told_as_a_plugin_notice(
    app: DeetingApp, notes: Notes, registry: TestRegistry
) -> None:
    """The manager upgrades through the kernel's path, so every listener hears it (the
    chat's header, another front end), as it does for a CLI upgrade."""
    heard: list[Event] = []
    app.kernel.add_listener(heard.append)
    async with app.run_test(size=SIZE) as pilot:
        manager = await _manager(pilot, app)
        table = manager.query_one("#plugins", DataTable)
        await until(pilot, lambda: table.row_count == 3, "the table")
        table.move_cursor(row=table.get_row_index("upgrade-fixture"))
        await pilot.pause()
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, PermissionDialog), "consent")
        await pilot.press("a")
        await until(pilot, lambda: app.screen is manager and not manager.busy, "the manager")
        told = [(e.plugin, e.message) for e in heard if isinstance(e, PluginNotice)]
        upgraded = ("upgrade-fixture", "upgraded upgrade-fixture 1.0.0 → 3.0.0")
        assert told.count(upgraded) == 1, told


async def test_install_by_name_from_the_registry(
    app: DeetingApp, notes: Notes, registry: TestRegistry
) -> None:
    await app.kernel.loader.uninstall("echo-fixture")
    async with app.run_test(size=SIZE) as pilot:
        manager = await _manager(pilot, app)
        await _install(pilot, app, "echo-fixture")
        await until(pilot, lambda: app.screen is manager, "the manager")
        said = "installed echo-fixture 2.0.0 from the registry (verified) and enabled it"
        assert any(said in note for _, note in notes), notes
        record = app.kernel.loader.record("echo-fixture")
        assert not record.dev and record.source.startswith("registry ")
        # A name the registry does not have: a notification, and the dialog stays.
        dialog = await _install(pilot, app, "nothing-like-it")
        await until(pilot, lambda: not dialog.installing, "the refusal")
        assert app.screen is dialog
        assert notes[-1][0] == "error" and "no plugin 'nothing-like-it'" in notes[-1][1]
