"""The OpenAI-compatible provider against a real HTTP fake server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from llm.fake_openai import FakeCall, FakeOpenAI, Reply, chunk

from deeting_tui.llm.model import (
    Event,
    Message,
    Provider,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolCallStarted,
    ToolResult,
    ToolSpec,
    TurnDone,
    Usage,
)
from deeting_tui.llm.openai_provider import DEFAULT_MODEL, OpenAIProvider

FAKE_SCRIPT = Path(__file__).with_name("fake_openai.py")
ECHO = ToolSpec("echo", "Say it back", {"type": "object", "properties": {"text": {}}})


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def provider(fake: FakeOpenAI) -> AsyncIterator[OpenAIProvider]:
    p = OpenAIProvider("test-model", base_url=fake.base_url)
    yield p
    await p.aclose()


async def collect(provider: Provider, **request: Any) -> list[Event]:
    request = {"system": "be brief", "messages": [Message("user", "hi")], "tools": [], **request}
    return [event async for event in provider.stream(**request)]


def done_of(events: list[Event]) -> TurnDone:
    """The TurnDone, after checking it is the one and only, and the last event."""
    assert [type(e) for e in events].count(TurnDone) == 1
    assert isinstance(events[-1], TurnDone)
    return events[-1]


async def failure(provider: Provider, **request: Any) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await collect(provider, **request)
    assert "\n" not in caught.value.message
    return caught.value


# --- streaming --------------------------------------------------------------------------------


async def test_text_streams_as_deltas_and_ends_with_the_whole_turn(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.add(Reply.text("Hel", "lo", " world", usage=(12, 3)))
    events = await collect(provider)
    assert events[:-1] == [TextDelta("Hel"), TextDelta("lo"), TextDelta(" world")]
    assert done_of(events) == TurnDone("Hello world", (), "end_turn", Usage(12, 3))


async def test_finish_reason_beside_content_and_no_usage(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.add(
        Reply.text("cut", " off", finish_reason="length", finish_with_content=True, usage=None)
    )
    done = done_of(await collect(provider))
    assert (done.text, done.stop_reason, done.usage) == ("cut off", "max_tokens", Usage())


async def test_a_stream_that_ends_after_its_finish_reason_without_done_is_complete(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.add(Reply.stream([chunk("ok"), chunk(finish_reason="stop")], done=False))
    assert done_of(await collect(provider)).text == "ok"


async def test_keepalive_comments_and_event_lines_are_skipped(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.add(
        Reply.raw(
            ": keep-alive",
            f"data:{json.dumps(chunk('tight'))}",  # no space after the colon is valid SSE too
            "event: message",
            f"data: {json.dumps(chunk(finish_reason='stop'))}",
            "data: [DONE]",
        )
    )
    assert done_of(await collect(provider)).text == "tight"


async def test_one_tool_call_with_arguments_split_across_chunks(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    arguments = {"text": "hello, world", "times": 3, "nested": {"ok": [1, 2]}}
    fake.add(Reply.tool_calls(FakeCall("echo", arguments, id="call_abc"), split=7))
    events = await collect(provider, tools=[ECHO])
    assert events[0] == ToolCallStarted("call_abc", "echo")
    done = done_of(events)
    assert done.tool_calls == (ToolCall("call_abc", "echo", arguments),)
    assert done.stop_reason == "tool_use"


async def test_two_parallel_calls_interleaved_are_assembled_per_index(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    first, second = {"text": "one" * 10}, {"text": "two" * 10, "n": 2}
    fake.add(
        Reply.tool_calls(
            FakeCall("echo", first),
            FakeCall("shout", second),
            text="Both:",
            split=4,
            interleave=True,
        )
    )
    events = await collect(provider, tools=[ECHO])
    assert [e for e in events if isinstance(e, ToolCallStarted)] == [
        ToolCallStarted("call_fake_0", "echo"),
        ToolCallStarted("call_fake_1", "shout"),
    ]
    done = done_of(events)
    assert done.text == "Both:"
    assert done.tool_calls == (
        ToolCall("call_fake_0", "echo", first),
        ToolCall("call_fake_1", "shout", second),
    )


async def test_calls_without_ids_in_one_chunk_after_stop_still_mean_tool_use(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    """llama.cpp's shape: no ids, whole arguments at once, finish_reason "stop"."""
    fake.add(
        Reply.tool_calls(
            FakeCall("echo", {"a": 1}),
            FakeCall("echo", {}),
            split=None,
            ids=False,
            finish_reason="stop",
        )
    )
    events = await collect(provider, tools=[ECHO])
    done = done_of(events)
    assert [e for e in events if isinstance(e, ToolCallStarted)] == [
        ToolCallStarted("call_0", "echo"),
        ToolCallStarted("call_1", "echo"),
    ]
    assert done.tool_calls == (ToolCall("call_0", "echo", {"a": 1}), ToolCall("call_1", "echo", {}))
    assert done.stop_reason == "tool_use"


