"""The chat says everything it means at 80x24: no dialog, notice, cell or footer cuts its
text, every key it names works, and each fact is shown once.

Through Pilot on the real kernel: echo-fixture enabled, weather installed but waiting for
consent (it asks for two network scopes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from support import FIXTURES, OFFICIAL
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Input
from ui_support import Notes, app_with_plugins, record_notes, settled, until

from deeting_tui.plugin.scopes import explain, parse_scope
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.screens.chat import ChatScreen
from deeting_tui.ui.screens.confirm import ConfirmDialog
from deeting_tui.ui.screens.grants import GrantsDialog
from deeting_tui.ui.screens.install import InstallDialog
from deeting_tui.ui.screens.permission import PermissionDialog
from deeting_tui.ui.screens.plugins import PluginManager
from deeting_tui.ui.screens.rename import RenameDialog
from deeting_tui.ui.screens.sessions import SessionList
from deeting_tui.ui.widgets.transcript import AssistantReply, ErrorLine, ToolCallBlock

SMALL = (80, 24)
API, GEO = "network:api.open-meteo.com", "network:geocoding-api.open-meteo.com"


@pytest.fixture
async def app(home: Path) -> DeetingApp:
    """echo-fixture enabled; weather installed but waiting for consent (network)."""
    return await app_with_plugins(FIXTURES / "good_plugin", OFFICIAL / "weather")


@pytest.fixture
def notes(app: DeetingApp) -> Notes:
    return record_notes(app)


def _screen_rows(app: DeetingApp) -> list[str]:
    from ui_support import terminal_write

    return ["".join(s.text for s in row) for row in terminal_write(app)[1]]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _inside(app: DeetingApp, widget: Widget) -> str:
    """What the screen shows inside ``widget``'s content region, rows joined by spaces."""
    region = widget.content_region
    rows = _screen_rows(app)[region.y : region.bottom]
    return " ".join(row[region.x : region.right] for row in rows)


def assert_whole(app: DeetingApp, widget: Widget, text: str) -> None:
    """``text`` is shown in full inside ``widget`` (wrapped as it may be, never cut)."""
    shown = _inside(app, widget)
    assert _squash(text) in _squash(shown), f"{text!r} is cut; shown:\n{shown}"


async def _ready(pilot: Pilot[Any], app: DeetingApp) -> None:
    await until(pilot, lambda: isinstance(getattr(app, "chat", None), ChatScreen), "the chat")
    await pilot.pause()


async def _manager(pilot: Pilot[Any], app: DeetingApp) -> PluginManager:
    await _ready(pilot, app)
    app.action_plugins()
    await until(pilot, lambda: isinstance(app.screen, PluginManager), "the plugin manager")
    await pilot.pause()
    assert isinstance(app.screen, PluginManager)
    return app.screen


async def _select(pilot: Pilot[Any], manager: PluginManager, name: str) -> None:
    table = manager.query_one("#plugins", DataTable)
    table.move_cursor(row=table.get_row_index(name))
    await pilot.pause()


async def _send(pilot: Pilot[Any], app: DeetingApp, text: str) -> None:
    await pilot.press(*[c if c != " " else "space" for c in text], "enter")
    await settled(app.chat, "turn")
    await pilot.pause()


# -- dialogs wrap ---------------------------------------------------------------------------


async def test_the_uninstall_question_is_shown_whole_at_80x24(app: DeetingApp) -> None:
    async with app.run_test(size=SMALL) as pilot:
        manager = await _manager(pilot, app)
        await _select(pilot, manager, "weather")
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the question")
        await pilot.pause()
        question = (
            "Uninstall weather 1.0.0? Its code, data, cache, log and permissions are removed."
        )
        assert_whole(app, app.screen.query_one("Vertical"), question)
        await pilot.press("n")


