"""`deeting --script` against model servers it has never seen: a Chat Completions server
and a Messages API server, both fakes on 127.0.0.1, selected purely by the environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from llm.fake_openai import FakeCall, FakeOpenAI, Reply
from support import FIXTURES, run_deeting

GOOD = FIXTURES / "good_plugin"


@pytest.fixture
def installed(home: Path) -> Path:
    done = run_deeting("plugin", "install", str(GOOD), "--yes", home=home)
    assert done.returncode == 0, done.stderr
    return home


def test_openai_compatible_server_tool_round_trip(installed: Path) -> None:
    fake = FakeOpenAI(
        [
            Reply.tool_calls(FakeCall("add", {"a": 2, "b": 3}, id="call_1"), split=3),
            Reply.text("The sum ", "is 5."),
        ]
    )
    with fake.running_in_thread() as server:
        env = {"OPENAI_BASE_URL": server.base_url}
        done = run_deeting(
            "--script", "-", "--json", home=installed, stdin="what is 2+3?\n", env=env
        )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds == ["tool_call", "tool_result", "reply"]
    assert events[0]["tool"] == "add" and events[0]["args"] == {"a": 2, "b": 3}
    assert events[1]["ok"] and events[1]["data"] == {"sum": 5}
    assert events[2]["text"] == "The sum is 5."
    assert events[2]["provider"] == "openai" and events[2]["model"] == "gpt-4o-mini"
    # The model got the plugin's text result, answering its own call id.
    second = fake.requests[1]["messages"]
    assert {"role": "tool", "tool_call_id": "call_1", "content": "5"} in second
    assert [t["function"]["name"] for t in fake.requests[0]["tools"]] == ["add", "echo"]


def test_plain_output_prints_the_final_answer(installed: Path) -> None:
    fake = FakeOpenAI([Reply.text("Hello from the model.")])
    with fake.running_in_thread() as server:
        env = {"OPENAI_BASE_URL": server.base_url}
        done = run_deeting("--script", "-", home=installed, stdin="hi\n", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello from the model.\n"


def test_a_provider_error_is_one_line_and_exit_1(installed: Path) -> None:
    fake = FakeOpenAI([Reply.error(401, "Incorrect API key provided: sk-bad")])
    with fake.running_in_thread() as server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-bad"}
        done = run_deeting("--script", "-", home=installed, stdin="hi\n", env=env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "rejected the API key (401)" in lines[0], done.stderr
    assert "OPENAI_API_KEY" in lines[0]


def test_help_says_which_provider_answers(home: Path) -> None:
    done = run_deeting("--help", home=home, env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert "now: openai, model gpt-4o-mini (OPENAI_BASE_URL is set)" in " ".join(
        done.stdout.split()
    )


def test_messages_api_server_tool_round_trip(installed: Path) -> None:
    from llm.fake_anthropic import FakeAnthropic, ToolUse
    from llm.fake_anthropic import Reply as AnthropicReply

    script = [
        AnthropicReply(text="Adding.", tool_uses=[ToolUse("add", {"a": 2, "b": 3}, id="tu_1")]),
        AnthropicReply(text="It is 5."),
    ]
    with FakeAnthropic(script, api_key="sk-ant-test") as server:
        env = {"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": server.base_url}
        done = run_deeting(
            "--script", "-", "--json", home=installed, stdin="what is 2+3?\n", env=env
        )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["type"] for e in events] == ["reply", "tool_call", "tool_result", "reply"]
    assert events[1]["args"] == {"a": 2, "b": 3} and events[2]["data"] == {"sum": 5}
    assert events[-1]["text"] == "It is 5." and events[-1]["provider"] == "anthropic"
    sent = server.requests[1].body["messages"]
    results = [b for m in sent for b in (m["content"] if isinstance(m["content"], list) else [])]
    assert any(b.get("type") == "tool_result" and b.get("tool_use_id") == "tu_1" for b in results)


def test_messages_api_auth_error_is_one_line(installed: Path) -> None:
    from llm.fake_anthropic import FakeAnthropic

    with FakeAnthropic([], api_key="sk-ant-right") as server:
        env = {"ANTHROPIC_API_KEY": "sk-ant-wrong", "ANTHROPIC_BASE_URL": server.base_url}
        done = run_deeting("--script", "-", home=installed, stdin="hi\n", env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "401" in lines[0] and "ANTHROPIC_API_KEY" in lines[0], lines


def test_ctrl_c_stops_a_waiting_model_call_cleanly(installed: Path) -> None:
    """Ctrl-C while the model has not answered: exit 130, one line, the session kept."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from support import REPO

    from deeting_tui.kernel.sessions.store import SessionStore

    fake = FakeOpenAI([Reply.never()])
    with fake.running_in_thread() as server:
        env = {**os.environ, "DEETING_HOME": str(installed), "OPENAI_BASE_URL": server.base_url}
        process = subprocess.Popen(
            [sys.executable, "-m", "deeting_tui", "--script", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO,
            text=True,
        )
        try:
            assert process.stdin is not None
            process.stdin.write("tell me something\n")
            process.stdin.flush()
            deadline = time.monotonic() + 30
            while not fake.requests:  # wait for the request to reach the model server
                assert time.monotonic() < deadline, "the model was never asked"
                assert process.poll() is None, process.communicate()
                time.sleep(0.01)
            process.send_signal(signal.SIGINT)
            _out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 130, err
    assert err.strip() == "deeting: interrupted" and "Traceback" not in err
    with SessionStore(installed / "data" / "sessions.sqlite3") as store:
        latest = store.latest()
        assert latest is not None
        assert [e.payload["text"] for e in store.events(latest.id, kinds=["user"])] == [
            "tell me something"
        ]


def test_json_reply_events_carry_the_tool_spec_figures(installed: Path) -> None:
    fake = FakeOpenAI([Reply.text("Hello.")])
    with fake.running_in_thread() as server:
        env = {"OPENAI_BASE_URL": server.base_url}
        done = run_deeting("--script", "-", "--json", home=installed, stdin="hi\n", env=env)
    assert done.returncode == 0, done.stderr
    (reply,) = [json.loads(line) for line in done.stdout.splitlines()]
    # Two tools: under the budget, every spec is sent; tokens are the estimate of both.
    figures = reply["tool_specs"]
    assert figures["sent"] == figures["total"] == 2
    assert figures["tokens"] == figures["all_tokens"] > 0


def test_a_budgeted_turn_finds_a_tool_and_a_resumed_session_keeps_it(installed: Path) -> None:
    """With 32 tools installed, find_tools brings `add` into the turn; resumed in a new
    process, the session's stored call makes `add` a recent tool, sent without a search."""
    from support import HOSTILE

    done = run_deeting("plugin", "install", str(HOSTILE / "crowder"), "--yes", home=installed)
    assert done.returncode == 0, done.stderr
    fake = FakeOpenAI(
        [
            Reply.tool_calls(FakeCall("find_tools", {"query": "add numbers"}, id="c1")),
            Reply.tool_calls(FakeCall("add", {"a": 2, "b": 3}, id="c2")),
            Reply.text("It is 5."),
            Reply.text("You asked for 2 + 3."),
        ]
    )
    with fake.running_in_thread() as server:
        env = {"OPENAI_BASE_URL": server.base_url}
        first = run_deeting("--script", "-", "--json", home=installed, stdin="hi there\n", env=env)
        assert first.returncode == 0, first.stderr
        events = [json.loads(line) for line in first.stdout.splitlines()]
        assert [e["type"] for e in events] == ["tool_call", "tool_result", "reply"]
        assert events[0]["tool"] == "add"  # find_tools is the agent's: not a stored call
        session = events[0]["session_id"]
        again = run_deeting(
            "--script", "-", "--json", "--session", session,
            home=installed, stdin="what did I ask?\n", env=env,
        )  # fmt: skip
    assert again.returncode == 0, again.stderr
    names = [[t["function"]["name"] for t in r["tools"]] for r in fake.requests]
    assert names[0][0] == "find_tools" and "add" not in names[0]
    assert "add" in names[1] and "add" in names[3]  # found, then recent from the stored session
    replay = fake.requests[3]["messages"]
    assert any(m.get("tool_calls") for m in replay)  # the history replays the stored call
    reply = json.loads(again.stdout.splitlines()[-1])
    assert reply["text"] == "You asked for 2 + 3."
    assert reply["tool_specs"]["sent"] < reply["tool_specs"]["total"] == 32
