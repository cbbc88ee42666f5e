"""The `deeting` command: plugin lifecycle and script mode, as a user runs them.

Most tests call ``cli.main`` in-process (fast); the ones about real processes (stdin,
signals, exit codes seen by a shell) run ``python -m deeting_tui`` as a subprocess.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import orjson
import pytest
from support import FIXTURES, HOSTILE, OFFICIAL, run_deeting

from deeting_tui.cli import main

GOOD = FIXTURES / "good_plugin"
BAD = FIXTURES / "bad_plugins"
BAD_CASES = sorted(p.name for p in BAD.iterdir() if p.is_dir())


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _nothing_installed(home: Path) -> bool:
    versions = home / "data" / "plugins" / "versions"
    state = home / "data" / "plugins" / "state.json"
    no_code = not versions.exists() or not any(versions.iterdir())
    no_state = not state.exists() or orjson.loads(state.read_bytes()) == {"plugins": {}}
    staging = home / "data" / "plugins" / ".staging"
    no_debris = not staging.exists() or not any(staging.iterdir())
    return no_code and no_state and no_debris


def test_help_documents_every_plugin_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["plugin", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for action in ("list", "install", "enable", "disable", "uninstall", "info", "grant", "revoke"):
        assert action in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--script" in capsys.readouterr().out


def test_no_arguments_explains_script_mode(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys)
    assert code == 0 and "deeting --script" in out


def test_unknown_provider_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--provider", "gpt", "--script", "-"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'gpt'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json"], "--json needs --script"),
        (["--script", "/no/such/file.txt"], "no such file"),
    ],
)
def test_bad_usage_exits_2(
    home: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = cli(capsys, *args)
    assert code == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize("case", BAD_CASES)
def test_malformed_plugin_is_refused_and_nothing_is_installed(
    home: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    expected = orjson.loads((BAD / "EXPECTED.json").read_bytes())[case]
    code, _, err = cli(capsys, "plugin", "install", str(BAD / case), "--yes")
    assert code == 1
    assert expected in err
    assert err.count("\n") == 1 and err.startswith("deeting: error:")
    assert _nothing_installed(home)


def test_install_list_info_disable_enable_uninstall(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "plugin", "install", str(GOOD), "--yes")
    assert code == 0 and "installed echo-fixture 1.0.0 (a local dev install" in out
    code, out, _ = cli(capsys, "plugin", "list", "--json")
    (row,) = orjson.loads(out)["plugins"]
    assert row["name"] == "echo-fixture" and row["enabled"] and row["dev"]
    assert row["state"] == "ready"  # enabled: its worker starts when it is first used
    code, out, _ = cli(capsys, "plugin", "list")
    assert "echo-fixture  1.0.0      ready" in out
    assert "ready: enabled; its worker starts when the plugin is first used" in out
    code, out, _ = cli(capsys, "plugin", "info", "echo-fixture")
    assert "tool:        echo" in out and "trigger:     ^echo" in out
    assert "state:       ready (enabled; its worker starts when" in out
    code, out, _ = cli(capsys, "plugin", "info", "echo-fixture", "--json")
    assert orjson.loads(out)["tools"][1]["name"] == "add"
    assert cli(capsys, "plugin", "disable", "echo-fixture")[0] == 0
    code, out, _ = cli(capsys, "plugin", "list")
    assert "disabled" in out
    assert cli(capsys, "plugin", "enable", "echo-fixture")[0] == 0
    code, out, _ = cli(capsys, "plugin", "uninstall", "echo-fixture")
    assert code == 0 and "code, data and cache removed" in out
    assert _nothing_installed(home)
    code, _, err = cli(capsys, "plugin", "info", "echo-fixture")
    assert code == 1 and "no plugin 'echo-fixture' is installed" in err


def test_reinstall_same_version_needs_force(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "plugin", "install", str(GOOD))[0] == 0
    code, _, err = cli(capsys, "plugin", "install", str(GOOD))
    assert code == 1 and "already installed — pass --force" in err
    assert cli(capsys, "plugin", "install", str(GOOD), "--force")[0] == 0


def test_scopes_need_grants_and_grant_enables(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "plugin", "install", str(HOSTILE / "needs-net"))
    assert code == 0 and err == ""  # installed; waiting for consent is not a failure
    assert "installed needs-net 2.0.0" in out
    assert "deeting plugin grant needs-net network:api.example.com" in out
    assert "needs consent" in cli(capsys, "plugin", "list")[1]
    code, out, _ = cli(capsys, "plugin", "grant", "needs-net", "network:api.example.com")
    assert code == 0 and "still needs: shell" in out
    code, _, err = cli(capsys, "plugin", "grant", "needs-net", "gpu")
    assert code == 1 and "does not ask for 'gpu'" in err
    code, out, _ = cli(capsys, "plugin", "grant", "needs-net", "shell")
    assert code == 0 and "enabled needs-net" in out
    code, out, _ = cli(capsys, "plugin", "revoke", "needs-net", "shell")
    assert code == 0 and "disabled needs-net" in out
    code, _, err = cli(capsys, "plugin", "enable", "needs-net")
    assert code == 1 and "permission 'shell' not granted" in err


def test_an_install_waiting_for_consent_says_so_and_succeeds(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`./dev.sh run` installs sysinfo and weather with no terminal to ask on: installed,
    waiting for consent, which is what the user is told (every scope, how to grant each)."""
    code, out, err = cli(capsys, "plugin", "install", str(HOSTILE / "needs-net"))
    assert (code, err) == (0, "")
    assert "needs-net waits for your consent to: network:api.example.com, shell" in out
    assert "to grant: deeting plugin grant needs-net network:api.example.com" in out
    assert "to grant: deeting plugin grant needs-net shell" in out
    assert "error" not in out


