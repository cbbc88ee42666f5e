"""The neutraliser (deeting_tui/terminal_text.py): what becomes of each kind of control, on
clean, hostile, huge and non-UTF-8-derived input; and the --json escaper, which must keep the
exact value."""

from __future__ import annotations

import ast
import io
import json
import logging
import random
import sys
from pathlib import Path

import orjson
import pytest
from support import REPO
from terminal_support import active

from deeting_tui.terminal_text import (
    TerminalSafeLastResort,
    neutralise,
    neutralise_line,
    neutralise_tree,
    one_line,
    terminal_safe_json,
)

R = "\N{REPLACEMENT CHARACTER}"

CASES = [
    # Clean text comes back as it is: newlines, tabs, any script, emoji, bidi marks.
    ("plain text", "plain text"),
    ("two\nlines\tand a tab", "two\nlines\tand a tab"),
    ("ünïcödé 日本語 🙂 مرحبا\u200f \u200e\u061c", "ünïcödé 日本語 🙂 مرحبا\u200f \u200e\u061c"),
    ("[bold]markup[/bold] stays text", "[bold]markup[/bold] stays text"),
    # OSC (title, clipboard, hyperlink), each terminator, and cut short.
    ("a\x1b]0;PWNED\x07b", "ab"),
    ("a\x1b]2;PWNED\x1b\\b", "ab"),
    ("a\x1b]52;c;ZXZpbA==\x07b", "ab"),
    ("a\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\b", "alinkb"),
    ("a\x9d0;PWNED\x9cb", "ab"),
    ("a\x1b]0;PWNED", "a"),
    ("a\x1b]0;PWNED\nnext line", "a\nnext line"),  # never past the end of its line
    ("a\x1b]0;PW\x18NED", f"a{R}NED"),  # CAN cuts a string sequence
    # CSI: clear, colours, private modes, 8-bit, cut short.
    ("a\x1b[2Jb", "ab"),
    ("a\x1b[38;5;196mred\x1b[0mb", "aredb"),
    ("\x1b[?1049h\x1b[?25l", ""),
    ("a\x9b31mb", "ab"),
    ("a\x9b", "a"),
    ("a\x1b[12", "a"),
    ("a\x1b[1;2 qb", "ab"),  # with an intermediate byte
    # DCS, SOS, PM, APC.
    ("a\x1bP1$r\x1b\\b", "ab"),
    ("a\x1bXsos\x1b\\b", "ab"),
    ("a\x1b^pm\x07b", "ab"),
    ("a\x1b_apc\x1b\\b", "ab"),
    ("a\x90dcs\x9cb", "ab"),
    # ESC with intermediates and one final character: reset, charset, save cursor.
    ("a\x1bcb", "ab"),
    ("a\x1b(Bb", "ab"),
    ("a\x1b7b\x1b#8", "ab"),
    # A lone ESC and other lone controls: U+FFFD, so something withheld stays visible.
    ("a\x1b", f"a{R}"),
    ("a\x1b\x1b[31mb", f"a{R}b"),
    ("a\x1b(", f"a{R}("),
    ("nul\x00bell\x07bs\x08vt\x0bff\x0cdel\x7f", f"nul{R}bell{R}bs{R}vt{R}ff{R}del{R}"),
    ("rm\x08\x08ls", f"rm{R}{R}ls"),
    ("c1 \x85 \x9c \x80", f"c1 {R} {R} {R}"),
    # A carriage return would write over the line: a newline instead.
    ("safe\rEVIL", "safe\nEVIL"),
    ("windows\r\nline", "windows\nline"),
    ("a\r\r\nb", "a\n\nb"),
    # Bidi embeddings, overrides and isolates go: the text shows in stored order.
    ("\u202eexe.txt\u202c", "exe.txt"),
    ("a\u202a\u202b\u202d\u2066\u2067\u2068\u2069b", "ab"),
    # A lone surrogate (surrogateescape) would re-encode to a raw byte: U+FFFD.
    (b"bad \x9b byte".decode("utf-8", "surrogateescape"), f"bad {R} byte"),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_neutralise(raw: str, expected: str) -> None:
    assert neutralise(raw) == expected
    assert neutralise(expected) == expected  # idempotent
    assert not active(expected)


def test_a_clean_string_comes_back_unchanged() -> None:
    text = "nothing to do here\n" * 100
    assert neutralise(text) is text


def test_a_sequence_cut_in_two_is_harmless_in_each_piece() -> None:
    """A stream delta may end inside a sequence: each piece is neutralised alone."""
    attack = "x\x1b]0;PWNED\x07y\x1b[2Jz\x9b31m"
    for cut in range(len(attack) + 1):
        pieces = neutralise(attack[:cut]) + neutralise(attack[cut:])
        assert not active(pieces), (cut, pieces)


def test_random_hostile_input_never_keeps_a_control() -> None:
    alphabet = "ab \n\t\r\x1b\x07\x9b\x9c\x9d\x90[]();P_^X\\0123m\u202e\u2066\x00\x7f\x85\udc80é"
    rng = random.Random(12)
    for _ in range(3000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        out = neutralise(raw)
        assert not active(out), repr(raw)
        assert "\r" not in out and neutralise(out) == out
        out.encode("utf-8")  # always encodable


def test_huge_and_degenerate_input_is_handled_in_one_pass() -> None:
    """Linear by construction (one compiled pattern, no nested repetition, every repeated
    class stops at the next ESC); this only shows such input comes out right."""
    attack = "title\x1b]0;PWNED\x07\x1b]52;c;ZXZpbA==\x07\x1b[2J\x9b31m\u202e"
    huge = attack * (10_000_000 // len(attack))
    assert neutralise(huge) == "title" * (10_000_000 // len(attack))
    assert neutralise("\x1b" * 1_000_000) == R * 1_000_000
    assert neutralise("\x1b]" * 500_000) == ""
    assert neutralise("\x1b]0;" + "x" * 10_000_000) == ""
    assert neutralise("\x1b[" + "1;" * 1_000_000 + "m!") == "!"
    surrogates = b"\xff\x9b".decode("utf-8", "surrogateescape") * 500_000
    assert neutralise(surrogates) == R * 1_000_000


def test_one_line_and_neutralise_line() -> None:
    assert one_line("  a\n\tb\r\nc\x1b]0;PWNED\x07  ") == "a b c"
    assert one_line("\x1b[2J\u202e") == ""
    # A listing's line keeps its columns; a newline cannot start a forged line.
    assert neutralise_line("ok  name\x1b[2J  1.0\rok  forged") == "ok  name  1.0 ok  forged"


def test_neutralise_tree_cleans_every_string_and_keeps_the_original() -> None:
    attack = "\x1b]0;PWNED\x07x"
    event = {
        "type": "tool_result",
        "ok": True,
        "duration_ms": 1.5,
        "data": {attack: [attack, {"deep": (attack, 3, None, False)}]},
        "text": attack,
    }
    original = json.dumps(event)
    cleaned = neutralise_tree(event)
    assert cleaned == {
        "type": "tool_result",
        "ok": True,
        "duration_ms": 1.5,
        "data": {"x": ["x", {"deep": ["x", 3, None, False]}]},
        "text": "x",
    }
    assert json.dumps(event) == original  # the kernel's copy is untouched
    assert neutralise_tree(attack) == "x" and neutralise_tree(7) == 7


def test_neutralise_tree_takes_any_depth() -> None:
    nested: list[object] = []
    inner = nested
    for _ in range(100_000):  # far past the interpreter's recursion limit
        deeper: list[object] = []
        inner.append(deeper)
        inner = deeper
    inner.append("\x1b[2Jend")
    cleaned = neutralise_tree(nested)
    for _ in range(100_000):
        cleaned = cleaned[0]
    assert cleaned == ["end"]


def test_json_for_a_terminal_is_the_same_json() -> None:
    value = {
        "a\x9b": "x\x7f\u202e\u2066\u2069\x85\x1b[2J é 日本 🙂 \u200f",
        "list": ["\x9d0;t\x9c", 1, None],
    }
    raw = orjson.dumps(value)
    safe = terminal_safe_json(raw)
    assert json.loads(safe) == value and orjson.loads(safe) == value
    assert not active(safe.decode())
    assert terminal_safe_json(b'{"plain": "text \xc3\xa9"}') == b'{"plain": "text \xc3\xa9"}'


def test_the_kernels_warnings_reach_stderr_neutralised(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    handler = TerminalSafeLastResort()
    record = logging.LogRecord(
        "deeting.loader",
        logging.WARNING,
        __file__,
        1,
        "deactivate failed: %s",
        ("\x1b]0;T\x07x\ry",),
        None,
    )
    handler.handle(record)
    try:
        raise RuntimeError("boom \x1b[2J")
    except RuntimeError:
        failed = logging.LogRecord(
            "deeting.kernel", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    handler.handle(failed)
    written = err.getvalue()
    assert written.startswith("deactivate failed: x y\nfailed\nTraceback")
    assert written.endswith("RuntimeError: boom \n")  # the traceback, neutralised
    assert not active(written)


def test_the_neutraliser_depends_on_nothing() -> None:
    """The kernel, the CLI, the renderers and the UI all import it: it imports only stdlib."""
    path = REPO / "deeting_tui" / "terminal_text.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    assert found <= {"__future__", "collections.abc", "logging", "re", "sys", "typing"}, found


def test_quote_prefix_keeps_a_short_prefix_and_counts_the_rest() -> None:
    from deeting_tui.terminal_text import quote_prefix

    assert quote_prefix("short\nline") == "short line"
    quoted = quote_prefix("a\x1b]0;x\x07" + "b" * 10_000_000, limit=20)
    assert quoted.startswith("a") and "\x1b" not in quoted
    assert quoted.endswith("… (9,999,987 more characters)")
    assert len(quoted) < 60
