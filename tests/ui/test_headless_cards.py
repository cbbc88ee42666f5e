"""Headless mode on a terminal draws tool results as the chat's cards; piped, it does not."""

from __future__ import annotations

import io

from deeting_tui.headless import ScriptPrinter

RESULT = {
    "type": "tool_result",
    "session_id": "s",
    "ok": True,
    "renderer": "key-value",
    "data": {"title": "Machine", "items": [{"key": "cpu", "value": "12 %"}]},
    "text": "cpu 12 %",
}


def test_cards_on_a_terminal() -> None:
    out, err = io.BytesIO(), io.StringIO()
    printer = ScriptPrinter(out, err, json_mode=False, cards=True)
    printer(RESULT)
    printer({"type": "reply", "session_id": "s", "text": "done"})
    text = out.getvalue().decode()
    assert "cpu" in text and "12 %" in text and text.rstrip().endswith("done")


def test_no_cards_when_piped_or_in_json_mode() -> None:
    import json

    piped = io.BytesIO()
    ScriptPrinter(piped, io.StringIO(), json_mode=False, cards=False)(RESULT)
    assert piped.getvalue() == b""  # plain piped output is only reply text (README)
    lines = io.BytesIO()
    ScriptPrinter(lines, io.StringIO(), json_mode=True, cards=True)(RESULT)
    (line,) = lines.getvalue().decode().splitlines()
    assert json.loads(line)["type"] == "tool_result"


def test_plugin_notices_go_to_stderr_in_both_modes() -> None:
    """An upgrade made elsewhere, a crash or a refused follow: said on stderr, never mixed
    into stdout (whose JSON Lines carry only the contract's event types)."""
    notice = {"type": "plugin_notice", "plugin": "calc", "message": "upgraded calc\n1.0 → 1.1"}
    for json_mode in (False, True):
        out, err = io.BytesIO(), io.StringIO()
        ScriptPrinter(out, err, json_mode=json_mode)(notice)
        assert out.getvalue() == b""
        assert err.getvalue() == "notice: upgraded calc 1.0 → 1.1\n"
