"""ci/smoke.py: plugins run in the real sandboxed worker with the calls their examples.yaml
declares; answers are judged against expectations and renderer schemas."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import socket
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ci.smoke import main, smoke_paths
from ci.smoke_examples import load_examples
from ci.smoke_offline import OfflineEventLoop
from deeting_tui.plugin.checker import load_plugin

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "ci" / "fixtures"
OFFICIAL = sorted(p for p in (REPO / "plugins").iterdir() if p.is_dir())
MakePlugin = Callable[..., Path]  # the make_plugin fixture (conftest.py)


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["--json", *args])
    return code, json.loads(capsys.readouterr().out)


def _messages(entry: dict[str, Any]) -> list[str]:
    found = [p["message"] for p in entry["problems"]]
    return found + [p["message"] for call in entry["calls"] for p in call["problems"]]


# -- the official plugins ---------------------------------------------------------------------


def test_official_plugins_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert {p.name for p in OFFICIAL} >= {"calc", "clock", "notes", "sysinfo", "weather"}
    code, document = _json(capsys, *map(str, OFFICIAL))
    assert code == 0, _messages_of_all(document)
    for entry in document["plugins"]:
        assert entry["ok"] and entry["problems"] == [], entry
        spec = load_plugin(Path(entry["path"]))
        assert {call["tool"] for call in entry["calls"]} == {t.name for t in spec.tools}
        for call in entry["calls"]:
            assert call["passed"] and call["duration_ms"] >= 0, call


def test_weather_fails_cleanly_without_a_network(capsys: pytest.CaptureFixture[str]) -> None:
    code, document = _json(capsys, str(REPO / "plugins" / "weather"))
    assert code == 0
    calls = document["plugins"][0]["calls"]
    fetches = [call for call in calls if call["arguments"].get("days", 3) <= 7]
    assert fetches and all(not call["ok"] and call["expect_error"] for call in fetches)
    for call in fetches:
        assert "cannot reach" in call["summary"] and "\n" not in call["summary"]


def _messages_of_all(document: dict[str, Any]) -> list[str]:
    return [message for entry in document["plugins"] for message in _messages(entry)]


# -- answers that fail ------------------------------------------------------------------------


def test_data_that_breaks_its_renderer_schema_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, document = _json(capsys, str(FIXTURES / "unfit"))
    assert code == 1
    (call,) = document["plugins"][0]["calls"]
    assert call["ok"] is True and call["passed"] is False and call["renderer"] == "weather-cards"
    (problem,) = call["problems"]
    assert problem["file"] == "examples.yaml" and problem["field"] == "[0] forecast"
    assert problem["message"].startswith("data does not fit the 'weather-cards' renderer")


def test_a_crashed_worker_fails_even_when_an_error_was_expected(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, document = _json(capsys, str(FIXTURES / "crasher"))
    assert code == 1
    (call,) = document["plugins"][0]["calls"]
    assert call["ok"] is False and call["expect_error"] is True
    assert any("the worker crashed" in p["message"] for p in call["problems"])


@pytest.mark.parametrize(
    ("examples", "message"),
    [
        (
            "- {tool: echo, arguments: {text: hi}, expect: {error: true}}\n"
            "- {tool: fail, arguments: {message: x}, expect: {error: true}}\n",
            "expected an error result, but it succeeded: hi",
        ),
        (
            "- {tool: echo, arguments: {text: hi}}\n- {tool: fail, arguments: {message: oops}}\n",
            "failed: oops",
        ),
        (
            "- {tool: echo, arguments: {text: hi}, expect: {summary_contains: bye}}\n"
            "- {tool: fail, arguments: {message: x}, expect: {error: true}}\n",
            "the summary does not contain 'bye': hi",
        ),
        (
            "- {tool: echo, arguments: {text: hi, renderer: sparkles}}\n"
            "- {tool: fail, arguments: {message: x}, expect: {error: true}}\n",
            "renderer 'sparkles' is not a core renderer",
        ),
        (
            "- {tool: echo, arguments: {txt: hi}}\n"
            "- {tool: fail, arguments: {message: x}, expect: {error: true}}\n",
            "failed: invalid arguments",
        ),
        (
            "- {tool: echo, arguments: {text: hi}}\n"
            '- {tool: fail, arguments: {message: "two\\nlines"}, expect: {error: true}}\n',
            "the error is not one clear line",
        ),
    ],
)
def test_an_answer_that_does_not_meet_its_example_fails(
    examples: str, message: str, make_plugin: MakePlugin, capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = _json(capsys, str(make_plugin(examples=examples)))
    assert code == 1
    (entry,) = document["plugins"]
    failed = [call for call in entry["calls"] if not call["passed"]]
    assert len(failed) == 1 and len(entry["calls"]) == 2
    assert any(message in p["message"] for p in failed[0]["problems"]), failed[0]


def test_an_answer_that_is_not_a_result_fails(make_plugin: MakePlugin) -> None:
    code = "def invoke(ctx, tool, args):\n    return 42 if tool == 'echo' else {'txt': 'x'}\n"
    examples = "- {tool: echo, arguments: {text: hi}}\n- {tool: fail, arguments: {message: x}}\n"
    (report,) = smoke_paths([make_plugin(files={"src/index.py": code}, examples=examples)])
    assert not report.ok and [call.ok for call in report.calls] == [False, False]
    first, second = (str(call.problems[0]) for call in report.calls)
    assert first.startswith("examples.yaml: [0] echo: failed: invoke returned int")
    assert "unknown keys ['txt']" in second


def test_expectations_that_hold_pass(make_plugin: MakePlugin) -> None:
    examples = (
        "- {tool: echo, arguments: {text: good morning}, expect: {summary_contains: morning}}\n"
        "- {tool: echo, arguments: {text: plain, renderer: key-value}}\n"
        "- tool: fail\n  arguments: {message: not today}\n"
        "  expect: {error: true, summary_contains: not today}\n"
    )
    (report,) = smoke_paths([make_plugin(examples=examples)])
    assert report.ok, [str(p) for call in report.calls for p in call.problems]
    assert [call.ok for call in report.calls] == [True, True, False]


# -- examples.yaml itself ---------------------------------------------------------------------


def test_a_tool_without_an_example_fails(make_plugin: MakePlugin) -> None:
    (report,) = smoke_paths([make_plugin(examples="- {tool: echo, arguments: {text: hi}}\n")])
    assert not report.ok and report.calls == []  # nothing runs until the file is complete
    assert [str(p) for p in report.problems] == [
        "examples.yaml: no example calls tool 'fail': every tool needs at least one"
    ]


def test_a_missing_examples_file_fails(make_plugin: MakePlugin) -> None:
    (report,) = smoke_paths([make_plugin(examples=None)])
    assert not report.ok
    (problem,) = report.problems
    assert problem.file == "examples.yaml" and problem.message.startswith("missing — a list of")


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("- {tool: echo\n", "", "not valid YAML (line 2, column 1)"),
        ("", "", "must be a list of calls like '- {tool: NAME"),
        ("[]\n", "", "not an empty list"),
        ("tool: echo\n", "", "not a mapping"),
        ("- echo\n", "[0]", "must be a mapping with tool, arguments, expect — not a string"),
        ("- {tool: echo, args: {text: hi}}\n", "[0].args", "unknown key (allowed: tool,"),
        ("- {arguments: {}}\n", "[0].tool", "missing: name the tool to call (tools: echo, fail)"),
        ("- {tool: shout}\n", "[0].tool", "'shout' is not a tool of this plugin"),
        ("- {tool: echo, arguments: [hi]}\n", "[0].arguments", "not a list"),
        ("- {tool: echo, expect: yes}\n", "[0].expect", "must be a mapping with error"),
        ("- {tool: echo, expect: {error: 'yes'}}\n", "[0].expect.error", "not 'yes'"),
        ("- {tool: echo, expect: {fails: true}}\n", "[0].expect.fails", "unknown key"),
        ("- {tool: echo, expect: {summary_contains: ''}}\n", "[0].expect.summary_contains", ""),
    ],
)
def test_a_bad_examples_file_fails_clearly(
    text: str, field: str, message: str, make_plugin: MakePlugin
) -> None:
    plugin = make_plugin(examples=text)
    examples, problems = load_examples(plugin, load_plugin(plugin))
    assert examples == []
    assert problems and problems[0].file == "examples.yaml"
    assert problems[0].field == field and message in problems[0].message, problems
    (report,) = smoke_paths([plugin])
    assert not report.ok and report.calls == [] and report.problems == problems


def test_every_problem_is_reported_at_once(make_plugin: MakePlugin) -> None:
    text = "- {tool: shout}\n- {tool: echo, expect: {error: 1}}\n- 7\n"
    plugin = make_plugin(examples=text)
    _, problems = load_examples(plugin, load_plugin(plugin))
    assert [p.field for p in problems] == ["[0].tool", "[1].expect.error", "[2]"]


def test_a_zip_is_smoked_after_a_safe_extraction(tmp_path: Path) -> None:
    archive = tmp_path / "probe.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted((FIXTURES / "probe").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zipped.write(path, f"probe/{path.relative_to(FIXTURES / 'probe').as_posix()}")
    (report,) = smoke_paths([archive])
    assert report.ok and report.path == archive and len(report.calls) == 2


def test_an_invalid_plugin_is_not_run(make_plugin: MakePlugin) -> None:
    plugin = make_plugin(files={"kimai.json": '{"name": "probe"}'})
    (report,) = smoke_paths([plugin])
    assert not report.ok and report.calls == []
    assert any("python ci/lint.py" in p.message for p in report.problems)


# -- offline, output, exit codes --------------------------------------------------------------


def test_the_offline_loop_reaches_loopback_only() -> None:
    async def attempt(host: str, port: int) -> str:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError as error:
            return f"refused {error.errno}"
        writer.close()
        await writer.wait_closed()
        return "connected"

    async def scenario() -> tuple[str, str]:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await attempt("127.0.0.1", port), await attempt("example.com", 443)

    with asyncio.Runner(loop_factory=OfflineEventLoop) as runner:
        local, remote = runner.run(scenario())
    assert local == "connected" and remote == f"refused {errno.ENETUNREACH}"


def test_plain_output_reports_each_call_with_its_timing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    probe, unfit = FIXTURES / "probe", FIXTURES / "unfit"
    assert main([str(probe), str(unfit)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"ok   {probe}: [0] echo ") and " ms, result: hello" in lines[0]
    assert " ms, error (expected): no luck today" in lines[1]
    assert lines[2] == f"ok   {probe} (probe@1.0.0, 2 calls)"
    assert lines[3].startswith(f"FAIL {unfit}: [0] forecast ")
    assert lines[4].startswith(f"{unfit}: examples.yaml: [0] forecast: data does not fit")
    assert len(lines) == 5


def test_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, document = _json(capsys, str(FIXTURES / "probe"))
    assert code == 0
    (entry,) = document["plugins"]
    assert set(entry) == {"path", "ok", "name", "version", "problems", "calls"}
    assert (entry["name"], entry["version"], entry["problems"]) == ("probe", "1.0.0", [])
    first = entry["calls"][0]
    assert set(first) == {
        "index",
        "tool",
        "arguments",
        "expect_error",
        "ok",
        "passed",
        "duration_ms",
        "renderer",
        "summary",
        "problems",
    }
    assert first["arguments"] == {"text": "hello"} and first["renderer"] == "key-value"


def test_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main([]) == 2
    assert "give at least one plugin folder" in capsys.readouterr().err
    assert main(["--bogus"]) == 2
    assert main([str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().out


def test_runs_as_a_script_from_the_checkout() -> None:
    done = subprocess.run(
        [sys.executable, "ci/smoke.py", "plugins/calc"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "ok   plugins/calc (calc@1.0.0, 3 calls)"


def test_a_scaffolded_plugin_passes_the_whole_pipeline(tmp_path: Path) -> None:
    """`deeting plugin new` gives authors something the registry's CI accepts as it is."""
    from ci.scan import scan_path
    from deeting_tui.plugin.scaffold import scaffold

    root = scaffold("greeter", tmp_path / "greeter")
    assert scan_path(root).ok
    (report,) = smoke_paths([root])
    assert report.ok, report


