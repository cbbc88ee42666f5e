"""Tool-call ids replayed to the model: unique in the conversation and paired right, also for
sessions written before call ids were unique across processes (each process began at ``c1``).

Both providers run the replayed history against their fake API, which refuses a repeated or
unanswered id as the real ones do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm.fake_anthropic import FakeAnthropic
from llm.fake_anthropic import Reply as AnthropicReply
from llm.fake_anthropic import problems as anthropic_problems
from llm.fake_openai import FakeOpenAI
from llm.fake_openai import Reply as OpenAIReply
from llm.fake_openai import problems as openai_problems
from llm.test_agent import Scripted, calls, said
from support import FAST_POLICY, FIXTURES

from deeting_tui.kernel.kernel import Kernel, new_call_id
from deeting_tui.llm.agent import LLMAssistant, history_messages
from deeting_tui.llm.anthropic_provider import AnthropicProvider
from deeting_tui.llm.model import Message, ToolCall, TurnDone
from deeting_tui.llm.openai_provider import OpenAIProvider
from deeting_tui.paths import resolve_paths

Events = list[tuple[str, dict[str, Any]]]


def _call(call_id: str, text: str) -> tuple[str, dict[str, Any]]:
    return ("tool_call", {"call_id": call_id, "tool": "echo", "args": {"text": text}})


def _result(call_id: str, text: str) -> tuple[str, dict[str, Any]]:
    return ("tool_result", {"call_id": call_id, "ok": True, "data": None, "text": text})


#: What the old per-process counter left: three processes (``--script``, the chat, the chat
#: again) each starting at c1, one of them killed before its call's result was stored.
OLD_SESSION: Events = [
    ("user", {"text": "echo one"}),
    _call("c1", "one"),
    _result("c1", "one"),
    ("reply", {"text": "one"}),
    ("user", {"text": "echo two"}),
    _call("c1", "two"),
    _result("c1", "two"),
    ("reply", {"text": "two"}),
    ("user", {"text": "/echo text=lost"}),
    _call("c1", "lost"),  # the process died here: no result
    ("user", {"text": "/echo text=three"}),
    _call("c1", "three"),
    _call("c2", "four"),
    _result("c2", "four"),
    _result("c1", "three"),
    # A process killed between a call and its result, then one that called again at once:
    # the same id twice before any result, and the one result is the newer call's.
    _call("c1", "killed"),
    _call("c1", "five"),
    _result("c1", "five"),
]


def _pairs(messages: list[Message]) -> list[tuple[str, str]]:
    """(the call's argument, its result's text) for every call, checking the shape the APIs
    require: ids unique, each assistant message's calls answered by the next message, and
    only those."""
    ids = [c.id for m in messages for c in m.tool_calls]
    assert len(ids) == len(set(ids)), ids
    pairs = []
    for message, following in zip(messages, [*messages[1:], None], strict=True):
        if not message.tool_calls:
            continue
        assert following is not None and following.role == "user"
        results = {r.call_id: r for r in following.tool_results}
        assert set(results) == {c.id for c in message.tool_calls}
        pairs += [(c.arguments.get("text"), results[c.id].content) for c in message.tool_calls]
    return pairs


def test_repeated_old_ids_are_made_unique_and_each_result_stays_with_its_call() -> None:
    messages = history_messages(OLD_SESSION)
    assert _pairs(messages) == [
        ("one", "one"),
        ("two", "two"),
        ("lost", "error: no result was recorded"),
        ("three", "three"),
        ("four", "four"),
        ("killed", "error: no result was recorded"),
        ("five", "five"),
    ]
    assert [m.role for m in messages] == ["user", "assistant"] * (len(messages) // 2) + ["user"]
    first = [c.id for c in messages[1].tool_calls]
    assert first == ["c1"]  # an id seen once is sent as stored


def test_an_id_the_apis_would_refuse_is_replaced() -> None:
    events: Events = [("user", {"text": "x"}), _call("c 1/ä", "a"), _result("c 1/ä", "a")]
    (call,) = history_messages(events)[1].tool_calls
    assert call.id == "call"


def test_new_call_ids_are_unique_and_fit_both_apis() -> None:
    made = {new_call_id() for _ in range(10_000)}
    assert len(made) == 10_000
    assert all(len(i) <= 40 and i.isalnum() and i.isascii() for i in made)


async def test_calls_in_two_processes_get_different_ids(home: Path) -> None:
    """A session continued by another process (the chat after --script) must not repeat an
    id: the first call of each kernel was ``c1``."""
    ids = []
    session_id = None
    for _process in range(2):
        kernel = Kernel(resolve_paths(), policy=FAST_POLICY)
        await kernel.start(ticker=False)
        try:
            if session_id is None:
                await kernel.loader.install(FIXTURES / "good_plugin")
            session_id = kernel.open_session(session_id).id
            await kernel.submit(session_id, "echo hi")
            ids += [e.payload["call_id"] for e in kernel.sessions.events(session_id, ["tool_call"])]
        finally:
            await kernel.shutdown()
    assert len(ids) == 3 and len(set(ids)) == 2  # the second kernel saw the first's call too


# -- the replay against each API's rules -------------------------------------------------


@pytest.fixture
def anthropic_api() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


async def test_anthropic_accepts_the_replayed_old_session(
    anthropic_api: FakeAnthropic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no credentials from the machine
    anthropic_api.add(AnthropicReply("ok"))
    provider = AnthropicProvider("claude-test", api_key="sk-test", base_url=anthropic_api.base_url)
    messages = [*history_messages(OLD_SESSION), Message("user", "and now?")]
    try:
        events = [e async for e in provider.stream(system="s", messages=messages, tools=[])]
    finally:
        await provider.aclose()
    assert isinstance(events[-1], TurnDone) and events[-1].text == "ok"
    sent = anthropic_api.requests[0].body["messages"]
    blocks = [b for m in sent if isinstance(m["content"], list) for b in m["content"]]
    uses = [b["id"] for b in blocks if b.get("type") == "tool_use"]
    assert len(uses) == 7 == len(set(uses))


async def test_openai_accepts_the_replayed_old_session() -> None:
    async with FakeOpenAI([OpenAIReply.text("ok")]) as server:
        provider = OpenAIProvider("m", base_url=server.base_url)
        messages = [*history_messages(OLD_SESSION), Message("user", "and now?")]
        try:
            events = [e async for e in provider.stream(system="s", messages=messages, tools=[])]
        finally:
            await provider.aclose()
    assert isinstance(events[-1], TurnDone) and events[-1].text == "ok"
    sent = server.requests[0]["messages"]
    assert openai_problems({"messages": sent}) is None
    calls = [c["id"] for m in sent for c in m.get("tool_calls") or []]
    assert len(calls) == 7 == len(set(calls))


def test_the_openai_fake_refuses_what_the_api_refuses() -> None:
    call = {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    user = {"role": "user", "content": "hi"}
    asked = {"role": "assistant", "content": None, "tool_calls": [call]}
    answer = {"role": "tool", "tool_call_id": "a", "content": "x"}
    assert openai_problems({"messages": [user, asked, answer, user]}) is None
    assert "did not have response" in (openai_problems({"messages": [user, asked, user]}) or "")
    stray = {"role": "tool", "tool_call_id": "b", "content": "x"}
    assert "preceeding" in (openai_problems({"messages": [user, stray]}) or "")
    again = [user, asked, answer, user, asked, answer]
    assert "duplicate" in (openai_problems({"messages": again}) or "")


def test_the_anthropic_fake_refuses_a_repeated_or_malformed_tool_use_id() -> None:
    user = {"role": "user", "content": "hi"}

    def asked(tool_id: str) -> dict[str, Any]:
        use = {"type": "tool_use", "id": tool_id, "name": "f", "input": {}}
        return {"role": "assistant", "content": [use]}

    def answer(tool_id: str) -> dict[str, Any]:
        return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id}]}

    again = [user, asked("a"), answer("a"), asked("a"), answer("a")]
    assert "must be unique" in (anthropic_problems({"messages": again}) or "")
    odd = [user, asked("a b"), answer("a b")]
    assert "should match pattern" in (anthropic_problems({"messages": odd}) or "")


async def test_a_model_that_repeats_its_call_ids_gets_each_once_in_the_conversation(
    home: Path,
) -> None:
    """Servers that send no ids get call_0, call_1 … from the provider in every round (and
    some send the same id each time): the rounds of one turn, and a turn after a session
    that holds the same ids, must still send each id once, with its own result."""
    provider = Scripted(
        calls(ToolCall("call_0", "add", {"a": 1, "b": 2})),
        calls(ToolCall("call_0", "add", {"a": 3, "b": 4})),
        said("3 and 7"),
        calls(ToolCall("call_0", "add", {"a": 5, "b": 6})),
        said("11"),
    )
    kernel = Kernel(
        resolve_paths(), assistant=LLMAssistant(provider, retry_delays=()), policy=FAST_POLICY
    )
    await kernel.start(ticker=False)
    try:
        await kernel.loader.install(FIXTURES / "good_plugin")
        session = kernel.open_session()
        for text in ("add twice", "add once more"):
            turn = await kernel.submit(session.id, text)
            assert not turn.failed, turn.errors
    finally:
        await kernel.shutdown()
    for request in provider.requests:
        _pairs(request["messages"])  # ids unique, each call answered by the next message
    last = provider.requests[-1]["messages"]
    assert [r.content for m in last for r in m.tool_results] == ["3", "7", "11"]