async def test_calls_without_index_are_told_apart_by_id(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    """Some Ollama versions leave out ``index``."""

    def piece(call_id: str, arguments: str) -> dict[str, Any]:
        return {"id": call_id, "function": {"name": "echo", "arguments": arguments}}

    fake.add(
        Reply.stream(
            [
                chunk(tool_calls=[piece("a", '{"x": 1}'), piece("b", '{"x": 2}')]),
                chunk(finish_reason="tool_calls"),
            ]
        )
    )
    done = done_of(await collect(provider, tools=[ECHO]))
    assert done.tool_calls == (ToolCall("a", "echo", {"x": 1}), ToolCall("b", "echo", {"x": 2}))


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ('{"text": "unterminated', "not valid JSON"),
        ("[1, 2]", "a JSON list, not an object"),
        ('"just a string"', "a JSON str, not an object"),
        ("", None),
    ],
)
async def test_arguments_that_are_not_an_object_become_an_arguments_error(
    fake: FakeOpenAI, provider: OpenAIProvider, raw: str, error: str | None
) -> None:
    fake.add(Reply.tool_calls(FakeCall("echo", raw), split=3))
    (call,) = done_of(await collect(provider, tools=[ECHO])).tool_calls
    assert call.arguments == {}
    if error is None:
        assert call.arguments_error is None
    else:
        assert call.arguments_error is not None and error in call.arguments_error


# --- the request ------------------------------------------------------------------------------


async def test_the_conversation_is_sent_in_chat_completions_shapes(fake: FakeOpenAI) -> None:
    fake.add(Reply.text("fine"))
    provider = OpenAIProvider("my-model", base_url=fake.base_url, max_tokens=256)
    messages = [
        Message("user", "list files"),
        Message(
            "assistant",
            "Looking.",
            tool_calls=(
                ToolCall("c1", "ls", {"path": "."}),
                ToolCall("c2", "cat", {}, arguments_error="not valid JSON"),
            ),
        ),
        Message(
            "user",
            "and then?",
            tool_results=(
                ToolResult("c1", "a.txt"),
                ToolResult("c2", "no such file", is_error=True),
            ),
        ),
        Message("assistant", tool_calls=(ToolCall("c3", "ls", {}),)),
        Message("user", tool_results=(ToolResult("c3", "error: denied", is_error=True),)),
    ]
    try:
        await collect(provider, system="You are Deeting.", messages=messages, tools=[ECHO])
    finally:
        await provider.aclose()
    assert fake.requests == [
        {
            "model": "my-model",
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": 256,
            "messages": [
                {"role": "system", "content": "You are Deeting."},
                {"role": "user", "content": "list files"},
                {
                    "role": "assistant",
                    "content": "Looking.",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "ls", "arguments": '{"path": "."}'},
                        },
                        {
                            "id": "c2",
                            "type": "function",
                            "function": {"name": "cat", "arguments": "{}"},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "a.txt"},
                {"role": "tool", "tool_call_id": "c2", "content": "error: no such file"},
                {"role": "user", "content": "and then?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c3",
                            "type": "function",
                            "function": {"name": "ls", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c3", "content": "error: denied"},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "echo",
                        "description": "Say it back",
                        "parameters": ECHO.parameters,
                    },
                }
            ],
            "tool_choice": "auto",
        }
    ]


