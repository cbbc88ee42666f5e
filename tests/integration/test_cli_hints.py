"""The CLI's and the script's side of the error family: a fix carried as a Hint is said as the
command to run (``… — run: deeting plugin …``), in the one error line of the command, the
script's error and notice lines, and the offline assistant's reply; ``--json`` carries the
hint as data beside the text."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import orjson
import pytest
from support import FIXTURES, run_deeting

from deeting_tui.cli import error_text
from deeting_tui.errors import DeetingError, Fix, Hint, is_known
from deeting_tui.headless import ScriptPrinter
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.plugins.loader import PluginError

GOOD = FIXTURES / "good_plugin"


def _twin(tmp_path: Path) -> Path:
    """The good plugin under another name: its tools clash with the original's."""
    twin = tmp_path / "twin"
    shutil.copytree(GOOD, twin)
    for name in ("kimai.json", "package.json"):
        data = orjson.loads((twin / name).read_bytes())
        (twin / name).write_bytes(orjson.dumps({**data, "name": "echo-twin"}))
    return twin


async def test_a_tool_clash_says_which_plugin_to_disable_as_a_command(
    kernel: Kernel, tmp_path: Path
) -> None:
    await kernel.loader.install(GOOD)
    report = await kernel.loader.install(_twin(tmp_path))
    assert not report.enabled
    with pytest.raises(PluginError) as refused:  # what the loader expects of a refusal
        await kernel.loader.enable("echo-twin")
    error = refused.value
    assert is_known(error) and isinstance(error, DeetingError)
    assert error.hint == Hint(Fix.DISABLE, "echo-fixture")
    assert "deeting plugin" not in str(error)  # the fix is data, not words in the message
    line = error_text(error)
    assert line.startswith("'echo-twin' brings tool "), line
    assert line.endswith(" — run: deeting plugin disable echo-fixture"), line
    assert "Error" not in line


def test_the_offline_reply_with_no_plugin_says_the_command_and_json_the_data(
    home: Path,
) -> None:
    plain = run_deeting("--script", "-", home=home, stdin="hello\n")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == (
        "I'm the offline assistant and no plugins are enabled yet: install one"
        " — run: deeting plugin install PATH\n"
    )
    as_json = run_deeting("--script", "-", "--json", home=home, stdin="hello\n")
    (reply,) = [orjson.loads(line) for line in as_json.stdout.splitlines()]
    assert reply["type"] == "reply" and "deeting plugin" not in reply["text"]
    assert reply["hint"] == {"fix": "install"}


@pytest.mark.parametrize("json_mode", [False, True])
def test_the_script_says_a_notice_and_an_error_with_the_command_that_fixes_it(
    json_mode: bool,
) -> None:
    out, err = io.BytesIO(), io.StringIO()
    printer = ScriptPrinter(out, err, json_mode=json_mode)
    hint = Hint(Fix.DISABLE, "p").as_data()
    printer({"type": "plugin_notice", "plugin": "p", "message": "p: frame dropped", "hint": hint})
    printer({"type": "error", "session_id": "s", "message": "p \x1b[2Jbroke", "hint": hint})
    assert err.getvalue() == (
        "notice: p: frame dropped — run: deeting plugin disable p\n"
        "deeting: error: p broke — run: deeting plugin disable p\n"
    )
