"""Triggers run on RE2: patterns it cannot run in linear time are refused, naming the construct,
and the official plugins' triggers match what they did under Python's ``re``."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from ci.lint import main as lint_main
from deeting_tui.plugin.checker import check_plugin, load_plugin
from deeting_tui.plugin.triggers import TriggerRegexError, TriggerSet, compile_trigger

MakePlugin = Callable[..., Path]
OFFICIAL = Path(__file__).resolve().parents[2] / "plugins"


@pytest.mark.parametrize(
    ("regex", "construct"),
    [
        (r"^(\w+)\s\1$", r"a backreference \1 is not supported"),
        (r"^(?P<w>\w+) (?P=w)$", "a named backreference (?P=name) is not supported"),
        (r"^note(?=:)", "a lookahead (?=…) is not supported"),
        (r"^note(?!s)", "a negative lookahead (?!…) is not supported"),
        (r"(?<=@)\w+", "a lookbehind (?<=…) is not supported"),
        (r"(?<!@)\w+", "a negative lookbehind (?<!…) is not supported"),
        (r"^\w++$", "the possessive quantifier ++ is not supported"),
        (r"^\d*+$", "the possessive quantifier *+ is not supported"),
        (r"^(?>a|ab)c$", "an atomic group (?>…) is not supported"),
        (r"^(<)?a(?(1)>)$", "a conditional group (?(…)…) is not supported"),
        (r"^note\Z", r"\Z is not supported: write \z (or $)"),
        (r"(?x) note", "the inline flag (?x…) is not supported"),
        (r"^a{2000}$", "the repetition {2000} is too large"),
        (r"^(note", "bad regex: missing ): ^(note"),
    ],
)
def test_constructs_re2_cannot_run_are_named(
    make_plugin: MakePlugin, regex: str, construct: str
) -> None:
    root = make_plugin(kimai={"trigger": {"regex": regex, "tool": "echo"}})
    spec, problems = check_plugin(root)
    assert spec is None
    lines = [str(p) for p in problems]
    assert len(lines) == 1 and lines[0].startswith("kimai.json: trigger.regex: "), lines
    assert construct in lines[0], lines


def test_lint_prints_the_construct_and_fails(
    make_plugin: MakePlugin, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_plugin(kimai={"trigger": {"regex": r"^(\w+) \1$", "tool": "echo"}})
    assert lint_main([str(root)]) == 1
    out = capsys.readouterr()
    assert r"trigger.regex: a backreference \1 is not supported" in out.out
    assert "re2.cc" not in out.err  # RE2's own logging stays off the terminal


def test_the_catastrophic_backtracking_pattern_runs_in_linear_time() -> None:
    """Python's re takes ~2^n steps for this on n word characters and a non-matching end;
    RE2 takes one pass. Timing is not asserted (see bench/triggers.py); the answer is."""
    pattern = compile_trigger(r"^(\w+\s?)*$")
    text = "a" * 40 + "!"
    assert pattern.search(text) is None
    assert pattern.search("a b c") is not None


def test_official_triggers_still_route_their_messages() -> None:
    cases = {
        "calc": [("calc 2+3", {"expr": "2+3"}), ("= sqrt(2)", {"expr": "sqrt(2)"})],
        "notes": [("note: buy milk", {"text": "buy milk"}), ("note:x", {"text": "x"})],
        "clock": [
            ("timer 5m tea", {"duration": "5m", "label": "tea"}),
            ("remind me in 10s", {"duration": "10s", "label": None}),
        ],
        "sysinfo": [("SysInfo", {}), ("system status?", {})],
        "weather": [("Weather in Zürich?", {"location": "Zürich"}), ("forecast FOR Oslo", {})],
    }
    for name, messages in cases.items():
        spec = load_plugin(OFFICIAL / name)
        assert spec.trigger is not None
        for text, groups in messages:
            ours = spec.trigger.pattern.search(text)
            theirs = re.search(spec.trigger.regex, text)  # what the kernel used before
            assert ours is not None and theirs is not None, (name, text)
            assert ours.groupdict() == theirs.groupdict(), (name, text)
            for key, value in groups.items():
                assert ours.groupdict()[key] == value, (name, text, key)
        assert spec.trigger.pattern.search("hello there") is None, name


def test_a_set_says_which_triggers_match_in_one_pass() -> None:
    triggers = TriggerSet([r"^note:\s*(?P<text>.+)$", r"^(\w+\s?)*$", r"(?i)^calc "])
    assert triggers.matching("note: hi") == {0}
    assert triggers.matching("hello world") == {1}
    assert triggers.matching("CALC 2") == {1, 2}
    assert triggers.matching("?!") == set()
    assert TriggerSet([]).matching("anything") == set()


def test_compile_trigger_raises_its_own_error() -> None:
    with pytest.raises(TriggerRegexError, match="lookahead"):
        compile_trigger("a(?=b)")