async def test_every_dialog_wraps_a_long_title_at_80x24(app: DeetingApp) -> None:
    """Titles name plugins and sessions, which can be long: each shows whole."""
    long_name = "a-plugin-with-a-name-long-enough-to-need-two-lines-in-a-dialog-of-eighty"
    scope = parse_scope("filesystem:read:/home/someone/a/rather/deep/folder/of/documents")
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        app.push_screen(PermissionDialog(long_name, [scope], intro="Deny changes nothing."))
        await until(pilot, lambda: isinstance(app.screen, PermissionDialog), "the dialog")
        await pilot.pause()
        dialog = app.screen.query_one("#dialog")
        assert_whole(app, dialog, f"'{long_name}' asks for:")
        assert_whole(app, dialog, explain(scope)[0])
        app.pop_screen()
        await pilot.pause()
        app.push_screen(RenameDialog("c0ffee" * 12, None))
        await until(pilot, lambda: isinstance(app.screen, RenameDialog), "the rename dialog")
        await pilot.pause()
        assert_whole(app, app.screen.query_one("#dialog"), f"Rename session {'c0ffee' * 12}")


async def test_the_permission_dialog_says_the_risk_in_words(app: DeetingApp) -> None:
    async with app.run_test(size=SMALL) as pilot:
        manager = await _manager(pilot, app)
        await _select(pilot, manager, "weather")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, PermissionDialog), "the dialog")
        await pilot.pause()
        dialog = app.screen.query_one("#dialog")
        for scope in (API, GEO):
            words, risk = explain(parse_scope(scope))
            assert_whole(app, dialog, f"{words} ({risk} risk)")
        await pilot.press("d")


async def test_the_grants_dialog_shows_each_scope_whole(app: DeetingApp) -> None:
    async with app.run_test(size=SMALL) as pilot:
        manager = await _manager(pilot, app)
        await _select(pilot, manager, "weather")
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, GrantsDialog), "the grants dialog")
        await pilot.pause()
        dialog = app.screen.query_one("#dialog")
        for scope in (API, GEO):  # the list names each; under it, what the highlighted allows
            words, risk = explain(parse_scope(scope))
            assert_whole(app, app.screen.query_one("#scopes"), f"{scope} ({risk} risk)")
            assert_whole(app, dialog, f"{words} ({risk} risk)")
            await pilot.press("down")
            await pilot.pause()


# -- the chat's first screen, header and input ----------------------------------------------


async def test_the_welcome_offers_a_trigger_example_that_works_as_typed(home: Path) -> None:
    """With calc enabled, the welcome's example is one of its trigger examples (``calc 2+3``),
    which works as typed, not a call template with a value left to fill in."""
    app = await app_with_plugins(FIXTURES / "good_plugin", OFFICIAL / "calc")
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        shown = "\n".join(_screen_rows(app))
        assert re.search(r"^\s*calc 2\+3 — goes straight to calc's calc tool", shown, re.M), shown
        await _send(pilot, app, "calc 2+3")
        await until(pilot, lambda: "result" in "\n".join(_screen_rows(app)), "calc's card")
        assert re.search(r"result\s+5\b", "\n".join(_screen_rows(app))), _screen_rows(app)


async def test_the_header_says_how_to_give_consent(app: DeetingApp) -> None:
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        header = _screen_rows(app)[0]
        assert "1 awaiting consent: F2, then e" in header, header
        shown = "\n".join(_screen_rows(app))  # the welcome says it in words
        assert "F2 — 1 plugin awaiting consent: move to one, e allows what it asks" in shown
        await pilot.resize_terminal(120, 24)
        await pilot.pause()
        header = _screen_rows(app)[0]
        assert "1 awaiting consent: F2, then e to allow" in header, header
        await pilot.resize_terminal(76, 24)  # the longest hint that fits, never a cut one
        await pilot.pause()
        header = _screen_rows(app)[0]
        assert "1 awaiting consent — F2, e" in header and "…" not in header, header


