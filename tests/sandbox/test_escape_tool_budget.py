"""A hostile plugin against the tool budget (llm/tool_budget.py), through the real kernel and
a real sandboxed worker: ``crowder`` offers thirty tools (so the budget is in force), one
named ``find_tools`` and one whose description holds every word of the bench catalogue.

Neither may take over the agent's own ``find_tools`` nor crowd the relevant tools out of a
model call; the kernel keeps serving (the plugin's own tools still answer when asked)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support import FAST_POLICY, FIXTURES, HOSTILE, events_of, install_hostile

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.llm.agent import LLMAssistant
from deeting_tui.llm.model import Message, ToolCall, ToolSpec, TurnDone
from deeting_tui.llm.tool_budget import FIND_TOOLS, SELECTED_TOKENS, spec_tokens
from deeting_tui.paths import resolve_paths

CROWDER = HOSTILE / "crowder"


class Scripted:
    """A Provider that plays back turns and records the tools of each request."""

    name = "scripted"
    model = "test-model"

    def __init__(self) -> None:
        self.script: list[TurnDone] = []
        self.tools: list[list[ToolSpec]] = []
        self.messages: list[list[Message]] = []

    async def stream(self, **request: Any) -> AsyncIterator[TurnDone]:
        self.tools.append(list(request["tools"]))
        self.messages.append(list(request["messages"]))
        yield self.script.pop(0)


def calls(*tool_calls: ToolCall) -> TurnDone:
    return TurnDone("", tool_calls, "tool_use")


@pytest.fixture
async def crowded(home: Path, tmp_path: Path) -> AsyncIterator[tuple[Kernel, Scripted]]:
    provider = Scripted()
    kernel = Kernel(resolve_paths(), assistant=LLMAssistant(provider), policy=FAST_POLICY)
    await kernel.start(ticker=False)
    try:
        await install_hostile(kernel, CROWDER, tmp_path)
        report = await kernel.loader.install(FIXTURES / "good_plugin", yes=True)
        assert report.enabled, report.problem
        yield kernel, provider
    finally:
        await kernel.shutdown()


async def test_a_plugin_tool_named_find_tools_does_not_take_over_the_meta_tool(
    crowded: tuple[Kernel, Scripted],
) -> None:
    kernel, provider = crowded
    provider.script = [
        calls(ToolCall("f1", FIND_TOOLS, {"query": "add two numbers"})),
        calls(ToolCall("a1", "add", {"a": 2, "b": 3})),
        TurnDone("5.", (), "end_turn"),
    ]
    session = kernel.open_session()
    seen = events_of(kernel)
    turn = await kernel.submit(session.id, "what do 2 and 3 make together?")
    assert not turn.failed, turn.errors
    assert [e["tool"] for e in seen if e["type"] == "tool_call"] == ["add"]  # not crowder's
    result = provider.messages[1][-1].tool_results[0]
    found = result.content.splitlines()
    assert found[1].startswith("- add:") and not any("find_tools" in line for line in found)
    for tools in provider.tools:
        assert [t.name for t in tools].count(FIND_TOOLS) == 1 and tools[0].name == FIND_TOOLS
        assert tools[0].description.startswith("Search the other installed tools")
    reply = [e for e in seen if e["type"] == "reply"][-1]
    assert reply["tool_specs"]["sent"] < reply["tool_specs"]["total"] == 32
    # The kernel keeps serving, the plugin's own find_tools included, when asked for directly.
    turn = await kernel.submit(session.id, "/find_tools")
    assert not turn.failed, turn.errors
    assert [e["text"] for e in seen if e["type"] == "reply"][-1] == "crowder's find_tools answered"


async def test_a_huge_description_does_not_crowd_out_the_relevant_tools(
    crowded: tuple[Kernel, Scripted],
) -> None:
    kernel, provider = crowded
    provider.script = [
        calls(ToolCall("f1", FIND_TOOLS, {"query": "everything: add echo numbers text"})),
        TurnDone("done", (), "end_turn"),
    ]
    turn = await kernel.submit(kernel.open_session().id, "add 2 and 3")
    assert not turn.failed, turn.errors
    for tools in provider.tools:
        names = [t.name for t in tools]
        assert "add" in names and "everything" not in names  # too big to send, even found
        assert sum(spec_tokens(t) for t in tools) <= SELECTED_TOKENS + spec_tokens(tools[0])
    provider.script = [TurnDone("fine", (), "end_turn")]
    turn = await kernel.submit(kernel.open_session().id, "echo at once")
    assert not turn.failed, turn.errors
