"""The MCP servers file parser (deeting_tui/mcp/imports.py): each shape a desktop assistant or
an IDE writes, each launcher mapped to its registry, and each bad input refused with one line
that names the file and the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deeting_tui.mcp.imports import (
    MAX_FILE_BYTES,
    ImportFileError,
    Proposal,
    parse_mcp_servers,
    plugin_name,
)

SOURCE = "claude_desktop_config.json"


def _which(name: str) -> str | None:
    return {"python3": "/usr/bin/python3", "my-server": "/opt/bin/my-server"}.get(name)


def _parse(document: Any) -> list[Proposal]:
    return parse_mcp_servers(json.dumps(document).encode(), SOURCE, which=_which)


def _one(entry: dict[str, Any], key: str = "srv") -> Proposal:
    [proposal] = _parse({"mcpServers": {key: entry}})
    return proposal


def test_claude_desktop_file_with_all_three_sources() -> None:
    proposals = _parse(
        {
            "mcpServers": {
                "filesystem": {
                    "command": "npx",
                    "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/u/Docs"],
                },
                "time": {"command": "uvx", "args": ["mcp-server-time", "--local-timezone=UTC"]},
                "mine": {"command": "my-server", "args": ["--flag"], "env": {"API_KEY": "s3cr3t"}},
            }
        }
    )
    assert [(p.name, p.source, p.package, p.program, p.args) for p in proposals] == [
        (
            "filesystem",
            "npm",
            "@modelcontextprotocol/server-filesystem",
            None,
            ("/home/u/Docs",),
        ),
        ("time", "pypi", "mcp-server-time", None, ("--local-timezone=UTC",)),
        ("mine", "command", None, "/opt/bin/my-server", ("--flag",)),
    ]
    assert proposals[2].env == {"API_KEY": "s3cr3t"}
    assert not any(p.renamed or p.problem for p in proposals)


def test_the_line_names_env_keys_never_their_values() -> None:
    proposal = _one({"command": "npx", "args": ["pkg", "a"], "env": {"TOKEN": "hunter2"}})
    assert proposal.line == "srv: pkg from npm; args: a; env: TOKEN"
    assert "hunter2" not in proposal.line


@pytest.mark.parametrize(
    ("command", "args", "package", "bin", "rest"),
    [
        ("npx", ["-y", "pkg@1.2.3", "x"], "pkg@1.2.3", None, ("x",)),
        ("npx", ["--yes", "@s/p@latest"], "@s/p", None, ()),
        ("/usr/local/bin/npx", ["@s/p", "--", "x"], "@s/p", None, ("--", "x")),
        ("npx", ["-p", "@s/tools", "tool-a", "x"], "@s/tools", "tool-a", ("x",)),
        ("npx", ["--package=@s/tools", "tool-a"], "@s/tools", "tool-a", ()),
        ("npm", ["exec", "-y", "pkg"], "pkg", None, ()),
        ("pnpm", ["dlx", "pkg"], "pkg", None, ()),
        ("bunx", ["pkg", "x"], "pkg", None, ("x",)),
    ],
)
def test_npm_launchers(
    command: str, args: list[str], package: str, bin: str | None, rest: tuple[str, ...]
) -> None:
    proposal = _one({"command": command, "args": args})
    assert (proposal.source, proposal.package, proposal.bin, proposal.args) == (
        "npm",
        package,
        bin,
        rest,
    )


@pytest.mark.parametrize(
    ("command", "args", "package", "bin", "rest"),
    [
        ("uvx", ["mcp-server-fetch"], "mcp-server-fetch", None, ()),
        ("uvx", ["mcp-server-time@2026.10.19", "-x"], "mcp-server-time==2026.10.19", None, ("-x",)),
        ("uvx", ["mcp-server-time@latest"], "mcp-server-time", None, ()),
        ("uvx", ["mcp-server-time==2026.10.19"], "mcp-server-time==2026.10.19", None, ()),
        ("uvx", ["--from", "pkg-tools", "tool-b", "a"], "pkg-tools", "tool-b", ("a",)),
        ("uvx", ["--from", "pkg", "pkg"], "pkg", None, ()),
        ("uvx", ["--python", "3.12", "pkg"], "pkg", None, ()),
        ("uv", ["tool", "run", "pkg", "a"], "pkg", None, ("a",)),
        ("pipx", ["run", "pkg", "a"], "pkg", None, ("a",)),
        ("pipx", ["run", "--spec", "pkg==1.0", "tool"], "pkg==1.0", "tool", ()),
    ],
)
def test_python_launchers(
    command: str, args: list[str], package: str, bin: str | None, rest: tuple[str, ...]
) -> None:
    proposal = _one({"command": command, "args": args})
    assert (proposal.source, proposal.package, proposal.bin, proposal.args) == (
        "pypi",
        package,
        bin,
        rest,
    )


def test_python_dash_m_is_a_command_with_its_absolute_path() -> None:
    proposal = _one({"command": "python3", "args": ["-m", "my_server", "--port", "0"]})
    assert (proposal.source, proposal.program, proposal.args) == (
        "command",
        "/usr/bin/python3",
        ("-m", "my_server", "--port", "0"),
    )


def test_an_absolute_program_is_kept_when_it_exists(tmp_path: Any) -> None:
    program = tmp_path / "srv"
    program.write_text("#!/bin/sh\n")
    proposal = _one({"command": str(program)})
    assert (proposal.source, proposal.program, proposal.problem) == ("command", str(program), None)
    missing = _one({"command": str(tmp_path / "gone")})
    assert missing.problem and "not on this machine" in missing.problem
    assert not missing.unsupported


def test_a_program_not_found_is_one_line_and_the_rest_still_import() -> None:
    proposals = _parse(
        {"mcpServers": {"a": {"command": "nope-not-here"}, "b": {"command": "npx", "args": ["x"]}}}
    )
    assert proposals[0].problem == (
        "the program 'nope-not-here' is not on this machine (not found on PATH): install it, "
        'or fix the file\'s "command"'
    )
    assert proposals[0].line.startswith("a: the program 'nope-not-here' is not")
    assert proposals[1].package == "x"


def test_remote_servers_are_skipped_one_line_each_and_never_show_the_url() -> None:
    proposals = _parse(
        {
            "mcpServers": {
                "remote": {"url": "https://mcp.example.com/sse?token=abc"},
                "typed": {"type": "http", "url": "https://x.example/mcp"},
                "sse": {"type": "sse", "command": "ignored"},
                "local": {"command": "npx", "args": ["pkg"]},
            }
        }
    )
    assert [p.unsupported for p in proposals] == [True, True, True, False]
    assert (
        proposals[0].line
        == "remote: a remote (url) server: deeting runs stdio servers only; skipped"
    )
    assert (
        proposals[1].line
        == "typed: a remote (http) server: deeting runs stdio servers only; skipped"
    )
    assert all("token" not in p.line and "example" not in p.line for p in proposals)


def test_vs_code_servers_with_type_stdio_and_comments() -> None:
    text = b"""{
      // VS Code's mcp.json allows comments
      "servers": {
        "Time Server": {"type": "stdio", "command": "uvx", "args": ["mcp-server-time"],},
        /* and block comments, and "//" inside strings */
        "web": {"type": "stdio", "command": "npx", "args": ["pkg", "https://a.example//x"]},
      },
    }"""
    proposals = parse_mcp_servers(text, ".vscode/mcp.json", which=_which)
    assert [(p.name, p.renamed, p.package, p.args) for p in proposals] == [
        ("time-server", True, "mcp-server-time", ()),
        ("web", False, "pkg", ("https://a.example//x",)),
    ]
    assert proposals[0].line == "time-server (from 'Time Server'): mcp-server-time from PyPI"


def test_vs_code_settings_nesting() -> None:
    proposals = _parse({"mcp": {"servers": {"t": {"command": "uvx", "args": ["p"]}}}})
    assert proposals[0].package == "p"


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("Time", "time"),
        ("my_server.v2", "my-server-v2"),
        ("--Weird--", "weird"),
        ("日本", "server"),
        ("a" * 80, "a" * 64),
        ("x" * 63 + "-y", "x" * 63),
    ],
)
def test_plugin_names(key: str, name: str) -> None:
    assert plugin_name(key) == name


def test_two_keys_that_make_one_name_get_distinct_names() -> None:
    proposals = _parse(
        {
            "mcpServers": {
                "My Server": {"command": "npx", "args": ["a"]},
                "my-server!": {"command": "npx", "args": ["b"]},
            }
        }
    )
    assert [p.name for p in proposals] == ["my-server", "my-server-2"]
    assert all(p.renamed for p in proposals)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"command": "npx", "args": ["git+https://github.com/a/b.git"]}, "is a URL or a path"),
        ({"command": "npx", "args": ["a/b"]}, "looks like a GitHub repository"),
        ({"command": "npx", "args": ["-y"]}, "npx names no package"),
        ({"command": "npx", "args": ["--registry", "x", "p"]}, "npx's option '--registry'"),
        ({"command": "uvx", "args": ["--with", "x", "p"]}, "uvx's option '--with'"),
        ({"command": "uvx", "args": ["p>=1"]}, "give one exact version"),
        ({"command": "uvx", "args": ["git+https://x/y"]}, "is a URL"),
        ({"command": "pipx", "args": ["run"]}, "pipx run names no package"),
    ],
)
def test_a_launcher_whose_package_is_not_a_registry_package_is_a_problem(
    entry: dict[str, Any], problem: str
) -> None:
    proposal = _one(entry)
    assert proposal.problem is not None and problem in proposal.problem, proposal.problem
    assert not proposal.unsupported


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe{}", f"{SOURCE} is not UTF-8 text (byte 0)"),
        (
            b"{nope",
            f"{SOURCE} is not JSON: Expecting property name enclosed in double quotes "
            "(line 1, column 2)",
        ),
        (b"", f"{SOURCE} is empty: an MCP servers file is a JSON object"),
        (b"  \n", f"{SOURCE} is empty: an MCP servers file is a JSON object"),
        (b"[1]", f'{SOURCE}: the top level must be a JSON object with "mcpServers", not a list'),
        (
            b'{"other": 1}',
            f'{SOURCE} has no "mcpServers" object (nor VS Code\'s "servers"): '
            "it is not an MCP servers file",
        ),
        (
            b'{"mcpServers": []}',
            f'{SOURCE}: "mcpServers" must be an object of servers (NAME: '
            "{command, args, env}), not a list",
        ),
        (b'{"mcpServers": {}}', f'{SOURCE}: "mcpServers" is empty: there is no server to import'),
        (
            b'{"mcpServers": {"a": "npx"}}',
            f'{SOURCE}: mcpServers.a must be an object with a "command"',
        ),
        (
            b'{"mcpServers": {"a": {"args": []}}}',
            f"{SOURCE}: mcpServers.a.command must be a non-empty string (the program)",
        ),
        (
            b'{"mcpServers": {"a": {"command": 5}}}',
            f"{SOURCE}: mcpServers.a.command must be a non-empty string (the program)",
        ),
        (
            b'{"mcpServers": {"a": {"command": "x", "args": "-y p"}}}',
            f"{SOURCE}: mcpServers.a.args must be a list of strings",
        ),
        (
            b'{"mcpServers": {"a": {"command": "x", "args": [1]}}}',
            f"{SOURCE}: mcpServers.a.args must be a list of strings",
        ),
        (
            b'{"mcpServers": {"a": {"command": "x", "env": {"K": 1}}}}',
            f"{SOURCE}: mcpServers.a.env must be an object of strings (NAME: value)",
        ),
        (
            b'{"mcpServers": {"a": {"command": "x", "env": ["K"]}}}',
            f"{SOURCE}: mcpServers.a.env must be an object of strings (NAME: value)",
        ),
        (
            b'{"mcpServers": {"a": {"command": "x", "env": {"A=B": "v"}}}}',
            f"{SOURCE}: mcpServers.a.env: 'A=B' is not an environment variable name",
        ),
        (
            b'{"mcpServers": {"a": {"command": "x", "type": 3}}}',
            f"{SOURCE}: mcpServers.a.type must be a string",
        ),
    ],
)
def test_bad_files_are_one_line_naming_the_file_and_the_field(data: bytes, message: str) -> None:
    with pytest.raises(ImportFileError) as caught:
        parse_mcp_servers(data, SOURCE, which=_which)
    assert caught.value.message == message


def test_a_huge_file_is_refused_by_its_size_before_it_is_read_as_json() -> None:
    data = b'{"mcpServers": {' + b" " * MAX_FILE_BYTES + b"}}"
    with pytest.raises(ImportFileError) as caught:
        parse_mcp_servers(data, SOURCE, which=_which)
    assert caught.value.message == (
        f"{SOURCE} is {len(data):,} bytes: an MCP servers file is at most 1 MiB"
    )


def test_a_hostile_key_reaches_the_line_neutralised_and_cut() -> None:
    key = "\x1b[31mred\x1b]0;title\x07" + "k" * 500
    proposal = _one({"command": "npx", "args": ["p\x1b[2J"]}, key=key)
    assert "\x1b" not in proposal.line and "\x07" not in proposal.line
    assert "more characters" in proposal.line
    assert proposal.name.startswith("31mred-0-title")


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ({"command": "npx", "args": ["p"], "env": {"KEY": "${input:api-key}"}}, "env KEY"),
        ({"command": "npx", "args": ["p", "${workspaceFolder}"]}, "its args (${workspaceFolder})"),
    ],
)
def test_an_editors_placeholder_is_a_problem_not_a_literal_value(
    entry: dict[str, Any], said: str
) -> None:
    proposal = _one(entry)
    assert proposal.problem == (
        f"{said} holds an editor's ${{...}} placeholder, which deeting cannot fill: add this "
        "server with `deeting mcp add` and the real value"
    )
    assert "api-key" not in proposal.line


def test_the_utf8_bom_of_a_windows_editor_is_accepted() -> None:
    data = (
        b"\xef\xbb\xbf"
        + json.dumps({"mcpServers": {"a": {"command": "npx", "args": ["p"]}}}).encode()
    )
    assert parse_mcp_servers(data, SOURCE, which=_which)[0].package == "p"