async def test_a_fresh_session_welcomes_with_three_things_to_try(app: DeetingApp) -> None:
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        shown = "\n".join(_screen_rows(app))
        for thing in ("help", "F2"):
            assert thing in shown, shown
        assert re.search(r"^\s*/(echo|add) \w+=… — ", shown, re.MULTILINE), shown
        await _send(pilot, app, "echo hi")
        assert "Welcome" not in "\n".join(_screen_rows(app))
        # A stored conversation opens without it.
        await app.open_session(app.session_id or "")
        await pilot.pause()
        assert "Welcome" not in "\n".join(_screen_rows(app))


async def test_tab_away_and_back_keeps_what_was_typed(app: DeetingApp) -> None:
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        prompt = app.chat.query_one("#prompt", Input)
        await pilot.press(*"hello")
        await pilot.press("tab")
        assert not prompt.has_focus
        await pilot.press("shift+tab")
        assert prompt.has_focus
        await pilot.press("x")
        assert prompt.value == "hellox"


async def test_tab_accepts_the_shown_completion(app: DeetingApp) -> None:
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        prompt = app.chat.query_one("#prompt", Input)
        await pilot.press(*"/ech")
        await until(pilot, lambda: prompt._suggestion.startswith("/echo"), "the completion")
        await pilot.press("tab")
        assert prompt.has_focus
        assert prompt.value.startswith("/echo")


async def test_help_names_rename_the_keys_and_how_to_set_up_a_model(app: DeetingApp) -> None:
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        await _send(pilot, app, "/help")
        (help_reply,) = app.chat.query(AssistantReply)
        text = help_reply.source
        for needed in ("F1", "F2", "F3", "Ctrl+N", "Ctrl+Q", "rename", "ANTHROPIC_API_KEY"):
            assert needed in text, needed


# -- each fact once -------------------------------------------------------------------------


async def test_a_direct_call_shows_its_card_without_repeating_it(app: DeetingApp) -> None:
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        await _send(pilot, app, "echo hello there")
        await _send(pilot, app, "/echo text=again")
        blocks = list(app.chat.query(ToolCallBlock))
        assert len(blocks) == 2 and all(b.done for b in blocks)
        assert [r.source for r in app.chat.query(AssistantReply)] == []
        assert isinstance(app.chat.query_one("#transcript").children[-1], ToolCallBlock)


async def test_a_failed_call_shows_its_error_once(app: DeetingApp) -> None:
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        await _send(pilot, app, "/add a=1")
        shown = "\n".join(_screen_rows(app))
        assert shown.count("invalid arguments") == 1, shown
        assert not app.chat.query(ErrorLine)
        # An error of its own (no tool block to carry it) is still a line.
        await _send(pilot, app, "/add a=1 a=2")
        assert len(app.chat.query(ErrorLine)) == 1


async def test_a_resumed_session_shows_each_fact_once_too(app: DeetingApp) -> None:
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        await _send(pilot, app, "echo resumed")
        await _send(pilot, app, "/add a=1")
        await app.open_session(app.session_id or "")
        await until(pilot, lambda: len(app.chat.query(ToolCallBlock)) == 2, "the replay")
        await until(pilot, lambda: all(b.done for b in app.chat.query(ToolCallBlock)), "results")
        assert not app.chat.query(AssistantReply)
        assert not app.chat.query(ErrorLine)


# -- the plugin manager ---------------------------------------------------------------------


async def test_u_without_an_upgrade_says_so(app: DeetingApp, notes: Notes) -> None:
    async with app.run_test(size=SMALL) as pilot:
        manager = await _manager(pilot, app)
        await _select(pilot, manager, "echo-fixture")
        await pilot.press("u")
        await until(pilot, lambda: bool(notes), "a notice")
        assert "no newer version of echo-fixture" in notes[-1][1]


