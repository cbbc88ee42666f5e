"""``deeting mcp add`` and ``deeting mcp review`` as a user runs them: the real command in a
fresh home, then the server's tools from ``deeting --script``; bad usage gets one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import fake_mcp_program, run_deeting


@pytest.fixture
def program(tmp_path: Path) -> Path:
    return fake_mcp_program(tmp_path)


def test_add_then_call_from_a_script(tmp_path: Path, program: Path) -> None:
    home = tmp_path / "home"
    added = run_deeting("mcp", "add", "fake", "--command", "--", str(program), home=home)
    assert added.returncode == 0, added.stderr
    assert "installed fake 1.0.0 (a stock MCP server, added with deeting mcp add)" in added.stdout
    assert "tools (pinned): echo, slow, fail" in added.stdout
    script = run_deeting("--script", "-", "--json", home=home, stdin="/echo message=hi\n")
    assert script.returncode == 0, script.stderr
    results = [json.loads(line) for line in script.stdout.splitlines()]
    (result,) = [e for e in results if e["type"] == "tool_result"]
    assert result["data"] == {"echo": "hi", "length": 2}
    info = run_deeting("plugin", "info", "fake", home=home)
    assert "mcp server:" in info.stdout and "to see changes: deeting mcp review fake" in info.stdout
    review = run_deeting("mcp", "review", "fake", home=home)
    assert review.returncode == 0 and "as you approved them" in review.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("mcp", "add", "fake", "--command"), "--command needs the program after --"),
        (("mcp", "add", "fake", "--pypi", "x", "--env", "NOEQUALS"), "expected KEY=VALUE"),
        (("mcp", "add", "fake", "--command", "--", "/nonexistent/x"), "no such program"),
        (("mcp", "review", "nothing"), "no plugin 'nothing' is installed"),
    ],
)
def test_bad_usage_is_one_line_and_installs_nothing(
    tmp_path: Path, args: tuple[str, ...], words: str
) -> None:
    home = tmp_path / "home"
    done = run_deeting(*args, home=home)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    listing = run_deeting("plugin", "list", "--json", home=home)
    assert "fake" not in listing.stdout


def test_a_source_is_required(tmp_path: Path) -> None:
    done = run_deeting("mcp", "add", "fake", home=tmp_path / "home")
    assert done.returncode == 2
    assert "one of the arguments --pypi --npm --command is required" in done.stderr