async def test_no_tools_means_no_tools_and_no_tool_choice(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.add(Reply.text("a"), Reply.text("b"))
    await collect(provider, tools=[])
    await collect(provider, tools=[ECHO], tool_choice="none")
    assert "tools" not in fake.requests[0] and "tool_choice" not in fake.requests[0]
    assert "max_tokens" not in fake.requests[0]
    assert fake.requests[1]["tool_choice"] == "none"
    assert [t["function"]["name"] for t in fake.requests[1]["tools"]] == ["echo"]


async def test_authorization_only_with_a_key(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.add(Reply.text("a"), Reply.text("b"), Reply.text("c"))
    for key in ("sk-given", None):
        provider = OpenAIProvider(DEFAULT_MODEL, api_key=key, base_url=fake.base_url)
        await collect(provider)
        await provider.aclose()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url + "/")  # and the URL from the env
    provider = OpenAIProvider(DEFAULT_MODEL)
    await collect(provider)
    await provider.aclose()
    assert fake.headers[0]["authorization"] == "Bearer sk-given"
    assert "authorization" not in fake.headers[1]
    assert fake.headers[2]["authorization"] == "Bearer sk-from-env"
    assert fake.requests[2]["model"] == "gpt-4o-mini"


def test_defaults_without_environment() -> None:
    provider = OpenAIProvider(DEFAULT_MODEL)
    assert provider.url == "https://api.openai.com/v1/chat/completions"
    assert provider.api_key is None
    assert (provider.name, provider.model) == ("openai", "gpt-4o-mini")


async def test_a_caller_that_stops_at_turn_done_leaves_the_client_usable(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    """The agent returns at TurnDone without draining the stream (agent.py)."""
    fake.add(Reply.text("one"), Reply.text("two"))
    for expected in ("one", "two"):
        async for event in provider.stream(system="", messages=[], tools=[]):
            if isinstance(event, TurnDone):
                assert event.text == expected
                break
    await provider.aclose()
    await provider.aclose()  # twice is fine


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "key", "kind", "retryable", "facts"),
    [
        (
            Reply.error(401, "Incorrect API key provided: sk-bad", code="invalid_api_key"),
            "sk-bad",
            "auth",
            False,
            ["rejected the API key (401)", "Incorrect API key provided", "set OPENAI_API_KEY"],
        ),
        (
            Reply.error(401, "missing key"),
            None,
            "auth",
            False,
            ["needs an API key (401)", "missing key", "OPENAI_API_KEY"],
        ),
        (
            Reply.error(403, "Project does not have access"),
            "sk-x",
            "auth",
            False,
            ["403", "Project does not have access"],
        ),
        (
            Reply.error(429, "Rate limit reached for requests", code="rate_limit_exceeded"),
            "sk-x",
            "rate_limit",
            True,
            ["429", "Rate limit reached", "try again"],
        ),
        (
            Reply.error(429, "You exceeded your current quota", code="insufficient_quota"),
            "sk-x",
            "rate_limit",
            False,
            ["429", "exceeded your current quota", "billing"],
        ),
        (
            Reply.error(500, "The server had an error", type="server_error"),
            None,
            "server",
            True,
            ["500", "The server had an error"],
        ),
        (
            Reply(status=503, body="<html>\n<h1>Service Unavailable</h1>\n</html>"),
            None,
            "server",
            True,
            ["503", "Service Unavailable"],
        ),
        (
            Reply.error(404, "The model `test-model` does not exist"),
            None,
            "bad_request",
            False,
            ["404", "does not exist", "'test-model'", "/v1", "OPENAI_BASE_URL"],
        ),
        (
            Reply(status=400, body={"error": "Ollama-style: context too long"}),
            None,
            "bad_request",
            False,
            ["400", "Ollama-style: context too long"],
        ),
        (
            Reply(status=422, body={"detail": [{"loc": ["body", "messages"], "msg": "required"}]}),
            None,
            "bad_request",
            False,
            ["422", "required"],
        ),
    ],
    ids=["401", "401-no-key", "403", "429", "429-quota", "500", "503-html", "404", "400", "422"],
)
async def test_http_errors_become_one_actionable_line(
    fake: FakeOpenAI,
    reply: Reply,
    key: str | None,
    kind: str,
    retryable: bool,
    facts: list[str],
) -> None:
    fake.add(reply)
    provider = OpenAIProvider("test-model", api_key=key, base_url=fake.base_url)
    error = await failure(provider)
    await provider.aclose()
    assert (error.kind, error.retryable) == (kind, retryable)
    for fact in [f"127.0.0.1:{fake.port}", *facts]:
        assert fact in error.message, error.message


