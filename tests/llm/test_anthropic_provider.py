"""The Anthropic provider through the real SDK against a fake Messages API on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm.fake_anthropic import FakeAnthropic, Hang, HttpError, Reply, ToolUse, problems

from deeting_tui.llm.anthropic_provider import AnthropicProvider
from deeting_tui.llm.anthropic_wire import to_wire_messages
from deeting_tui.llm.model import (
    Event,
    Message,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolCallStarted,
    ToolChoice,
    ToolResult,
    ToolSpec,
    TurnDone,
    Usage,
)

MODEL = "claude-test"
KEY = "sk-ant-test"
ECHO = ToolSpec(
    "echo",
    "Repeat the text.",
    {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
)


@pytest.fixture(autouse=True)
def _no_anthropic_credentials_from_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK also finds credentials in other variables and in ~/.config/anthropic."""
    for name in (
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_PROFILE",
        "ANTHROPIC_CONFIG_DIR",
        "ANTHROPIC_CUSTOM_HEADERS",
        "ANTHROPIC_IDENTITY_TOKEN",
        "ANTHROPIC_IDENTITY_TOKEN_FILE",
        "ANTHROPIC_FEDERATION_RULE_ID",
        "ANTHROPIC_ORGANIZATION_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture
def api() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


def provider_for(
    api: FakeAnthropic, *, timeout: float = 120.0, max_tokens: int = 4096
) -> AnthropicProvider:
    return AnthropicProvider(
        MODEL, api_key=KEY, base_url=api.base_url, timeout=timeout, max_tokens=max_tokens
    )


async def run(
    provider: AnthropicProvider,
    messages: list[Message] | None = None,
    tools: list[ToolSpec] | None = None,
    *,
    system: str = "You help.",
    tool_choice: ToolChoice = "auto",
) -> list[Event]:
    try:
        return [
            event
            async for event in provider.stream(
                system=system,
                messages=messages or [Message("user", "Hi")],
                tools=tools or [],
                tool_choice=tool_choice,
            )
        ]
    finally:
        await provider.aclose()


async def failure(provider: AnthropicProvider) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await run(provider)
    error = caught.value
    assert "\n" not in error.message
    return error


# -- streaming ---------------------------------------------------------------------------


async def test_text_streams_as_deltas_then_one_turn_done(api: FakeAnthropic) -> None:
    api.add(Reply("Hello there, how are you?", chunk=4, input_tokens=21, output_tokens=9))
    events = await run(provider_for(api))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 3
    assert "".join(deltas) == "Hello there, how are you?"
    assert events[-1] == TurnDone("Hello there, how are you?", (), "end_turn", Usage(21, 9))
    assert sum(isinstance(e, TurnDone) for e in events) == 1


async def test_tool_use_input_split_across_deltas_is_parsed(api: FakeAnthropic) -> None:
    arguments = {"text": "héllo, world", "times": 3, "nested": {"a": [1, 2]}}
    api.add(Reply("Let me echo.", [ToolUse("echo", arguments, id="toolu_1")], chunk=3))
    events = await run(provider_for(api), tools=[ECHO])
    assert events[-2:] == [
        ToolCallStarted("toolu_1", "echo"),
        TurnDone(
            "Let me echo.",
            (ToolCall("toolu_1", "echo", arguments),),
            "tool_use",
            Usage(12, 7),
        ),
    ]


async def test_two_tool_calls_keep_their_order_and_started_events(api: FakeAnthropic) -> None:
    api.add(Reply(tool_uses=[ToolUse("echo", {"text": "a"}), ToolUse("clock")]))
    events = await run(provider_for(api), tools=[ECHO])
    assert events[:2] == [
        ToolCallStarted("toolu_fake_0_0", "echo"),
        ToolCallStarted("toolu_fake_0_1", "clock"),
    ]
    done = events[-1]
    assert isinstance(done, TurnDone)
    assert done.text == ""
    assert done.tool_calls == (
        ToolCall("toolu_fake_0_0", "echo", {"text": "a"}),
        ToolCall("toolu_fake_0_1", "clock", {}),
    )


@pytest.mark.parametrize(
    ("raw", "error"), [('{"text": "unterminated', "not valid JSON"), ("[1, 2]", "got list")]
)
async def test_tool_input_that_is_not_an_object_becomes_an_arguments_error(
    api: FakeAnthropic, raw: str, error: str
) -> None:
    api.add(Reply(tool_uses=[ToolUse("echo", raw)]))
    done = (await run(provider_for(api), tools=[ECHO]))[-1]
    assert isinstance(done, TurnDone)
    (call,) = done.tool_calls
    assert call.arguments == {}
    assert call.arguments_error is not None
    assert error in call.arguments_error


@pytest.mark.parametrize(
    ("wire", "neutral"),
    [
        ("end_turn", "end_turn"),
        ("stop_sequence", "end_turn"),
        ("max_tokens", "max_tokens"),
        ("refusal", "other"),
        ("pause_turn", "other"),
    ],
)
async def test_stop_reason_is_normalised(api: FakeAnthropic, wire: str, neutral: str) -> None:
    api.add(Reply("x", stop_reason=wire))
    done = (await run(provider_for(api)))[-1]
    assert isinstance(done, TurnDone)
    assert done.stop_reason == neutral


# -- the request -------------------------------------------------------------------------


async def test_request_carries_system_tools_choice_and_converted_history(
    api: FakeAnthropic,
) -> None:
    api.add(Reply("Done."))
    history = [
        Message("user", "Echo hi twice"),
        Message(
            "assistant",
            "Sure.",
            tool_calls=(
                ToolCall("toolu_a", "echo", {"text": "hi"}),
                ToolCall("toolu_b", "echo", {"text": "hi"}),
            ),
        ),
        Message(
            "user",
            "And then stop.",
            tool_results=(ToolResult("toolu_a", "hi"), ToolResult("toolu_b", "boom", True)),
        ),
    ]
    await run(provider_for(api, max_tokens=123), history, [ECHO], system="Be brief.")
    (request,) = api.requests
    assert request.path == "/v1/messages"
    body = request.body
    assert body["model"] == MODEL
    assert body["max_tokens"] == 123
    assert body["stream"] is True
    assert body["system"] == "Be brief."
    assert body["tools"] == [
        {"name": "echo", "description": "Repeat the text.", "input_schema": ECHO.parameters}
    ]
    assert body["tool_choice"] == {"type": "auto"}
    assert body["messages"] == [
        {"role": "user", "content": "Echo hi twice"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Sure."},
                {"type": "tool_use", "id": "toolu_a", "name": "echo", "input": {"text": "hi"}},
                {"type": "tool_use", "id": "toolu_b", "name": "echo", "input": {"text": "hi"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_a",
                    "content": "hi",
                    "is_error": False,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_b",
                    "content": "boom",
                    "is_error": True,
                },
                {"type": "text", "text": "And then stop."},
            ],
        },
    ]


async def test_tool_choice_none_keeps_the_tools_and_no_tools_sends_neither(
    api: FakeAnthropic,
) -> None:
    api.add(Reply("a"), Reply("b"))
    await run(provider_for(api), tools=[ECHO], tool_choice="none")
    await run(provider_for(api), tools=[], system="")
    forced, plain = (r.body for r in api.requests)
    assert forced["tool_choice"] == {"type": "none"}
    assert [t["name"] for t in forced["tools"]] == ["echo"]
    assert "tools" not in plain
    assert "tool_choice" not in plain
    assert "system" not in plain


def test_consecutive_messages_of_a_role_are_merged_results_first() -> None:
    wire = to_wire_messages(
        [
            Message("user", "first"),
            Message("user", tool_results=(ToolResult("t1", "out"),)),
            Message("assistant", "thinking aloud"),
            Message("assistant", tool_calls=(ToolCall("t2", "echo", {}),)),
            Message("assistant", ""),  # empty: dropped
            Message("user", tool_results=(ToolResult("t2", "ok"),)),
        ]
    )
    assert [m["role"] for m in wire] == ["user", "assistant", "user"]
    assert wire[0]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "out", "is_error": False},
        {"type": "text", "text": "first"},
    ]
    assert wire[1]["content"] == [
        {"type": "text", "text": "thinking aloud"},
        {"type": "tool_use", "id": "t2", "name": "echo", "input": {}},
    ]


