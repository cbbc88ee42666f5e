"""``deeting mcp import FILE`` (deeting_tui/mcp/import_command.py): what it says, what it asks,
and the requests it hands to ``mcp add``'s code (a fake ``add_server`` records them; the
install itself is tested with the bridge)."""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import deeting_tui.mcp.import_command as import_command
from deeting_tui.mcp.add import AddError, AddRequest


class FakeAdd:
    def __init__(self, fail_for: tuple[str, ...] = ()) -> None:
        self.requests: list[AddRequest] = []
        self.fail_for = fail_for

    async def __call__(self, kernel: Any, request: AddRequest, **_: Any) -> Any:
        assert kernel is not None
        self.requests.append(request)
        if request.name in self.fail_for:
            raise AddError(f"could not install {request.name}: no wheel")
        return SimpleNamespace(
            granted=[], enabled=True, awaiting=[], spec=SimpleNamespace(name=request.name, tools=[])
        )


@pytest.fixture
def fake_add(monkeypatch: pytest.MonkeyPatch, home: Path) -> Iterator[FakeAdd]:
    fake = FakeAdd()
    monkeypatch.setattr(import_command, "add_server", fake)
    yield fake


def _file(tmp_path: Path, servers: dict[str, Any]) -> str:
    path = tmp_path / "claude_desktop_config.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return str(path)


def _args(
    file: str, *, only: list[str] | None = None, grant: list[str] | None = None, yes: bool = False
) -> argparse.Namespace:
    return argparse.Namespace(file=file, only=only or [], grant=grant or [], yes=yes)


SERVERS = {
    "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/d"]},
    "Time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ_KEY": "s3cret-value"}},
    "local": {"command": sys.executable, "args": ["-m", "my_server"]},
    "remote": {"url": "https://mcp.example.com/sse?token=abc"},
}


def test_yes_adds_each_server_with_its_grants_and_skips_a_remote_one(
    fake_add: FakeAdd, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _file(tmp_path, SERVERS)
    code = import_command.run_import(
        _args(file, yes=True, grant=["files=filesystem:read:/d", "Time=network:api.example.com"])
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert fake_add.requests == [
        AddRequest(
            name="files",
            source="npm",
            package="@modelcontextprotocol/server-filesystem",
            program=None,
            args=["/d"],
            grants=["filesystem:read:/d"],
            env={},
            bin=None,
            yes=True,
        ),
        AddRequest(
            name="time",
            source="pypi",
            package="mcp-server-time",
            program=None,
            args=[],
            grants=["network:api.example.com"],
            env={"TZ_KEY": "s3cret-value"},
            bin=None,
            yes=True,
        ),
        AddRequest(
            name="local",
            source="command",
            package=None,
            program=sys.executable,
            args=["-m", "my_server"],
            grants=[],
            env={},
            bin=None,
            yes=True,
        ),
    ]
    assert "files: @modelcontextprotocol/server-filesystem from npm; args: /d" in out
    assert "time (from 'Time'): mcp-server-time from PyPI; env: TZ_KEY" in out
    assert "s3cret-value" not in out + err
    assert "deeting: warning: remote: a remote (url) server: deeting runs stdio servers only" in err
    assert "token" not in out + err


def test_one_failing_server_does_not_stop_the_rest_and_the_exit_is_1(
    fake_add: FakeAdd, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_add.fail_for = ("files",)
    servers = {**SERVERS, "gone": {"command": "no-such-program-here"}}
    code = import_command.run_import(_args(_file(tmp_path, servers), yes=True))
    _, err = capsys.readouterr()
    assert code == 1
    assert [r.name for r in fake_add.requests] == ["files", "time", "local"]
    assert "deeting: error: files: could not install files: no wheel" in err
    assert "deeting: error: gone: the program 'no-such-program-here' is not on this machine" in err


def test_without_a_terminal_or_yes_nothing_is_asked_or_added(
    fake_add: FakeAdd, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = import_command.run_import(_args(_file(tmp_path, SERVERS)))
    assert code == 1
    assert fake_add.requests == []
    assert capsys.readouterr().err == (
        "deeting: error: this is not a terminal, so nothing can be asked: run with --yes, "
        "granting what each server may touch with --grant SERVER=SCOPE (e.g. --grant "
        "files=filesystem:read:~/Documents)\n"
    )


def test_on_a_terminal_each_servers_scopes_are_asked_and_a_bad_one_asked_again(
    fake_add: FakeAdd,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    answers = iter(["bogus:x", "network:api.example.com filesystem:read:/d", "skip", ""])
    asked: list[str] = []

    def ask(question: str) -> str:
        asked.append(question)
        return next(answers)

    file = _file(tmp_path, {k: v for k, v in SERVERS.items() if k != "remote"})
    code = import_command.run_import(_args(file, grant=["local=network:x.example"]), ask=ask)
    _, err = capsys.readouterr()
    assert code == 0, err
    assert len(asked) == 4 and asked[0].startswith("scopes for files (e.g. network:")
    assert "'bogus' is not a scope" in err
    assert [(r.name, r.grants) for r in fake_add.requests] == [
        ("files", ["network:api.example.com", "filesystem:read:/d"]),
        ("local", ["network:x.example"]),
    ]


def test_end_of_input_at_a_question_adds_nothing(
    fake_add: FakeAdd,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)

    def ask(question: str) -> str:
        raise EOFError

    assert import_command.run_import(_args(_file(tmp_path, SERVERS)), ask=ask) == 1
    assert fake_add.requests == []
    assert "no answer for files (end of input): nothing was added" in capsys.readouterr().err


def test_the_file_on_stdin_with_yes_and_only(
    fake_add: FakeAdd, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.dumps({"servers": SERVERS}).encode()
    monkeypatch.setattr(
        sys, "stdin", SimpleNamespace(buffer=io.BytesIO(data), isatty=lambda: False)
    )
    assert import_command.run_import(_args("-", yes=True, only=["Time"])) == 0
    assert [r.name for r in fake_add.requests] == ["time"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"only": ["nope"]}, "has no server 'nope' (its servers: files, Time, local, remote)"),
        ({"grant": ["files"]}, "--grant 'files': write SERVER=SCOPE"),
        ({"grant": ["nope=network"]}, "--grant 'nope=network': the file has no server 'nope'"),
        ({"grant": ["files=bogus"]}, "--grant 'files=bogus': 'bogus' is not a scope"),
    ],
)
def test_bad_arguments_are_one_line_and_add_nothing(
    kw: dict[str, Any],
    message: str,
    fake_add: FakeAdd,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert import_command.run_import(_args(_file(tmp_path, SERVERS), yes=True, **kw)) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert fake_add.requests == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"\x00\xff", "is not UTF-8 text (byte 1)"),
        (
            b'{"mcpServers": {"a": {"command": "x", "args": "y"}}}',
            ": mcpServers.a.args must be a list of strings",
        ),
    ],
)
def test_a_bad_file_is_one_line_naming_it(
    content: bytes | None,
    message: str,
    fake_add: FakeAdd,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "mcp.json"
    if content is not None:
        path.write_bytes(content)
    assert import_command.run_import(_args(str(path), yes=True)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"deeting: error: {path}") and message in err
    assert err.count("\n") == 1 and fake_add.requests == []


def test_a_folder_is_not_a_file(
    fake_add: FakeAdd, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert import_command.run_import(_args(str(tmp_path), yes=True)) == 1
    assert "is a folder: give the JSON file itself" in capsys.readouterr().err
