"""A trigger's optional ``examples``: what help shows the user to type, instead of its regex.

Each example must be a message the trigger routes, so help never teaches a message that would
go to the assistant instead; manifests without examples stay valid.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from support import FIXTURES, OFFICIAL

from deeting_tui.kernel.assistant import ToolInfo
from deeting_tui.llm.offline import help_text
from deeting_tui.plugin.checker import check_plugin, load_plugin

GOOD = FIXTURES / "good_plugin"


def _with_trigger(tmp_path: Path, **trigger: Any) -> Path:
    plugin = tmp_path / "echo-fixture"
    shutil.copytree(GOOD, plugin, ignore=shutil.ignore_patterns("__pycache__"))
    kimai = json.loads((plugin / "kimai.json").read_text())
    kimai["trigger"].update(trigger)
    (plugin / "kimai.json").write_text(json.dumps(kimai))
    return plugin


def test_examples_that_the_trigger_routes_become_the_spec(tmp_path: Path) -> None:
    spec = load_plugin(_with_trigger(tmp_path, examples=["echo hello", "echo two words"]))
    assert spec.trigger is not None
    assert spec.trigger.examples == ("echo hello", "echo two words")


def test_a_manifest_without_examples_stays_valid() -> None:
    spec = load_plugin(GOOD)
    assert spec.trigger is not None and spec.trigger.examples == ()


@pytest.mark.parametrize(
    ("examples", "problem"),
    [
        (
            ["echo hi", "shout hi"],
            "kimai.json: trigger.examples[1]: 'shout hi' does not match the trigger's regex",
        ),
        ("echo hi", "kimai.json: trigger.examples"),
        ([7], "kimai.json: trigger.examples[0]"),
        ([""], "kimai.json: trigger.examples[0]"),
        (["echo a\x1b]0;x\x07"], "kimai.json: trigger.examples[0]"),
        ([f"echo {n}" for n in range(6)], "kimai.json: trigger.examples"),
        (["echo " + "x" * 100], "kimai.json: trigger.examples[0]"),
    ],
)
def test_bad_examples_are_refused(tmp_path: Path, examples: Any, problem: str) -> None:
    spec, problems = check_plugin(_with_trigger(tmp_path, examples=examples))
    assert spec is None
    assert len(problems) == 1 and str(problems[0]).startswith(problem), problems


def test_help_shows_examples_not_the_regex() -> None:
    tool = ToolInfo(
        "calc",
        "calc",
        "Evaluate an arithmetic expression.",
        {"type": "object", "properties": {"expr": {"type": "string"}}, "required": ["expr"]},
        trigger=r"^(?:calc\s+|=\s*)(?P<expr>.+)$",
        trigger_examples=("calc 2+3", "= sqrt(2)"),
    )
    text = help_text([tool])
    assert "  - or type: `calc 2+3`, `= sqrt(2)`" in text
    assert "(?P<" not in text and "\\s" not in text


@pytest.mark.parametrize("plugin", sorted(p.name for p in OFFICIAL.iterdir() if p.is_dir()))
def test_every_official_trigger_has_examples_it_routes(plugin: str) -> None:
    spec = load_plugin(OFFICIAL / plugin)
    if spec.trigger is None:
        return
    assert spec.trigger.examples, f"{plugin}: give its trigger examples"
    for example in spec.trigger.examples:
        assert spec.trigger.pattern.search(example) is not None