@pytest.fixture
def tripwire(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every name lookup and connection this process tries beyond loopback, refused before it
    leaves the machine (so this test makes no network call even when smoke.py would)."""
    tried: list[str] = []
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def local(host: Any) -> bool:
        text = host.decode() if isinstance(host, bytes) else str(host)
        if text in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(text.strip("[]")).is_loopback
        except ValueError:
            return False

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not local(host):
            tried.append(f"lookup {host}")
            raise socket.gaierror(socket.EAI_NONAME, "tripwire: no lookups off this machine")
        return real_getaddrinfo(host, *args, **kwargs)

    def checked(real: Any) -> Any:
        def connect(sock: socket.socket, address: Any) -> Any:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not local(address[0]):
                tried.append(f"connect {address[0]}")
                raise OSError(errno.ENETUNREACH, "tripwire: no connections off this machine")
            return real(sock, address)

        return connect

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", checked(real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", checked(real_connect_ex))
    return tried


def test_an_offline_run_makes_no_network_call(tripwire: list[str]) -> None:
    """The kernel's proxy runs in this process: offline, it must not even look a host up."""
    (report,) = smoke_paths([REPO / "plugins" / "weather"])
    assert tripwire == []
    assert report.ok, report
    assert any("cannot reach" in call.summary for call in report.calls)


def test_the_offline_loop_looks_up_loopback_only() -> None:
    async def lookup(host: str) -> str:
        try:
            await asyncio.get_running_loop().getaddrinfo(host, 443)
        except OSError as error:
            return f"refused: {error}"
        return "looked up"

    async def scenario() -> tuple[str, str]:
        return await lookup("localhost"), await lookup("api.open-meteo.com")

    with asyncio.Runner(loop_factory=OfflineEventLoop) as runner:
        local, remote = runner.run(scenario())
    assert local == "looked up"
    assert remote.startswith("refused:") and "offline" in remote


def test_a_plugin_with_bare_network_is_not_run_offline(make_plugin: MakePlugin) -> None:
    """It would connect by itself, past the proxy: offline cannot hold it back."""
    (report,) = smoke_paths([make_plugin(permissions=["network"])])
    assert not report.ok and report.calls == []
    assert any("smoke it with --network" in str(p) for p in report.problems), report.problems


# -- plugins with Python dependencies -----------------------------------------------------------

DEPS_DEMO = REPO / "tests" / "fixtures" / "deps-demo"


def test_a_folder_with_requirements_is_smoked_with_its_dependencies_fetched(
    capsys: pytest.CaptureFixture[str], wheel_index: str
) -> None:
    code, document = _json(capsys, str(DEPS_DEMO))
    assert code == 0, _messages_of_all(document)
    assert [call["ok"] for call in document["plugins"][0]["calls"]] == [True, True]


def test_a_zip_is_smoked_with_the_wheels_it_carries(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, bare_wheel_index: str
) -> None:
    """No real wheel on the index: only the zip's own wheels/ can make the calls pass."""
    from wheel_index import WHEELHOUSE, WHEELHOUSE_MISSING

    wheels = [
        w for w in WHEELHOUSE.glob("*.whl") if w.name.startswith(("tabulate-", "orjson-3.11.4-"))
    ]
    if not wheels:
        pytest.skip(WHEELHOUSE_MISSING)
    archive = tmp_path / "deps-demo.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for file in sorted(DEPS_DEMO.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                out.write(file, f"deps-demo/{file.relative_to(DEPS_DEMO)}")
        for wheel in wheels:
            out.write(wheel, f"deps-demo/wheels/{wheel.name}")
    code, document = _json(capsys, str(archive))
    assert code == 0, _messages_of_all(document)
    assert [call["ok"] for call in document["plugins"][0]["calls"]] == [True, True]