async def test_end_goes_to_the_last_plugin_not_sideways(app: DeetingApp) -> None:
    async with app.run_test(size=SMALL) as pilot:
        manager = await _manager(pilot, app)
        table = manager.query_one("#plugins", DataTable)
        await pilot.press("end")
        await pilot.pause()
        assert table.cursor_row == table.row_count - 1
        assert table.scroll_x == 0
        await pilot.press("home")
        await pilot.pause()
        assert table.cursor_row == 0


async def test_the_plugin_table_shows_every_scope_whole_at_80(app: DeetingApp) -> None:
    async with app.run_test(size=SMALL) as pilot:
        manager = await _manager(pilot, app)
        table = manager.query_one("#plugins", DataTable)
        await pilot.pause()
        assert table.max_scroll_x == 0  # nothing to the right, out of sight
        assert_whole(app, table, f"{API}, {GEO}")


async def test_reinstalling_from_the_dialog_points_at_its_checkbox(
    app: DeetingApp, notes: Notes
) -> None:
    async with app.run_test(size=SMALL) as pilot:
        await _manager(pilot, app)
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, InstallDialog), "the install dialog")
        dialog = app.screen
        assert isinstance(dialog, InstallDialog)
        dialog.query_one("#path", Input).value = str(FIXTURES / "good_plugin")
        await pilot.press("enter")
        await until(pilot, lambda: bool(notes), "the error")
        await settled(dialog, "install")
        message = notes[-1][1]
        assert "--force" not in message, message
        assert "Replace an installed copy" in message, message


# -- the session list -----------------------------------------------------------------------


async def test_the_sessions_footer_names_x_as_the_readme_does(app: DeetingApp) -> None:
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        app.action_sessions()
        await until(pilot, lambda: isinstance(app.screen, SessionList), "the session list")
        # The footer paints its keys a frame or more after the screen is pushed (more under
        # load): wait for the paint, not a fixed number of pauses.
        await until(pilot, lambda: "esc" in _inside(app, app.screen.query_one(Footer)), "keys")
        footer = _inside(app, app.screen.query_one(Footer))
        assert "x Delete" in footer, footer
        assert "del " not in footer, footer


