"""The error family (deeting_tui/errors.py): one base for every error a person can act on,
its fix carried as data (Hint), and each front end phrasing the same fix its own way — the
command to run on the CLI and in the script, the keys to press in the chat (STYLE 15)."""

from __future__ import annotations

import pytest

from deeting_tui.cli import CliError, UsageError, error_text
from deeting_tui.command_output import cli_hint, error_line, event_line
from deeting_tui.errors import DeetingError, Fix, Hint, is_known
from deeting_tui.kernel.arguments import ArgumentError
from deeting_tui.kernel.events import ErrorEvent, from_json
from deeting_tui.kernel.sessions.store import SessionNotFound, SessionStoreError
from deeting_tui.kernel.tools import ToolConflict
from deeting_tui.llm.model import ProviderError
from deeting_tui.paths import ConfigError
from deeting_tui.plugin.archive import ArchiveError
from deeting_tui.plugin.manifest import ManifestError, Problem
from deeting_tui.plugin.scopes import ScopeError
from deeting_tui.plugin.triggers import TriggerRegexError
from deeting_tui.ui.hints import chat_error, chat_event_line, chat_hint

GRANT = Hint(Fix.GRANT, "notes", "fs:read:~/notes")


@pytest.mark.parametrize(
    "error",
    [
        ConfigError("config.toml: unknown key 'x'"),
        ToolConflict("'b' brings tool 'echo'", Hint(Fix.DISABLE, "a")),
        SessionStoreError("the session store is damaged"),
        SessionNotFound("abc"),
        ManifestError([Problem("kimai.json", "name", "is missing")]),
        ArchiveError("bad entry"),
        ScopeError("bad scope"),
        ProviderError("the API key was refused", kind="auth"),
        ArgumentError("bad arguments"),
        TriggerRegexError("bad pattern"),
        CliError("a command failed"),
        UsageError("bad usage"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_error_a_person_can_act_on_is_known(error: Exception) -> None:
    assert isinstance(error, DeetingError) and is_known(error)
    assert type(error).__name__ not in error_text(error)  # said as its line, not as Python


@pytest.mark.parametrize("cls", [ArchiveError, ScopeError, ArgumentError, TriggerRegexError])
def test_the_value_errors_are_still_value_errors(cls: type[Exception]) -> None:
    """Callers catch these as ValueError (parsing input): joining the family keeps that."""
    with pytest.raises(ValueError, match="the words"):
        raise cls("the words")
    assert str(cls("the words")) == "the words"


def test_a_bug_is_not_known_and_says_its_type_and_how_to_see_more() -> None:
    bug = KeyError("surprise")
    assert not is_known(bug)
    assert error_text(bug) == "KeyError: 'surprise' (DEETING_DEBUG=1 shows the traceback)"
    assert chat_error(bug).startswith("KeyError: ")


def test_one_hint_phrased_by_each_front_end() -> None:
    error = DeetingError("'notes' may not read ~/notes", GRANT)
    assert str(error) == "'notes' may not read ~/notes"  # the message alone: no command in it
    cli = "'notes' may not read ~/notes — run: deeting plugin grant notes fs:read:~/notes"
    assert error_line(error) == cli
    assert error_text(error) == cli
    event = from_json({"type": "error", "message": error.message, "hint": GRANT.as_data()})
    assert isinstance(event, ErrorEvent)
    assert event_line(event) == cli  # the script says what the CLI says
    chat = chat_error(error)
    assert chat == (
        "'notes' may not read ~/notes — press F2, select notes, press g and grant fs:read:~/notes"
    )
    assert chat_event_line(event) == chat
    assert (
        chat_hint(GRANT, on_plugin_screen=True) == "select notes, press g and grant fs:read:~/notes"
    )


@pytest.mark.parametrize(
    ("hint", "key"),
    [
        (Hint(Fix.GRANT, "p", "network"), "press g"),
        (Hint(Fix.REVOKE, "p", "network"), "press g"),
        (Hint(Fix.ENABLE, "p"), "press e"),
        (Hint(Fix.DISABLE, "p"), "press d"),
        (Hint(Fix.INSTALL), "press i"),
        (Hint(Fix.INSTALL, "p", "1.2.0"), "press i and enter p@1.2.0"),
        (Hint(Fix.UNINSTALL, "p"), "press x"),
        (Hint(Fix.UPGRADE, "p"), "press u"),
        (Hint(Fix.INFO, "p"), "select p"),
        (Hint(Fix.LIST), "press F2"),
    ],
)
def test_the_chat_names_the_key_never_a_shell_command_a_key_does(hint: Hint, key: str) -> None:
    said = chat_hint(hint)
    assert key in said and "deeting " not in said and "run" not in said, said
    assert cli_hint(hint).startswith("deeting plugin ")


@pytest.mark.parametrize(
    "hint",
    [
        Hint(Fix.ROLLBACK, "p"),
        Hint(Fix.SYNC),
        Hint(Fix.UPGRADE, "p", "1.0.0", ("--allow-downgrade",)),
    ],
)
def test_what_no_key_does_is_the_command_to_run_in_a_shell(hint: Hint) -> None:
    assert chat_hint(hint) == f"run in a shell: {cli_hint(hint)}"


def test_a_plugin_controlled_hint_is_neutralised_in_the_chat() -> None:
    """A plugin's name or scope in a hint reaches the chat's widgets through the neutraliser."""
    hint = Hint(Fix.GRANT, "evil\x1b]0;owned\x07", "fs:read:/tmp/\x1b[2J\u202e")
    said = chat_hint(hint)
    assert "\x1b" not in said and "\x07" not in said and "\u202e" not in said, repr(said)
    line = error_text(DeetingError("refused \x1b[31mred", hint))
    assert "\x1b" not in line and "\u202e" not in line and "\n" not in line, repr(line)


def test_hint_data_round_trips_and_junk_is_no_hint() -> None:
    for hint in (GRANT, Hint(Fix.SYNC), Hint(Fix.UPGRADE, "p", "1.0.0", ("--allow-downgrade",))):
        assert Hint.from_data(hint.as_data()) == hint
    assert Hint.as_data(Hint(Fix.INSTALL)) == {"fix": "install"}  # no nulls in an event
    for junk in (None, "grant", {}, {"fix": "explode"}, {"fix": 3}, [1]):
        assert Hint.from_data(junk) is None
    odd = Hint.from_data({"fix": "enable", "plugin": 5, "flags": "--x"})
    assert odd == Hint(Fix.ENABLE)  # wrong-typed parts dropped, the fix kept
    unreadable = from_json({"type": "error", "message": "m", "hint": {"fix": "explode"}})
    assert isinstance(unreadable, ErrorEvent)
    assert event_line(unreadable) == "m"
