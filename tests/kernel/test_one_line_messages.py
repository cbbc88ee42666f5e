"""Plugin-controlled text the kernel keeps for a message goes through terminal_text.one_line:
one line and neutralised, so an escape sequence in a refusal or a progress note never reaches
the terminal (they used to only fold whitespace)."""

from __future__ import annotations

from pathlib import Path

from deeting_tui.workers.denials import DenialReporter
from deeting_tui.workers.supervisor import _progress_report

HOSTILE = "evil\x1b]0;owned\x07 host\n\tnext line"


def test_a_refusal_message_is_one_neutral_line(tmp_path: Path) -> None:
    told: list[str] = []
    reporter = DenialReporter("demo", tmp_path / "log", lambda m, _hint: told.append(m))
    reporter.network_refused(HOSTILE)
    message = reporter.network_refusal_since(0.0)
    assert message is not None
    assert "\x1b" not in message and "\x07" not in message and "\n" not in message
    assert message.startswith("evil") and message.endswith("host next line")
    assert told and all("\x1b" not in line for line in told)


def test_a_progress_note_is_one_neutral_line() -> None:
    report = _progress_report({"fraction": 0.5, "message": HOSTILE})
    assert report is not None
    fraction, message = report
    assert fraction == 0.5
    assert "\x1b" not in message and "\n" not in message and "\t" not in message