def test_a_plugin_that_cannot_load_is_not_blamed_on_its_postinstall(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = tmp_path / "echo-fixture"
    shutil.copytree(GOOD, plugin, ignore=shutil.ignore_patterns("__pycache__"))
    index = plugin / "src" / "index.py"
    index.write_text("import no_such_module_for_deeting\n" + index.read_text())
    code, _, err = cli(capsys, "plugin", "install", str(plugin))
    assert code == 1 and err.startswith("deeting: error:") and err.count("\n") == 1
    assert "postinstall" not in err  # the fixture has none: the import failed
    assert "No module named 'no_such_module_for_deeting'" in err
    assert "vendor the module into src/" in err and "requirements.txt" not in err
    assert _nothing_installed(home)


def test_install_with_grant_flag(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(
        capsys, "plugin", "install", str(HOSTILE / "needs-net"),
        "--grant", "network:api.example.com", "--grant", "shell",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = cli(capsys, "plugin", "install", str(GOOD), "--grant", "netwrk")
    assert code == 1 and "'netwrk' is not a scope" in err


def test_zip_install_and_unsafe_zip(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "echo.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(GOOD.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, f"echo-fixture/{path.relative_to(GOOD)}")
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape.txt", "gotcha")
    code, _, err = cli(capsys, "plugin", "install", str(evil))
    assert code == 1 and "refused" in err and _nothing_installed(home)
    assert not (tmp_path / "escape.txt").exists()
    code, out, _ = cli(capsys, "plugin", "install", str(archive))
    assert code == 0 and "from an archive" in out


def test_scaffolded_plugin_installs_and_answers(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, _ = cli(capsys, "plugin", "new", "hello-world", "--dir", str(tmp_path))
    assert code == 0
    assert cli(capsys, "plugin", "install", str(tmp_path / "hello-world"))[0] == 0


# -- script mode, as a real process ---------------------------------------------------------


def test_script_plain_and_json(home: Path) -> None:
    assert run_deeting("plugin", "install", str(GOOD), "--yes", home=home).returncode == 0
    script = "# a comment\n\necho hi there\n/add a=1 b=2\n"
    plain = run_deeting("--script", "-", home=home, stdin=script)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines() == ["hi there", "3"]
    as_json = run_deeting("--script", "-", "--json", home=home, stdin=script)
    events = [orjson.loads(line) for line in as_json.stdout.splitlines()]
    assert [e["type"] for e in events] == ["tool_call", "tool_result", "reply"] * 2
    assert events[1]["data"] == {"text": "hi there"} and events[4]["data"] == {"sum": 3}
    assert len({e["session_id"] for e in events}) == 1


def test_script_failure_exit_code_and_session_continuation(home: Path, tmp_path: Path) -> None:
    assert run_deeting("plugin", "install", str(GOOD), "--yes", home=home).returncode == 0
    first = run_deeting("--script", "-", "--json", home=home, stdin="echo one\n/add a=x b=1\n")
    assert first.returncode == 1
    assert first.stderr.startswith("deeting: error: add: invalid arguments")
    session = orjson.loads(first.stdout.splitlines()[0])["session_id"]
    script = tmp_path / "more.txt"
    script.write_text("echo two\n")
    second = run_deeting("--script", str(script), "--session", session, "--json", home=home)
    assert second.returncode == 0
    assert orjson.loads(second.stdout.splitlines()[0])["session_id"] == session
    unknown = run_deeting("--script", str(script), "--session", "ffffffffffff", home=home)
    assert unknown.returncode == 2 and "ffffffffffff" in unknown.stderr


def test_official_plugins_through_script_mode(home: Path) -> None:
    for name in ("calc", "notes", "clock"):
        result = run_deeting("plugin", "install", str(OFFICIAL / name), home=home)
        assert result.returncode == 0, result.stderr
    script = "calc 2**10\nnote: buy milk\n/note_list\n/now\n"
    result = run_deeting("--script", "-", home=home, stdin=script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("1024") and "buy milk" in result.stdout


def test_info_prints_the_sandbox_level_and_what_it_allows(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from deeting_tui.sandbox.probe import probe

    needs_net = HOSTILE / "needs-net"
    assert cli(capsys, "plugin", "install", str(needs_net), "--yes")[0] == 0
    code, out, _ = cli(capsys, "plugin", "info", "needs-net")
    assert code == 0
    assert f"sandbox:     {probe().level}" in out
    assert "network:      only api.example.com over TCP, through a checking proxy" in out
    assert "programs:     may run programs" in out
    assert "capabilities: " in out and "processes:    its own only" in out
    code, out, _ = cli(capsys, "plugin", "info", "needs-net", "--json")
    sandbox = orjson.loads(out)["sandbox"]
    assert sandbox["level"] == probe().level and sandbox["files"] == "its own folders"
    # The capability probe, in the plugin list (the CLI's plugin manager).
    code, out, _ = cli(capsys, "plugin", "list")
    assert out.splitlines()[0].startswith(f"sandbox: {probe().level}")
    code, out, _ = cli(capsys, "plugin", "list", "--json")
    listed = orjson.loads(out)["sandbox"]
    assert listed["landlock_abi"] == probe().landlock_abi and listed["root"] == (os.getuid() == 0)


def test_output_cut_short_by_the_reader_is_not_an_error(home: Path) -> None:
    """`deeting plugin info x | head -1`: the reader is gone; deeting exits quietly."""
    import os
    import subprocess
    import sys

    run_deeting("plugin", "install", str(GOOD), "--yes", home=home)
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE, like a reader that already quit
    try:
        done = subprocess.run(
            [sys.executable, "-m", "deeting_tui", "plugin", "info", "echo-fixture"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env={**os.environ, "DEETING_HOME": str(home)},
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert done.stderr == b""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--session", "doesnotexist"], "--session doesnotexist: no session 'doesnotexist'"),
        (["--new", "--session", "abc"], "--new and --session exclude each other"),
    ],
)
def test_the_chat_refuses_a_bad_session_in_one_line(
    home: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """Said before the chat takes the terminal, as --script does (it used to be a 58-line
    traceback from inside the chat, and exit 0)."""
    code, out, err = cli(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("deeting: ") and message in err and err.count("\n") == 1, err


def test_new_is_documented_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "--new" in out and "deeting --new" in out