async def test_api_key_is_sent_from_the_argument(api: FakeAnthropic) -> None:
    api.add(Reply("ok"))
    await run(provider_for(api))
    assert api.requests[0].api_key == KEY
    assert api.requests[0].headers["anthropic-version"]


async def test_key_and_base_url_come_from_the_environment(
    api: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-from-env")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
    api.add(Reply("ok"))
    events = await run(AnthropicProvider(MODEL))
    assert events[-1] == TurnDone("ok", (), "end_turn", Usage(12, 7))
    assert api.requests[0].api_key == "sk-from-env"


async def test_the_provider_can_stream_again_after_aclose(api: FakeAnthropic) -> None:
    api.add(Reply("one"), Reply("two"))
    provider = provider_for(api)
    assert (await run(provider))[-1] == TurnDone("one", (), "end_turn", Usage(12, 7))
    assert (await run(provider))[-1] == TurnDone("two", (), "end_turn", Usage(12, 7))


# -- failures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind", "retryable", "words"),
    [
        (
            HttpError(401, "invalid x-api-key"),
            "auth",
            False,
            ["401", "invalid x-api-key", "ANTHROPIC_API_KEY"],
        ),
        (HttpError(403, "no access to this model"), "auth", False, ["403", "no access"]),
        (HttpError(429, "slow down"), "rate_limit", True, ["429", "slow down"]),
        (HttpError(500, "internal"), "server", True, ["500", "internal"]),
        (HttpError(529, "Overloaded"), "server", True, ["overloaded", "529"]),
        (HttpError(404, f"model: {MODEL}"), "bad_request", False, ["404", repr(MODEL), "--model"]),
        (HttpError(400, "messages: bad"), "bad_request", False, ["400", "messages: bad"]),
    ],
)
async def test_http_errors_map_to_kinds(
    api: FakeAnthropic, error: HttpError, kind: str, retryable: bool, words: list[str]
) -> None:
    api.add(error)
    caught = await failure(provider_for(api))
    assert (caught.kind, caught.retryable) == (kind, retryable)
    for word in words:
        assert word in caught.message


