"""An MCP server as a plugin, end to end through the real kernel and a real sandboxed worker,
with a server of our own (tests/fixtures/mcp/fake_server.py: standard library only) so every
path is deterministic: tools pinned at add, calls with structured results, progress, cancel,
errors, the OS refusing what was not granted, a scrubbed environment, a crash, a start that
fails, a changed tool list (the pins), and bad input to ``mcp add``."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import FIXTURES, call_line, events_of, fake_mcp_program

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.mcp.add import AddError, AddRequest, add_server
from deeting_tui.mcp.server_env import ServerEnvError, ServerEnvStore

FAKE = FIXTURES / "mcp" / "fake_server.py"
REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 30.0


@pytest.fixture
def fake_program(tmp_path: Path) -> Path:
    return fake_mcp_program(tmp_path)


async def _add(kernel: Kernel, program: Path, *grants: str, **extra: Any) -> Any:
    request = AddRequest(
        name=extra.pop("name", "fake"),
        source="command",
        program=str(program),
        args=extra.pop("args", []),
        grants=list(grants),
        env=extra.pop("env", {}),
        yes=True,
    )
    return await add_server(kernel, request)


async def _call(kernel: Kernel, line: str) -> dict[str, Any]:
    return (await call_line(kernel, line, DEADLINE_S))[0]


async def test_add_pins_the_servers_tools_and_installs_it_as_a_plugin(
    kernel: Kernel, fake_program: Path
) -> None:
    report = await _add(kernel, fake_program)
    assert report.enabled
    root = report.spec.root
    tools = yaml.safe_load((root / "llm-tool.yaml").read_text("utf-8"))
    assert [t["name"] for t in tools][:3] == ["echo", "slow", "fail"]
    assert tools[0]["parameters"]["required"] == ["message"]
    pins = json.loads((root / "mcp-tools.json").read_text("utf-8"))
    assert pins["server"] == {"name": "fake", "version": "0.3.0"}
    assert pins["tools"][0]["outputSchema"]["required"] == ["echo", "length"]
    assert pins["tools"][0]["annotations"] == {"readOnlyHint": True}
    kimai = json.loads((root / "kimai.json").read_text("utf-8"))
    assert kimai["mcp"]["runtime"] == "command"
    assert kimai["mcp"]["entry"] == str(fake_program.resolve())
    assert kimai["permissions"] == []
    assert not (root / "src").exists()
    record = kernel.loader.installed.get("fake")
    assert record is not None and record.source.startswith("mcp server command:")
    assert not record.dev


async def test_structured_content_is_the_cards_data_and_text_goes_to_the_model(
    kernel: Kernel, fake_program: Path
) -> None:
    await _add(kernel, fake_program)
    result = await _call(kernel, "/echo message=hello")
    assert result["ok"], result
    assert result["data"] == {"echo": "hello", "length": 5}
    assert result["renderer"] == "key-value"  # a flat object reads best as lines
    assert result["text"] == "hello"
    assert result["plugin"] == "fake"


async def test_progress_reaches_the_kernel_and_a_cancel_reaches_the_server(
    kernel: Kernel, fake_program: Path
) -> None:
    await _add(kernel, fake_program)
    seen = events_of(kernel)
    result = await _call(kernel, "/slow steps=3")
    progress = [e for e in seen if e["type"] == "progress"]
    assert [round(e["fraction"], 2) for e in progress] == [0.33, 0.67, 1.0]
    assert progress[0]["message"] == "step 1"
    assert result["ok"] and result["text"] == "counted to 3"

    supervisor = kernel.loader.runtimes["fake"].supervisor
    pid = supervisor.pid
    seen.clear()
    turn = asyncio.create_task(kernel.submit(kernel.open_session().id, "/slow steps=100000"))

    async def started() -> None:
        while not any(e["type"] == "progress" for e in seen):
            await asyncio.sleep(0.01)  # polling our own event list

    await asyncio.wait_for(started(), DEADLINE_S)
    turn.cancel()
    await asyncio.gather(turn, return_exceptions=True)
    (cancelled,) = [e for e in seen if e["type"] == "tool_result"]
    assert cancelled["cancelled"] is True
    # The worker heard the cancel and passed it on: the same worker answers the next call.
    again = await _call(kernel, "/echo message=next")
    assert again["ok"] and supervisor.pid == pid


async def test_an_error_result_is_the_calls_error(kernel: Kernel, fake_program: Path) -> None:
    await _add(kernel, fake_program)
    result = await _call(kernel, "/fail")
    assert not result["ok"]
    assert "it failed on purpose" in result["error"]


async def test_a_result_against_the_tools_output_schema_is_refused(
    kernel: Kernel, fake_program: Path
) -> None:
    await _add(kernel, fake_program)
    result = await _call(kernel, "/bad-structure")
    assert not result["ok"]
    assert "refused" in result["error"] and "not a number" in result["error"]


async def test_the_os_refuses_files_outside_the_grants_and_says_which_scope(
    kernel: Kernel, fake_program: Path, tmp_path: Path
) -> None:
    granted, other = tmp_path / "granted", tmp_path / "other"
    for folder in (granted, other):
        folder.mkdir()
        (folder / "note.txt").write_text(f"in {folder.name}\n")
    await _add(kernel, fake_program, f"filesystem:read:{granted}")
    ok = await _call(kernel, f"/read path={granted / 'note.txt'}")
    assert ok["ok"] and ok["text"] == "in granted"
    refused = await _call(kernel, f"/read path={other / 'note.txt'}")
    assert not refused["ok"]
    assert "Permission denied" in refused["error"]
    assert f"deeting plugin grant fake filesystem:read:{other}" in refused["error"]
    secret = await _call(kernel, "/read path=/etc/shadow")
    assert not secret["ok"] and "Permission denied" in secret["error"]


async def test_starting_a_program_needs_shell(kernel: Kernel, fake_program: Path) -> None:
    await _add(kernel, fake_program)
    result = await _call(kernel, "/spawn program=/usr/bin/env")
    assert not result["ok"]
    assert "Permission denied" in result["error"]
    assert "deeting plugin grant fake shell" in result["error"]


async def test_no_network_without_a_grant(kernel: Kernel, fake_program: Path) -> None:
    await _add(kernel, fake_program)
    result = await _call(kernel, "/connect host=127.0.0.1 port=9")
    assert not result["ok"]
    assert "PermissionError" in result["error"] or "Operation not permitted" in result["error"]


async def test_the_server_gets_a_scrubbed_environment_with_only_its_own_values(
    kernel: Kernel, fake_program: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOME_API_KEY", "the-users-secret")
    await _add(kernel, fake_program, env={"FAKE_TOKEN": "for-fake-only"})
    result = await _call(kernel, "/env")
    env = json.loads(result["text"])
    assert "SOME_API_KEY" not in env and "the-users-secret" not in result["text"]
    assert env["FAKE_TOKEN"] == "for-fake-only"
    assert env["PATH"] == str(fake_program.parent)  # only the program's own folder
    assert env["TMPDIR"].startswith(str(kernel.paths.plugin_tmp("fake")))
    assert "PYTHONPATH" not in env
    # The value is the user's, kept private beside the grants, not in the plugin's folder.
    assert ServerEnvStore(kernel.paths.mcp_env_file).values("fake") == {
        "FAKE_TOKEN": "for-fake-only"
    }
    assert os.stat(kernel.paths.mcp_env_file).st_mode & 0o077 == 0
    kimai = kernel.loader.runtimes["fake"].spec.root / "kimai.json"
    assert "for-fake-only" not in kimai.read_text()


async def test_a_server_that_exits_is_a_crash_said_with_its_last_words(
    kernel: Kernel, fake_program: Path
) -> None:
    await _add(kernel, fake_program)
    supervisor = kernel.loader.runtimes["fake"].supervisor
    assert (await _call(kernel, "/echo message=first"))["ok"]
    pid = supervisor.pid
    result = await _call(kernel, "/crash")
    assert not result["ok"]
    assert result["error"] == "the MCP server exited with status 3: crashing on purpose"

    async def restarted() -> None:
        while supervisor.pid in (pid, None):
            await asyncio.sleep(0.01)  # polling the supervisor's own state

    # The worker went down with its server (a crash, counted); the supervisor starts it again.
    await asyncio.wait_for(restarted(), DEADLINE_S)
    again = await _call(kernel, "/echo message=back")
    assert again["ok"], again
    log = kernel.paths.plugin_log("fake").read_text("utf-8", "replace")
    assert "crashing on purpose" in log and "exited with status 3" in log


async def test_a_server_that_cannot_start_installs_nothing_and_says_why(
    kernel: Kernel, fake_program: Path
) -> None:
    with pytest.raises(AddError) as refused:
        await _add(kernel, fake_program, args=["--start-fail"])
    message = refused.value.message
    assert "did not start" in message and "/etc/shadow" in message
    assert "deeting plugin grant fake filesystem:read:/etc" in message
    assert kernel.loader.installed.get("fake") is None
    assert not kernel.paths.plugin_data("fake").exists()
    staging = kernel.paths.plugins_dir / ".staging"
    assert not staging.exists() or not any(staging.iterdir())


async def test_a_changed_tool_is_refused_until_reviewed_and_the_user_is_told(
    kernel: Kernel, fake_program: Path
) -> None:
    await _add(kernel, fake_program)
    assert (await _call(kernel, "/echo message=before"))["ok"]
    # The server changes its description behind the user's back ("rug pull").
    (kernel.paths.plugin_data("fake") / "variant.txt").write_text("rugpull")
    await kernel.loader.disable("fake")
    seen = events_of(kernel)
    await kernel.loader.enable("fake")
    result = await _call(kernel, "/echo message=after")
    assert not result["ok"]
    assert "changed the tool 'echo'" in result["error"]
    assert "deeting mcp review fake" in result["error"]
    told = [e for e in seen if e["type"] != "tool_result"]
    assert any("deeting mcp review fake" in json.dumps(e) for e in told)
    # Tools it did not change still work, and the model still sees the approved spec.
    assert (await _call(kernel, "/fail"))["error"]
    spec = kernel.loader.runtimes["fake"].spec
    tool = spec.tool("echo")
    assert tool is not None and tool.description == "Echo the message back."


@pytest.mark.parametrize(
    ("request_fields", "words"),
    [
        ({"name": "Bad Name"}, "not a plugin name"),
        ({"grants": ["network:"]}, "--grant network:"),
        ({"program": "/nonexistent/server"}, "no such program"),
        ({"env": {"PATH": "/tmp"}}, "set by Deeting"),
        ({"env": {"1BAD": "x"}}, "not a variable name"),
    ],
)
async def test_bad_requests_are_refused_with_one_line_and_change_nothing(
    kernel: Kernel, fake_program: Path, request_fields: dict[str, Any], words: str
) -> None:
    fields: dict[str, Any] = {"name": "fake", "source": "command", "program": str(fake_program)}
    fields.update(request_fields)
    with pytest.raises((AddError, ServerEnvError)) as refused:
        await add_server(kernel, AddRequest(**fields, yes=True))
    assert words in str(refused.value) and "\n" not in str(refused.value)
    assert kernel.loader.installed.get(fields["name"]) is None


async def test_a_name_already_installed_is_refused(kernel: Kernel, fake_program: Path) -> None:
    await _add(kernel, fake_program)
    with pytest.raises(AddError, match="already installed"):
        await _add(kernel, fake_program)


async def test_an_authors_folder_may_not_carry_an_mcp_object(
    kernel: Kernel, tmp_path: Path
) -> None:
    import shutil

    from deeting_tui.kernel.plugins.lifecycle import PluginError

    folder = tmp_path / "calc"
    shutil.copytree(REPO / "plugins" / "calc", folder)
    kimai = json.loads((folder / "kimai.json").read_text())
    kimai["mcp"] = {"runtime": "command", "entry": "/bin/sh"}
    (folder / "kimai.json").write_text(json.dumps(kimai))
    with pytest.raises(PluginError, match="only `deeting mcp add` writes an mcp object"):
        await kernel.loader.install(folder)


async def test_review_shows_the_change_and_approval_lets_the_new_tool_through(
    kernel: Kernel, fake_program: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from deeting_tui.mcp.review import review_changes

    await _add(kernel, fake_program)
    assert await review_changes(kernel, "fake", yes=False) == 0
    assert "as you approved them" in capsys.readouterr().out
    (kernel.paths.plugin_data("fake") / "variant.txt").write_text("rugpull")
    # Without a terminal and without --yes nothing is approved.
    assert await review_changes(kernel, "fake", yes=False) == 1
    shown = capsys.readouterr()
    assert "changed: echo" in shown.out
    assert '-  "description": "Echo the message back.",' in shown.out
    assert "+" in shown.out and "id_rsa" in shown.out
    assert "deeting mcp review fake --yes" in shown.err
    assert await review_changes(kernel, "fake", yes=True) == 0
    await kernel.loader.disable("fake")
    await kernel.loader.enable("fake")
    result = await _call(kernel, "/echo message=approved")
    assert result["ok"], result
    tool = kernel.loader.runtimes["fake"].spec.tool("echo")
    assert tool is not None and "id_rsa" in tool.description


async def test_review_refuses_a_plugin_that_is_not_an_mcp_server(kernel: Kernel) -> None:
    from deeting_tui.mcp.review import ReviewError, review_changes

    await kernel.loader.install(REPO / "plugins" / "calc")
    with pytest.raises(ReviewError, match="not an MCP server"):
        await review_changes(kernel, "calc", yes=True)
    with pytest.raises(ReviewError, match="no plugin 'nope'"):
        await review_changes(kernel, "nope", yes=True)


async def test_granting_an_mcp_server_more_lets_the_os_allow_it(
    kernel: Kernel, fake_program: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "note.txt").write_text("later\n")
    await _add(kernel, fake_program)
    refused = await _call(kernel, f"/read path={other / 'note.txt'}")
    assert f"deeting plugin grant fake filesystem:read:{other}" in refused["error"]
    await kernel.plugins.grant("fake", f"filesystem:read:{other}")
    allowed = await _call(kernel, f"/read path={other / 'note.txt'}")
    assert allowed["ok"] and allowed["text"] == "later", allowed
    spec = kernel.loader.spec("fake")
    assert [str(s) for s in spec.permissions] == [f"filesystem:read:{other}"]


async def test_uninstalling_forgets_the_servers_env_values(
    kernel: Kernel, fake_program: Path
) -> None:
    await _add(kernel, fake_program, env={"FAKE_TOKEN": "x"})
    await kernel.loader.uninstall("fake")
    assert ServerEnvStore(kernel.paths.mcp_env_file).values("fake") == {}


async def test_the_plugins_details_say_what_it_may_run(kernel: Kernel, fake_program: Path) -> None:
    from deeting_tui.sandbox.policy import describe_grants

    kernel.plugins.describe_sandbox = describe_grants  # as compose.py wires it
    await _add(kernel, fake_program)
    info = kernel.plugins.info("fake")
    assert info.sandbox["programs"] == (
        f"{fake_program.resolve()} only (its server); any other program needs shell"
    )


async def test_a_call_past_its_deadline_ends_and_the_next_is_served(
    kernel: Kernel, fake_program: Path
) -> None:
    report = await _add(kernel, fake_program)
    kimai = report.spec.root / "kimai.json"
    manifest = json.loads(kimai.read_text())
    manifest["limits"] = {"call_timeout": 1}
    kimai.write_text(json.dumps(manifest))
    await kernel.loader.disable("fake")
    await kernel.loader.enable("fake")
    result = await _call(kernel, "/hang")
    assert not result["ok"] and "1 s" in result["error"], result
    assert (await _call(kernel, "/echo message=next"))["ok"]


async def test_a_server_that_keeps_dying_at_start_is_disabled_as_crashed(
    kernel: Kernel, fake_program: Path
) -> None:
    from deeting_tui.kernel.plugins.installed import Cause

    await _add(kernel, fake_program)
    (kernel.paths.plugin_data("fake") / "variant.txt").write_text("die-at-start")
    await kernel.loader.disable("fake", persist=False)  # still recorded enabled
    await kernel.loader.enable("fake", on_demand=True)
    first = await _call(kernel, "/echo message=x")
    assert "the MCP server exited with status 1 during start-up" in first["error"]
    assert "/etc/shadow" in first["error"]  # its last words, with the grant that would allow them
    # Each use is one more failed start (a restart may add its own) until the crash rule trips.
    for _ in range(kernel.loader.policy.crash_limit):
        if "fake" not in kernel.loader.runtimes:
            break
        await asyncio.wait_for(
            kernel.submit(kernel.open_session().id, "/echo message=x"), DEADLINE_S
        )

    async def disabled_as_crashed() -> None:
        while (record := kernel.loader.installed.get("fake")) is None or record.enabled:
            await asyncio.sleep(0.01)  # polling the kernel's own record
        assert record.cause is Cause.CRASHED

    await asyncio.wait_for(disabled_as_crashed(), DEADLINE_S)
    assert "fake" not in kernel.loader.runtimes
