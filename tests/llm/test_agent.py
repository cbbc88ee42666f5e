"""The agent loop against a scripted provider and the real kernel with a real plugin."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from support import FAST_POLICY, FIXTURES, events_of

from deeting_tui.kernel.assistant import ToolInfo, ToolOutcome
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.llm.agent import (
    MAX_MODEL_CALLS,
    SUMMARY_MARK,
    LLMAssistant,
    history_messages,
    text_for_model,
)
from deeting_tui.llm.model import (
    Event,
    Message,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolCallStarted,
    ToolSpec,
    TurnDone,
)
from deeting_tui.llm.tools import build_toolbox, safe_name, system_prompt
from deeting_tui.paths import resolve_paths

GOOD = FIXTURES / "good_plugin"


class Scripted:
    """A Provider that plays back responses and records what it was asked."""

    name = "scripted"
    model = "test-model"

    def __init__(self, *responses: TurnDone | ProviderError | list[Event]) -> None:
        self.responses = list(responses)
        self.requests: list[dict[str, Any]] = []

    async def stream(
        self,
        *,
        system: str,
        messages: list[Message],
        tools: list[ToolSpec],
        tool_choice: str = "auto",
    ) -> AsyncIterator[Event]:
        self.requests.append(
            {"system": system, "messages": list(messages), "tools": tools, "choice": tool_choice}
        )
        response = self.responses.pop(0)
        if isinstance(response, ProviderError):
            raise response
        if isinstance(response, list):
            for event in response:
                if isinstance(event, ProviderError):
                    raise event
                yield event
            return
        if response.text:
            yield TextDelta(response.text)
        for call in response.tool_calls:
            yield ToolCallStarted(call.id, call.name)
        yield response


def said(text: str) -> TurnDone:
    return TurnDone(text, (), "end_turn")


def calls(*tool_calls: ToolCall, text: str = "") -> TurnDone:
    return TurnDone(text, tool_calls, "tool_use")


@pytest.fixture
async def llm_kernel(home: Any) -> AsyncIterator[tuple[Kernel, Scripted]]:
    provider = Scripted()
    kernel = Kernel(
        resolve_paths(), assistant=LLMAssistant(provider, retry_delays=(0, 0)), policy=FAST_POLICY
    )
    await kernel.start(ticker=False)
    await kernel.loader.install(GOOD)
    try:
        yield kernel, provider
    finally:
        await kernel.shutdown()


async def test_a_tool_round_trip(llm_kernel: tuple[Kernel, Scripted]) -> None:
    kernel, provider = llm_kernel
    provider.responses = [
        calls(ToolCall("t1", "add", {"a": 2, "b": 3}), text="Let me add."),
        said("2 + 3 = 5."),
    ]
    session = kernel.open_session()
    seen = events_of(kernel)
    turn = await kernel.submit(session.id, "what is 2 plus 3?")
    assert not turn.failed, turn.errors
    deltas = [e["text"] for e in seen if e["type"] == "reply_delta"]
    assert deltas == ["Let me add.", "2 + 3 = 5."]  # streamed live, not stored
    kinds = [e["type"] for e in seen if e["type"] != "reply_delta"]
    assert kinds == ["user", "reply", "tool_call", "tool_result", "reply"]
    seen = [e for e in seen if e["type"] != "reply_delta"]
    assert seen[2]["args"] == {"a": 2, "b": 3} and seen[3]["data"] == {"sum": 5}
    assert seen[-1] == {
        "type": "reply",
        "session_id": session.id,
        "text": "2 + 3 = 5.",
        "provider": "scripted",
        "model": "test-model",
        # every spec sent (two tools: under the budget), with their estimated tokens
        "tool_specs": {"sent": 2, "total": 2, "tokens": 110, "all_tokens": 110},
    }
    first, second = provider.requests
    assert [t.name for t in first["tools"]] == ["add", "echo"]  # sorted: stable prefix
    assert "echo-fixture" in first["system"] and first["choice"] == "auto"
    result = second["messages"][-1].tool_results[0]
    assert result.call_id == "t1" and not result.is_error
    assert result.content == "5"  # the plugin's text goes to the model, its data to the user
    assert [e.kind for e in kernel.sessions.events(session.id)] == kinds


async def test_every_call_gets_a_result_the_model_can_read(
    llm_kernel: tuple[Kernel, Scripted],
) -> None:
    kernel, provider = llm_kernel
    provider.responses = [
        calls(
            ToolCall("a", "echo", {"text": "hi"}),
            ToolCall("b", "add", {"a": "two"}),  # fails the schema
            ToolCall("c", "nope", {}),  # no such tool
            ToolCall("d", "echo", {}, arguments_error="not a JSON object"),
        ),
        said("done"),
    ]
    session = kernel.open_session()
    turn = await kernel.submit(session.id, "do things")
    assert not turn.failed, turn.errors  # the model handled the errors; the turn succeeded
    results = {r.call_id: r for r in provider.requests[1]["messages"][-1].tool_results}
    assert results["a"].content == "hi" and not results["a"].is_error
    assert results["b"].is_error and "invalid arguments" in results["b"].content
    assert results["c"].is_error and "unknown tool 'nope'" in results["c"].content
    assert results["d"].is_error and "not a JSON object" in results["d"].content


async def test_the_last_model_call_may_not_use_tools(llm_kernel: tuple[Kernel, Scripted]) -> None:
    kernel, provider = llm_kernel
    looping = [calls(ToolCall(f"t{i}", "echo", {"text": "again"})) for i in range(20)]
    provider.responses = [*looping[: MAX_MODEL_CALLS - 1], said("I give up on the loop.")]
    turn = await kernel.submit(kernel.open_session().id, "loop forever")
    assert not turn.failed
    assert len(provider.requests) == MAX_MODEL_CALLS
    assert [r["choice"] for r in provider.requests] == ["auto"] * 7 + ["none"]


async def test_retries_only_before_the_first_byte(llm_kernel: tuple[Kernel, Scripted]) -> None:
    kernel, provider = llm_kernel
    overloaded = ProviderError("overloaded (529)", kind="server", retryable=True)
    provider.responses = [overloaded, overloaded, said("third time lucky")]
    turn = await kernel.submit(kernel.open_session().id, "hello")
    assert not turn.failed and len(provider.requests) == 3
    # After output has started, a failure is not retried: it would repeat what was shown.
    provider.responses = [[TextDelta("partial "), overloaded], said("never asked")]
    turn = await kernel.submit(kernel.open_session().id, "hello")
    assert turn.failed and turn.errors == ["scripted (test-model): overloaded (529)"]
    assert len(provider.responses) == 1


async def test_a_provider_error_is_one_line_and_fails_the_turn(
    llm_kernel: tuple[Kernel, Scripted],
) -> None:
    kernel, provider = llm_kernel
    provider.responses = [ProviderError("rejected the API key (401) — set X", kind="auth")]
    seen = events_of(kernel)
    turn = await kernel.submit(kernel.open_session().id, "hello")
    assert turn.failed
    assert [e["message"] for e in seen if e["type"] == "error"] == [
        "scripted (test-model): rejected the API key (401) — set X"
    ]


async def test_the_session_history_goes_to_the_model(llm_kernel: tuple[Kernel, Scripted]) -> None:
    kernel, provider = llm_kernel
    session = kernel.open_session()
    await kernel.submit(session.id, "echo routed by the trigger")
    provider.responses = [said("first"), said("second")]
    await kernel.submit(session.id, "remember this")
    await kernel.submit(session.id, "what did I say?")
    history = provider.requests[1]["messages"]
    roles = [m.role for m in history]
    assert all(a != b for a, b in itertools.pairwise(roles))  # they alternate
    assert roles[0] == "user" and roles[-1] == "user"
    assert history[0].text == "echo routed by the trigger"
    assert history[1].tool_calls[0].name == "echo"
    assert history[2].tool_results[0].content == "routed by the trigger"
    assert history[-1].text == "what did I say?"
    assert any(m.text == "first" for m in history if m.role == "assistant")


async def test_plugin_streams_stay_out_of_the_history(llm_kernel: tuple[Kernel, Scripted]) -> None:
    """A live card's latest frames are stored (they are the session's record) but are not
    part of the conversation: an hour of a once-a-second stream must not reach the model."""
    kernel, provider = llm_kernel
    session = kernel.open_session()
    provider.responses = [said("first"), said("second")]
    await kernel.submit(session.id, "hello")
    for tick in range(50):
        kernel.sessions.append(session.id, "stream", {"plugin": "p", "topic": "t", "payload": tick})
    await kernel.submit(session.id, "again")
    stored = kernel.sessions.events(session.id, kinds=["stream"])
    assert [e.payload["payload"] for e in stored] == list(range(42, 50))  # the latest 8
    history = provider.requests[1]["messages"]
    assert [m.text for m in history] == ["hello", "first", "again"]


def test_history_repairs_what_a_crash_left() -> None:
    events = [
        ("reply", {"text": "orphan reply before any user message"}),
        ("user", {"text": "hi"}),
        ("tool_call", {"call_id": "c1", "tool": "x.y", "args": {"a": 1}}),
        ("user", {"text": "are you there?"}),  # the kernel died before the result
        ("tool_result", {"call_id": "c9", "ok": True, "text": "stray"}),
        ("error", {"message": "ignored"}),
    ]
    messages = history_messages(events)
    assert [m.role for m in messages] == ["user", "assistant", "user"]
    assert messages[1].tool_calls[0].name == "x_y"
    repaired = messages[2]
    assert repaired.tool_results[0].is_error and repaired.text == "are you there?"


def test_tool_names_are_made_safe_and_mapped_back() -> None:
    tools = [
        ToolInfo("weather.now", "w", "Weather.", {"type": "object"}),
        ToolInfo("weather now", "w", "Clash.", {}),
        ToolInfo("a", "p", "A.", {"type": "object", "properties": {}}),
    ]
    box = build_toolbox(tools)
    assert [s.name for s in box.specs] == ["a", "weather_now", "weather_now_2"]
    assert box.kernel_name("weather_now") == "weather now"  # sorted first
    assert box.kernel_name("weather_now_2") == "weather.now"
    assert box.specs[1].parameters == {"type": "object", "properties": {}}
    assert safe_name("ä" * 100) == "tool" and len(safe_name("x" * 100)) == 64
    assert "No plugins are installed" in system_prompt([])


def test_text_for_the_model() -> None:
    assert text_for_model(ToolOutcome(True, "t", "p", data={"x": 1}, text="words")) == "words"
    big = text_for_model(ToolOutcome(True, "t", "p", data={"rows": list(range(5000))}))
    assert big.startswith(SUMMARY_MARK) and "more characters)" in big and len(big) < 2200
    assert text_for_model(ToolOutcome(True, "t", "p")) == "(the tool returned nothing)"