async def test_a_long_server_message_is_cut_to_one_short_line(api: FakeAnthropic) -> None:
    api.add(HttpError(400, "line one\nline two " + "x" * 1000))
    caught = await failure(provider_for(api))
    assert "line one line two" in caught.message
    assert len(caught.message) < 300


async def test_an_error_event_mid_stream_after_text_is_a_server_error(api: FakeAnthropic) -> None:
    api.add(Reply("partial answer", error=("overloaded_error", "Overloaded")))
    seen: list[Event] = []
    provider = provider_for(api)
    with pytest.raises(ProviderError) as caught:
        async for event in provider.stream(system="", messages=[Message("user", "Hi")], tools=[]):
            seen.append(event)
    await provider.aclose()
    assert "".join(e.text for e in seen if isinstance(e, TextDelta)) == "partial answer"
    assert (caught.value.kind, caught.value.retryable) == ("server", True)
    assert "Overloaded" in caught.value.message


async def test_a_stream_that_ends_before_message_stop_is_a_protocol_error(
    api: FakeAnthropic,
) -> None:
    api.add(Reply("cut short", end_after=4))
    caught = await failure(provider_for(api))
    assert (caught.kind, caught.retryable) == ("protocol", True)
    assert "message_stop" in caught.message


async def test_connection_refused_names_the_base_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    caught = await failure(AnthropicProvider(MODEL, api_key=KEY, base_url=base_url))
    assert (caught.kind, caught.retryable) == ("connection", True)
    assert base_url in caught.message
    assert "ANTHROPIC_BASE_URL" in caught.message


async def test_a_server_that_never_answers_times_out(api: FakeAnthropic) -> None:
    api.add(Hang())
    caught = await failure(provider_for(api, timeout=0.3))
    assert (caught.kind, caught.retryable) == ("timeout", True)
    assert "0.3s" in caught.message


async def test_a_stream_that_stalls_times_out(api: FakeAnthropic) -> None:
    api.add(Reply("never finished", hang_after=4))
    caught = await failure(provider_for(api, timeout=0.3))
    assert (caught.kind, caught.retryable) == ("timeout", True)


async def test_no_api_key_anywhere_is_an_auth_error_without_a_request(
    api: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
    caught = await failure(AnthropicProvider(MODEL))
    assert (caught.kind, caught.retryable) == ("auth", False)
    assert "ANTHROPIC_API_KEY" in caught.message
    assert api.requests == []


# -- the fake and the import -------------------------------------------------------------


def test_the_fake_rejects_conversations_the_api_rejects() -> None:
    user = {"role": "user", "content": "hi"}
    calls = {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "x"}]}
    answer = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]}
    assert problems({"messages": [user, calls, answer]}) is None
    assert "alternate" in (problems({"messages": [user, user]}) or "")
    assert "without tool_result" in (problems({"messages": [user, calls, user]}) or "")
    late = {"role": "user", "content": [{"type": "text", "text": "x"}, answer["content"][0]]}
    assert "come first" in (problems({"messages": [user, calls, late]}) or "")


def test_importing_the_provider_does_not_import_the_sdk() -> None:
    code = (
        "import sys, deeting_tui.llm.anthropic_provider\n"
        "print('anthropic' in sys.modules, 'httpx2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