async def test_a_long_server_message_is_cut_to_one_short_line(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.add(Reply.error(400, "line one\nline two " + "x" * 5000))
    error = await failure(provider)
    assert "line one line two xxx" in error.message
    assert len(error.message) < 400


async def test_a_base_url_without_v1_is_a_404_naming_the_url(fake: FakeOpenAI) -> None:
    provider = OpenAIProvider("m", base_url=fake.base_url.removesuffix("/v1"))
    error = await failure(provider)
    assert error.kind == "bad_request"
    assert "404" in error.message and provider.base_url in error.message
    assert fake.requests == []  # the fake's route check answered, no reply was used


async def test_connection_refused_names_the_url_and_the_variable() -> None:
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = OpenAIProvider("m", base_url=f"http://127.0.0.1:{port}/v1")
    error = await failure(provider)
    assert (error.kind, error.retryable) == ("connection", True)
    assert error.message == (
        f"cannot connect to http://127.0.0.1:{port}/v1: connection refused"
        " — is the server running? (OPENAI_BASE_URL)"
    )


async def test_a_bad_base_url_is_reported_not_raised() -> None:
    error = await failure(OpenAIProvider("m", base_url="localhost:8000/v1"))
    assert error.kind == "bad_request"
    assert "localhost:8000/v1" in error.message and "http://" in error.message


async def test_a_server_that_never_answers_times_out(fake: FakeOpenAI) -> None:
    fake.add(Reply.never())
    provider = OpenAIProvider("m", base_url=fake.base_url, timeout=0.2)
    error = await failure(provider)
    await provider.aclose()
    assert (error.kind, error.retryable) == ("timeout", True)
    assert f"127.0.0.1:{fake.port}" in error.message and "0.2 s" in error.message


async def test_a_stream_that_stalls_midway_times_out(fake: FakeOpenAI) -> None:
    fake.add(Reply(lines=[f"data: {json.dumps(chunk('partial'))}"], hang=True))
    provider = OpenAIProvider("m", base_url=fake.base_url, timeout=0.2)
    events: list[Event] = []
    with pytest.raises(ProviderError) as caught:
        async for event in provider.stream(system="", messages=[], tools=[]):
            events.append(event)
    await provider.aclose()
    assert events == [TextDelta("partial")]
    assert caught.value.kind == "timeout"


@pytest.mark.parametrize(
    ("reply", "fact"),
    [
        (Reply.raw("data: {not json"), "not JSON"),
        (Reply.raw("data: [1, 2]", "data: [DONE]"), "not a JSON object"),
        (Reply.raw('data: {"id": "x"}', "data: [DONE]"), "no choices"),
        (Reply.raw(f"data: {json.dumps(chunk('cut'))}"), "ended before the answer was complete"),
        (Reply(status=200, body={"choices": [{"message": {"content": "hi"}}]}), "not streamed"),
    ],
    ids=["bad-json", "not-object", "no-choices", "no-done-no-finish", "not-streamed"],
)
async def test_a_malformed_stream_is_a_protocol_error(
    fake: FakeOpenAI, provider: OpenAIProvider, reply: Reply, fact: str
) -> None:
    fake.add(reply)
    error = await failure(provider)
    assert (error.kind, error.retryable) == ("protocol", False)
    assert f"127.0.0.1:{fake.port}" in error.message and fact in error.message


async def test_an_error_sent_inside_the_stream_is_a_server_error(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.add(Reply.raw(f"data: {json.dumps({'error': {'message': 'overloaded'}})}"))
    error = await failure(provider)
    assert (error.kind, error.retryable) == ("server", True)
    assert "overloaded" in error.message


# --- the fake outside the test's loop (how end-to-end tests use it) ---------------------------


def test_the_fake_serves_from_a_thread() -> None:
    fake = FakeOpenAI([Reply.tool_calls(FakeCall("echo", {"x": 1})), Reply.text("done")])
    with fake.running_in_thread() as server:

        async def two_turns() -> list[TurnDone]:
            provider = OpenAIProvider("m", base_url=server.base_url)
            try:
                return [done_of(await collect(provider)) for _ in range(2)]
            finally:
                await provider.aclose()

        first, second = asyncio.run(two_turns())
    assert first.tool_calls == (ToolCall("call_fake_0", "echo", {"x": 1}),)
    assert second.text == "done"
    assert len(fake.requests) == 2


def test_the_fake_runs_as_a_process_from_a_script(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            [
                {"tool_calls": [{"name": "echo", "arguments": {"text": "hi"}}], "split": 3},
                {"text": ["Hel", "lo"], "usage": [7, 2]},
                {"error": 429, "message": "slow down"},
            ]
        )
    )
    record = tmp_path / "requests.jsonl"
    process = subprocess.Popen(
        [sys.executable, str(FAKE_SCRIPT), "--script", str(script), "--record", str(record)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")

        async def three_turns() -> tuple[TurnDone, TurnDone, ProviderError]:
            provider = OpenAIProvider("m", api_key="sk-rec", base_url=base_url)
            try:
                first = done_of(await collect(provider, tools=[ECHO]))
                second = done_of(await collect(provider))
                return first, second, await failure(provider)
            finally:
                await provider.aclose()

        first, second, third = asyncio.run(three_turns())
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
    assert first.tool_calls == (ToolCall("call_fake_0", "echo", {"text": "hi"}),)
    assert (second.text, second.usage) == ("Hello", Usage(7, 2))
    assert third.kind == "rate_limit" and "slow down" in third.message
    recorded = [json.loads(line) for line in record.read_text().splitlines()]
    assert [r["path"] for r in recorded] == ["/v1/chat/completions"] * 3
    assert recorded[0]["headers"]["authorization"] == "Bearer sk-rec"
    assert recorded[0]["body"]["tools"][0]["function"]["name"] == "echo"


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ("o1", "max_completion_tokens"),
        ("o3-mini", "max_completion_tokens"),
        ("o4-mini-2025-04-16", "max_completion_tokens"),
        ("gpt-5", "max_completion_tokens"),
        ("gpt-5-mini", "max_completion_tokens"),
        ("openai/o3", "max_completion_tokens"),
        ("gpt-4o-mini", "max_tokens"),
        ("llama3.1", "max_tokens"),
        ("qwen3:8b", "max_tokens"),
        ("omni-7b", "max_tokens"),
    ],
)
async def test_reasoning_models_get_max_completion_tokens(
    fake: FakeOpenAI, model: str, field: str
) -> None:
    """OpenAI's reasoning models answer ``max_tokens`` with a 400 (the fake does too)."""
    fake.add(Reply.text("fine"))
    provider = OpenAIProvider(model, base_url=fake.base_url, max_tokens=64)
    try:
        events = await collect(provider, tools=[])
    finally:
        await provider.aclose()
    assert isinstance(events[-1], TurnDone) and events[-1].text == "fine"
    other = "max_tokens" if field == "max_completion_tokens" else "max_completion_tokens"
    assert fake.requests[0][field] == 64 and other not in fake.requests[0]
