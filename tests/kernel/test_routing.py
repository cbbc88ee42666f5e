"""Who is offered a message first: triggers in one RE2 pass (priority, then install order),
then plugins allowed to read messages, then the assistant; and what reaches the kernel is
clamped to the documented priority range."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import FIXTURES, events_of

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.plugins.loader import PluginRuntime
from deeting_tui.kernel.routing import (
    ASSISTANT_PRIORITY,
    INLINE_MATCH_CHARS,
    MAX_TRIGGER_TEXT,
    TRIGGER_BAND,
    Trigger,
    TriggerTable,
    clamp_priority,
)
from deeting_tui.plugin.checker import load_plugin
from deeting_tui.plugin.manifest import EventSubscription
from deeting_tui.plugin.scopes import parse_scope
from deeting_tui.plugin.triggers import compile_trigger

GOOD = FIXTURES / "good_plugin"
EAVESDROP = FIXTURES / "hostile" / "eavesdrop"


def _trigger(plugin: str, regex: str, priority: int, installed_at: float) -> Trigger:
    return Trigger(plugin, f"{plugin}_tool", compile_trigger(regex), priority, installed_at)


def test_candidates_come_in_priority_then_install_order() -> None:
    table = TriggerTable(
        [
            _trigger("late", "^echo ", 50, installed_at=300.0),
            _trigger("early", "^echo ", 50, installed_at=100.0),
            _trigger("high", "^echo ", 60, installed_at=400.0),
            _trigger("other", "^calc ", 90, installed_at=50.0),
        ]
    )
    assert [t.plugin for t in table.candidates("echo hi")] == ["high", "early", "late"]
    assert [t.plugin for t in table.candidates("calc 1")] == ["other"]
    assert table.candidates("nothing") == []
    smaller = table.without("high")
    assert [t.plugin for t in smaller.candidates("echo hi")] == ["early", "late"]
    assert len(table) == 4  # tables are immutable: a routing in progress keeps its own
    replaced = table.with_trigger(_trigger("late", "^calc ", 100, installed_at=300.0))
    assert [t.plugin for t in replaced.candidates("calc 1")] == ["late", "other"]


def test_text_over_the_cap_is_not_offered_to_triggers() -> None:
    table = TriggerTable([_trigger("any", ".", 50, 1.0)])
    assert table.candidates("x" * MAX_TRIGGER_TEXT) != []
    assert table.candidates("x" * (MAX_TRIGGER_TEXT + 1)) == []


@pytest.mark.parametrize(
    ("value", "clamped"),
    [(50, 50), (-5, 0), (1_000_000, 100), (10**100, 100), (55.7, 55), (True, 7), ("9", 7)],
)
def test_priorities_are_clamped_to_the_documented_range(value: object, clamped: int) -> None:
    assert clamp_priority(value, default=7) == clamped
    assert clamp_priority(float("nan"), default=7) == 7


def test_the_bands_keep_triggers_above_readers_above_the_assistant() -> None:
    assert TRIGGER_BAND > clamp_priority(10**9) > clamp_priority(-(10**9)) > ASSISTANT_PRIORITY


def _copy(tmp_path: Path, source: Path, name: str, **kimai_changes: Any) -> Path:
    target = tmp_path / name
    shutil.copytree(source, target)
    for file in ("kimai.json", "package.json"):
        document = orjson.loads((target / file).read_bytes())
        document["name"] = name
        if file == "kimai.json":
            document.update(kimai_changes)
        (target / file).write_bytes(orjson.dumps(document))
    return target


def _tool_renamed(folder: Path, old: str, new: str) -> None:
    tools = folder / "llm-tool.yaml"
    tools.write_text(tools.read_text().replace(f"name: {old}", f"name: {new}"))


async def test_equal_priorities_go_to_the_earlier_installed_plugin(
    kernel: Kernel, tmp_path: Path
) -> None:
    first = _copy(tmp_path, GOOD, "first", trigger={"regex": "^echo (?P<text>.+)$", "tool": "echo"})
    second = _copy(
        tmp_path, GOOD, "second", trigger={"regex": "^echo (?P<text>.+)$", "tool": "echo2"}
    )
    _tool_renamed(second, "echo", "echo2")
    _tool_renamed(second, "add", "add2")
    await kernel.loader.install(first)
    await kernel.loader.install(second)
    # Restarting the first makes it the later subscriber: install order still decides.
    await kernel.loader.disable("first")
    await kernel.loader.enable("first")
    session = kernel.open_session()
    seen = events_of(kernel)
    await kernel.submit(session.id, "echo who answers")
    assert [e["plugin"] for e in seen if e["type"] == "tool_call"] == ["first"]
    # So does a reinstall: it keeps its place.
    installed_at = kernel.installed.get("first").installed_at  # type: ignore[union-attr]
    await kernel.loader.install(first, force=True)
    assert kernel.installed.get("first").installed_at == installed_at  # type: ignore[union-attr]
    seen.clear()
    await kernel.submit(session.id, "echo who answers now")
    assert [e["plugin"] for e in seen if e["type"] == "tool_call"] == ["first"]


async def test_long_messages_are_matched_off_the_loop_and_too_long_ones_skip_triggers(
    kernel: Kernel,
) -> None:
    await kernel.loader.install(GOOD)
    session = kernel.open_session()
    seen = events_of(kernel)
    long = "echo " + "x" * (INLINE_MATCH_CHARS * 2)
    assert not (await kernel.submit(session.id, long)).failed
    assert [e["tool"] for e in seen if e["type"] == "tool_call"] == ["echo"]
    seen.clear()
    too_long = "echo " + "x" * MAX_TRIGGER_TEXT
    assert not (await kernel.submit(session.id, too_long)).failed
    assert not [e for e in seen if e["type"] == "tool_call"]  # on to the assistant
    assert [e["provider"] for e in seen if e["type"] == "reply"] == ["offline"]


def _reader_runtime(kernel: Kernel, scopes: list[str], priority: int) -> PluginRuntime:
    """The eavesdrop plugin's spec with an out-of-range priority, as if it had reached the
    kernel without the manifest checker; its worker is never started."""
    spec = load_plugin(EAVESDROP)
    spec = dataclasses.replace(
        spec, events=(EventSubscription("user.message", priority), EventSubscription("*", 5))
    )
    granted = [parse_scope(text) for text in scopes]
    return PluginRuntime(spec, kernel.loader.supervisor_for(spec, scopes=granted))


def _owners(kernel: Kernel, topic: str) -> list[tuple[str | None, int]]:
    return [(s.owner, s.priority) for s in kernel.bus.subscribers(topic)]


async def test_user_input_subscriptions_are_wired_only_with_the_messages_grant(
    kernel: Kernel,
) -> None:
    runtime = _reader_runtime(kernel, [], priority=1_000_000)
    kernel.attach(runtime)
    assert _owners(kernel, "user.message") == [(None, TRIGGER_BAND), (None, ASSISTANT_PRIORITY)]
    assert _owners(kernel, "user.image") == []
    assert _owners(kernel, "system.tick") == []  # '*' reads user input too: not wired at all
    kernel.detach(runtime)

    runtime = _reader_runtime(kernel, ["messages"], priority=1_000_000)
    kernel.attach(runtime)
    assert _owners(kernel, "user.message") == [
        (None, TRIGGER_BAND),
        ("eavesdrop", 100),  # clamped: below every trigger, above the assistant
        ("eavesdrop", 5),
        (None, ASSISTANT_PRIORITY),
    ]
    assert _owners(kernel, "system.tick") == [("eavesdrop", 5)]
    kernel.detach(runtime)
    assert _owners(kernel, "user.message") == [(None, TRIGGER_BAND), (None, ASSISTANT_PRIORITY)]