async def test_the_plugin_footer_fits_80_columns_with_an_upgrade(
    app: DeetingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The most keys it ever names (one of e/d, g, i, u, x, Esc, ^q), all in sight."""
    import deeting_tui.ui.screens.plugins as plugins_module

    monkeypatch.setattr(plugins_module, "available_updates", lambda _kernel: {"weather": "2.0"})
    async with app.run_test(size=SMALL) as pilot:
        manager = await _manager(pilot, app)
        await _select(pilot, manager, "weather")
        await until(pilot, lambda: "Upgrade" in _inside(app, manager.query_one(Footer)), "keys")
        footer = _inside(app, manager.query_one(Footer))
        for key in ("e Enable", "i Install", "u Upgrade", "x Uninstall", "esc Back", "^q Quit"):
            assert key in footer, footer
        assert "g Grants" in footer, footer


async def test_the_session_list_shows_a_cut_label_whole_below_it(app: DeetingApp) -> None:
    """A row cuts its title or first message to the width with '…'; the highlighted
    session's is shown whole under the table, with its id (for --session)."""
    long_title = "Plans for the garden: " + "tomatoes, beans and a row of sunflowers; " * 4
    stored = app.kernel.sessions.create(long_title)
    app.kernel.sessions.append(stored.id, "user", {"text": "what to plant?"})
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        app.action_sessions()
        await until(pilot, lambda: isinstance(app.screen, SessionList), "the session list")
        screen = app.screen
        table = screen.query_one("#sessions", DataTable)
        await until(pilot, lambda: table.row_count > 0, "the rows")
        table.move_cursor(row=table.get_row_index(stored.id))
        await pilot.pause()
        assert "…" in str(table.get_row(stored.id)[-1])  # the row is cut …
        detail = screen.query_one("#detail")
        assert_whole(app, detail, f"{stored.id} · {long_title.strip()}")  # … not here


async def test_a_first_message_longer_than_a_title_is_marked_as_cut(app: DeetingApp) -> None:
    long_first = "Summarise this for me: " + "the garage called back about the tyres; " * 12
    stored = app.kernel.sessions.create()
    app.kernel.sessions.append(stored.id, "user", {"text": long_first})
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        app.action_sessions()
        await until(pilot, lambda: isinstance(app.screen, SessionList), "the session list")
        table = app.screen.query_one("#sessions", DataTable)
        await until(pilot, lambda: table.row_count > 0, "the rows")
        table.move_cursor(row=table.get_row_index(stored.id))
        await pilot.pause()
        shown = " ".join(_inside(app, app.screen.query_one("#detail")).split())
        assert shown.startswith(f"{stored.id} · Summarise this for me: the garage"), shown
        assert shown.endswith("… (Enter opens it whole)"), shown


async def test_a_permission_dialog_taller_than_the_terminal_scrolls(app: DeetingApp) -> None:
    """Many scopes at 80x24: the buttons stay in sight and every scope can be read."""
    scopes = [
        parse_scope(f"filesystem:read:/srv/data/folder-number-{i}/with/a/path") for i in range(9)
    ]
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        app.push_screen(PermissionDialog("many", scopes, intro="Deny changes nothing."))
        await until(pilot, lambda: isinstance(app.screen, PermissionDialog), "the dialog")
        await pilot.pause()
        dialog = app.screen
        allow = dialog.query_one("#allow")
        frame = dialog.query_one("#dialog").region
        assert allow.region.bottom <= SMALL[1], "the Allow button is below the screen's edge"
        assert frame.y >= 0 and frame.bottom <= SMALL[1], frame
        assert_whole(app, dialog.query_one("#dialog"), "'many' asks for:")
        last = list(dialog.query(".scope"))[-1]
        last.scroll_visible(animate=False)
        await pilot.pause()
        assert_whole(app, last, explain(scopes[-1])[0])


async def test_a_grants_dialog_with_many_scopes_fits_80x24(home: Path, tmp_path: Path) -> None:
    """Ten scopes: the list scrolls, the title and the Close button stay in sight."""
    import json
    import shutil

    folder = tmp_path / "many"
    shutil.copytree(FIXTURES / "good_plugin", folder)
    manifest = json.loads((folder / "kimai.json").read_text())
    manifest["permissions"] = [f"filesystem:read:/srv/area-{i}" for i in range(10)]
    (folder / "kimai.json").write_text(json.dumps(manifest))
    app = await app_with_plugins(folder)
    async with app.run_test(size=SMALL) as pilot:
        await _manager(pilot, app)
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, GrantsDialog), "the grants dialog")
        await pilot.pause()
        await pilot.pause()
        frame = app.screen.query_one("#dialog").region
        assert frame.y >= 0 and frame.bottom <= SMALL[1], frame
        assert app.screen.query_one("#close").region.bottom <= SMALL[1] - 1
        assert_whole(app, app.screen.query_one("#dialog"), "Permissions of 'echo-fixture'")


async def test_esc_cancel_is_dimmed_while_nothing_runs(app: DeetingApp) -> None:
    """The footer names Esc 'Cancel'; with no turn running it has nothing to cancel and is
    shown dimmed (disabled) rather than doing nothing silently."""
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        assert app.chat.check_action("cancel_turn", ()) is None
        await _send(pilot, app, "echo done")
        await pilot.pause()
        assert app.chat.check_action("cancel_turn", ()) is None


async def test_the_status_tick_on_a_screen_being_taken_down_is_no_crash(app: DeetingApp) -> None:
    """The header's timer can tick while a chat screen's widgets are already gone (the app
    closing, a session reopened): it once ended the app with NoMatches('#prompt')."""
    async with app.run_test(size=SMALL) as pilot:
        await _ready(pilot, app)
        await app.chat.query_one("#prompt").remove()
        app.update_status()
        await pilot.pause()
        assert app.return_code is None and app.is_running
