"""``deeting mcp serve`` driven as a real process by the SDK's own client (ClientSession over
stdio_client), as a desktop assistant or an IDE drives it; each call reaches the plugin's
sandboxed worker through the kernel.

Nothing here waits by sleeping: a cancel waits for the call's progress report, a shutdown for
the process's exit and the worker's pidfd; the deadlines only keep a broken run from hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import DEETING, FIXTURES, REPO, fake_mcp_program, run_deeting

from deeting_tui.kernel.sessions.store import SessionStore
from deeting_tui.paths import resolve_paths

ECHO_TOOLS = ["add", "echo"]
SLEEPER_TOOLS = ["block", "block_in_thread", "state"]
FIXTURE_TOOLS = ["chatter", "count", "fail", "steps"]
DEADLINE = 60.0


@pytest.fixture(scope="module")
def served_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with three enabled plugins: echo-fixture (echo, add), sleeper (progress, slow
    calls, a tool that fails on a bad number) and serve-fixture (a list result, progress in
    steps, stray output)."""
    home = tmp_path_factory.mktemp("serve") / "home"
    for plugin in ("good_plugin", "blocking_plugin", "serve_plugin"):
        # Module-scoped, so the autouse fixture that keeps the bundled plugins out (a
        # function's monkeypatch) is not in force yet: say it here.
        done = run_deeting("plugin", "install", str(FIXTURES / plugin), home=home, env=NO_BUNDLE)
        assert done.returncode == 0, done.stderr
    return home


#: The plugins deeting carries stay out of these homes (see tests/conftest.py).
NO_BUNDLE = {"DEETING_BUNDLE": ""}


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, **NO_BUNDLE, "DEETING_HOME": str(home)}
    env.pop("DEETING_DEBUG", None)
    return env


@contextlib.asynccontextmanager
async def client(home: Path, *plugins: str, on_message: Any = None) -> AsyncIterator[Any]:
    """An initialised ClientSession to ``deeting mcp serve [--plugin P]...`` in ``home``;
    ``on_message``: the SDK's message handler (notifications the client is sent)."""
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    args = ["-m", "deeting_tui", "mcp", "serve"]
    for plugin in plugins:
        args += ["--plugin", plugin]
    params = StdioServerParameters(command=DEETING[0], args=args, env=_env(home), cwd=REPO)
    with open(os.devnull, "w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, message_handler=on_message) as session,
        ):
            async with asyncio.timeout(DEADLINE):
                await session.initialize()
                yield session


def _text(result: Any) -> str:
    return "".join(block.text for block in result.content)


async def test_lists_the_enabled_plugins_tools_with_their_schemas(served_home: Path) -> None:
    async with client(served_home) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert sorted(tools) == sorted(ECHO_TOOLS + SLEEPER_TOOLS + FIXTURE_TOOLS)
    echo = tools["echo"]
    assert echo.description == "Repeat the given text back, unchanged."
    assert echo.input_schema == {
        "type": "object",
        "properties": {"text": {"type": "string", "description": "The text to repeat."}},
        "required": ["text"],
    }
    assert echo.meta == {"deeting/plugin": "echo-fixture"}


async def test_plugin_flag_serves_only_that_plugins_tools(served_home: Path) -> None:
    async with client(served_home, "echo-fixture") as session:
        names = sorted(tool.name for tool in (await session.list_tools()).tools)
        refused = await session.call_tool("state", {})  # sleeper's: not served here
    assert names == ECHO_TOOLS
    assert refused.is_error and _text(refused) == ("unknown tool 'state' — known tools: add, echo")


async def test_listing_starts_no_worker(served_home: Path) -> None:
    async with client(served_home) as session:
        await session.list_tools()
        first = await session.call_tool("state", {})
    # The worker started at the call, not before: its activate hook ran just now.
    assert first.structured_content["activated"] is True


async def test_a_call_answers_with_text_and_structured_content(served_home: Path) -> None:
    async with client(served_home) as session:
        echoed = await session.call_tool("echo", {"text": "héllo"})
        added = await session.call_tool("add", {"a": 2, "b": 3.5})
        counted = await session.call_tool("count", {"n": 3})
        woke = await session.call_tool("block_in_thread", {"seconds": "0"})
    assert not echoed.is_error
    assert _text(echoed) == "héllo" and echoed.structured_content == {"text": "héllo"}
    assert echoed.meta["deeting/plugin"] == "echo-fixture"
    assert _text(added) == "5.5" and added.structured_content == {"sum": 5.5}
    # Data that is not a JSON object is wrapped: structuredContent is always an object.
    assert _text(counted) == "[0,1,2]" and counted.structured_content == {"result": [0, 1, 2]}
    # No data, no structuredContent: the text is all there is.
    assert _text(woke) == "woke up" and woke.structured_content is None


async def test_calls_are_recorded_in_a_session_titled_with_the_client(
    served_home: Path,
) -> None:
    async with client(served_home) as session:
        result = await session.call_tool("echo", {"text": "on the record"})
    session_id = result.meta["deeting/session"]
    with SessionStore(_db(served_home)) as store:
        info = store.get(session_id)
        events = [(kind, payload) for _, kind, payload in _events(store, session_id)]
    assert info.title == "MCP: mcp"  # the SDK client's own name
    kinds = [kind for kind, _ in events]
    assert kinds == ["tool_call", "tool_result"]
    assert events[1][1]["data"] == {"text": "on the record"}
    assert events[1][1]["call_id"] == result.meta["deeting/call"]


def _db(home: Path) -> Path:
    return resolve_paths({"DEETING_HOME": str(home)}).sessions_db


def _events(store: SessionStore, session_id: str) -> list[tuple[int, str, dict[str, Any]]]:
    return [(e.seq, e.kind, e.payload) for e in store.events(session_id)]


async def test_failures_are_error_results_and_the_server_keeps_serving(
    served_home: Path,
) -> None:
    async with client(served_home) as session:
        raised = await session.call_tool("block", {"seconds": "not a number"})
        bad = await session.call_tool("add", {"a": 1})
        unknown = await session.call_tool("nope", {})
        after = await session.call_tool("echo", {"text": "still here"})
    assert raised.is_error and _text(raised) == "could not convert string to float: 'not a number'"
    assert bad.is_error and _text(bad) == "invalid arguments: 'b' is a required property"
    assert unknown.is_error and _text(unknown).startswith("unknown tool 'nope' — known tools: ")
    assert raised.structured_content is None
    assert not after.is_error and _text(after) == "still here"


async def test_progress_reports_become_progress_notifications(served_home: Path) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total, message))

    async with client(served_home) as session:
        result = await session.call_tool("steps", {}, progress_callback=progress)
        unasked = await session.call_tool("steps", {})  # no token: nothing is sent
    assert not result.is_error and not unasked.is_error
    # The fraction of 1, never going down (MCP's rule): a report with none, or a smaller
    # one, says the last fraction again with its own message.
    assert seen == [
        (0.25, 1.0, "a quarter"),
        (0.25, 1.0, "no idea how far"),
        (0.25, 1.0, "went back"),
        (1.0, 1.0, "done"),
    ]


async def test_concurrent_calls_each_hear_only_their_own_progress(served_home: Path) -> None:
    heard: dict[int, list[str | None]] = {0: [], 1: [], 2: []}

    def listener(index: int) -> Any:
        async def progress(value: float, total: float | None, message: str | None) -> None:
            heard[index].append(message)

        return progress

    async with client(served_home) as session:
        results = await asyncio.gather(
            *(session.call_tool("steps", {}, progress_callback=listener(i)) for i in heard)
        )
    assert all(not result.is_error for result in results)
    assert len({result.meta["deeting/call"] for result in results}) == 3
    for messages in heard.values():
        assert messages == ["a quarter", "no idea how far", "went back", "done"]


async def test_cancel_mid_call_stops_it_and_the_next_call_answers(served_home: Path) -> None:
    reported = asyncio.Event()

    async def progress(value: float, total: float | None, message: str | None) -> None:
        reported.set()

    async with client(served_home) as session:
        slow = asyncio.ensure_future(
            session.call_tool("block_in_thread", {"seconds": "600"}, progress_callback=progress)
        )
        await reported.wait()  # the worker is inside the call
        slow.cancel()  # the SDK client sends notifications/cancelled
        with pytest.raises(asyncio.CancelledError):
            await slow
        state = await session.call_tool("state", {})
        session_id = state.meta["deeting/session"]
    assert not state.is_error and _text(state).startswith("awake ")
    with SessionStore(_db(served_home)) as store:
        results = [p for _, kind, p in _events(store, session_id) if kind == "tool_result"]
    cancelled = [p for p in results if p["tool"] == "block_in_thread"]
    assert cancelled and cancelled[-1].get("cancelled") is True


@pytest.mark.parametrize(
    ("flag", "words"),
    [
        (
            "no-such",
            "--plugin no-such: no plugin of that name is installed — see: deeting plugin list",
        ),
        ("sleeper", "--plugin sleeper: it is disabled — run: deeting plugin enable sleeper"),
        (
            "fetch-fixture",  # installed without its grant: granting is the fix, not enabling
            "--plugin fetch-fixture: it is disabled: permission 'network:127.0.0.1' not granted "
            "to 'fetch-fixture' — run: deeting plugin grant fetch-fixture network:127.0.0.1",
        ),
    ],
)
def test_a_plugin_flag_it_cannot_serve_is_one_line_and_exit_2(
    tmp_path: Path, flag: str, words: str
) -> None:
    home = tmp_path / "home"
    for plugin in ("good_plugin", "blocking_plugin", "fetch_plugin"):
        assert run_deeting("plugin", "install", str(FIXTURES / plugin), home=home).returncode == 0
    assert run_deeting("plugin", "disable", "sleeper", home=home).returncode == 0
    done = run_deeting("mcp", "serve", "--plugin", "echo-fixture", "--plugin", flag, home=home)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [f"deeting: error: mcp serve: {words}"]


def test_a_disabled_plugins_tools_are_not_listed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for plugin in ("good_plugin", "blocking_plugin"):
        assert run_deeting("plugin", "install", str(FIXTURES / plugin), home=home).returncode == 0
    assert run_deeting("plugin", "disable", "sleeper", home=home).returncode == 0

    async def names() -> list[str]:
        async with client(home) as session:
            return sorted(tool.name for tool in (await session.list_tools()).tools)

    assert asyncio.run(names()) == ECHO_TOOLS


# -- the raw wire: stdout, EOF, signals -----------------------------------------------------------


class RawServer:
    """``deeting mcp serve`` spoken to line by line, so a test holds its process (its pid, its
    stdout) itself."""

    def __init__(self, home: Path) -> None:
        self.process = subprocess.Popen(
            [*DEETING, "mcp", "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(home),
            cwd=REPO,
        )
        self.lines: list[bytes] = []
        self._next = 0

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(orjson.dumps({"jsonrpc": "2.0", **message}) + b"\n")
        self.process.stdin.flush()

    def answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next += 1
        self.send({"id": self._next, "method": method, "params": params})
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline()
            assert line, "the server ended without answering"
            self.lines.append(line)
            message = orjson.loads(line)
            if message.get("id") == self._next:
                return dict(message)

    def start(self) -> None:
        self.answer(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw\x1b]0;title\x07", "version": "1"},
            },
        )
        self.send({"method": "notifications/initialized"})

    def finish(self, *, eof: bool = True) -> tuple[int, bytes, bytes]:
        """Its exit code and the rest of its output; ``eof``: close its stdin first (else it
        must be ending by itself, a signal say, with its stdin left open)."""
        if eof:
            out, err = self.process.communicate(timeout=DEADLINE)
            return self.process.returncode, out, err
        code = self.process.wait(timeout=DEADLINE)
        assert self.process.stdout is not None and self.process.stderr is not None
        return code, self.process.stdout.read(), self.process.stderr.read()


def _gone(pid: int, timeout: float = DEADLINE) -> bool:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def _worker_pid(server: RawServer) -> int:
    reply = server.answer("tools/call", {"name": "state", "arguments": {}})
    return int(reply["result"]["structuredContent"]["pid"])


def test_eof_shuts_the_kernel_down_and_leaves_no_worker(served_home: Path) -> None:
    server = RawServer(served_home)
    try:
        server.start()
        worker = _worker_pid(server)
        # A plugin that prints: its stray output must not reach the protocol's stdout.
        said = server.answer("tools/call", {"name": "chatter", "arguments": {}})
        assert said["result"]["content"][0]["text"] == "said things"
        code, out, err = server.finish()  # EOF
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
    assert code == 0, err
    assert out == b""
    assert _gone(worker), f"worker {worker} outlived deeting mcp serve"
    # stdout carried only the protocol: every line is a JSON-RPC message.
    assert all(orjson.loads(line)["jsonrpc"] == "2.0" for line in server.lines)


@pytest.mark.parametrize(
    "number", [signal.SIGTERM, signal.SIGINT, None], ids=["TERM", "INT", "EOF"]
)
def test_an_end_mid_call_stops_the_call_and_leaves_no_worker(
    served_home: Path, number: int | None
) -> None:
    server = RawServer(served_home)
    try:
        server.start()
        worker = _worker_pid(server)
        server.send(
            {
                "id": 99,
                "method": "tools/call",
                "params": {
                    "name": "block_in_thread",
                    "arguments": {"seconds": "600"},
                    "_meta": {"progressToken": "p"},
                },
            }
        )
        assert server.process.stdout is not None
        progress = orjson.loads(server.process.stdout.readline())  # the call is running
        assert progress["method"] == "notifications/progress"
        assert progress["params"]["progressToken"] == "p"
        if number is None:
            code, _, err = server.finish()
        else:
            server.process.send_signal(number)
            code, _, err = server.finish(eof=False)
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
    assert code == 0, err
    assert _gone(worker), f"worker {worker} outlived deeting mcp serve"
    assert b"Traceback" not in err


def test_stderr_lines_pass_the_neutraliser(served_home: Path) -> None:
    server = RawServer(served_home)
    try:
        server.start()
        hostile = "boom\x1b]52;c;cHduZWQ=\x07\x1b[2J"
        reply = server.answer("tools/call", {"name": "fail", "arguments": {"message": hostile}})
        code, _, err = server.finish()
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
    assert code == 0
    # The client gets the plugin's message exactly; the terminal-bound copy is defused.
    assert reply["result"]["isError"] is True and hostile in reply["result"]["content"][0]["text"]
    assert b"\x1b" not in err and b"\x07" not in err
    assert b"deeting: error: fail: boom\n" in err
    # The client's name (it sent an escape sequence in it) titles the session, neutralised:
    # the chat's session list (F3) is a terminal too.
    with SessionStore(_db(served_home)) as store:
        assert store.get(reply["result"]["_meta"]["deeting/session"]).title == "MCP: raw"


def test_serving_imports_no_model_sdk_and_no_textual(served_home: Path) -> None:
    """A whole run (start, an immediate EOF, shutdown) loads neither the chat nor a model SDK:
    an MCP client starts this command often, and waits for it."""
    code = (
        "import atexit, sys\n"
        "heavy = ('textual', 'anthropic', 'openai', 'deeting_tui.ui')\n"
        "atexit.register(lambda: print('loaded:', *[m for m in heavy if m in sys.modules], "
        "file=sys.stderr))\n"
        "from deeting_tui.cli import main\n"
        "sys.exit(main(['mcp', 'serve']))\n"
    )
    done = subprocess.run(
        [DEETING[0], "-c", code],
        input=b"",
        capture_output=True,
        env=_env(served_home),
        cwd=REPO,
        timeout=DEADLINE,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""
    assert done.stderr.decode().splitlines()[-1] == "loaded:"


def test_a_call_beyond_its_grants_says_which_scope_would_allow_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    installed = run_deeting(
        "plugin",
        "install",
        str(FIXTURES / "fetch_plugin"),
        "--grant",
        "network:127.0.0.1",
        "--yes",
        home=home,
    )
    assert installed.returncode == 0, installed.stderr

    async def fetch() -> Any:
        async with client(home) as session:
            return await session.call_tool("fetch", {"url": "http://example.com/"})

    result = asyncio.run(fetch())
    assert result.is_error
    assert "may not connect to example.com:80" in _text(result)
    assert "network:example.com:80 would allow it" in _text(result)


def test_a_stock_mcp_servers_tools_are_served_with_its_pinned_annotations(
    tmp_path: Path,
) -> None:
    """A server added with ``deeting mcp add`` (our own fake, standard library only) served
    back out: its annotations as pinned, its structured result, its progress, a cancel."""
    program = fake_mcp_program(tmp_path)
    home = tmp_path / "home"
    added = run_deeting("mcp", "add", "fake", "--command", "--yes", "--", str(program), home=home)
    assert added.returncode == 0, added.stderr

    async def drive() -> tuple[dict[str, Any], Any, Any, list[float]]:
        reported = asyncio.Event()
        seen: list[float] = []

        async def progress(value: float, total: float | None, message: str | None) -> None:
            seen.append(value)
            reported.set()

        async with client(home) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            echoed = await session.call_tool("echo", {"message": "hi"})
            slow = asyncio.ensure_future(
                session.call_tool("slow", {"steps": 100000}, progress_callback=progress)
            )
            await reported.wait()
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            again = await session.call_tool("echo", {"message": "again"})
        return tools, echoed, again, seen

    tools, echoed, again, seen = asyncio.run(drive())
    assert tools["echo"].annotations is not None and tools["echo"].annotations.read_only_hint
    assert tools["slow"].annotations is None
    assert tools["echo"].meta == {"deeting/plugin": "fake"}
    assert not echoed.is_error and echoed.structured_content == {"echo": "hi", "length": 2}
    assert 0 < seen[0] <= 1
    assert not again.is_error and _text(again) == "again"


def test_a_plugin_disabled_elsewhere_is_announced_as_a_changed_tool_list(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for plugin in ("good_plugin", "blocking_plugin"):
        assert run_deeting("plugin", "install", str(FIXTURES / plugin), home=home).returncode == 0

    async def drive() -> tuple[list[str], list[str]]:
        changed = asyncio.Event()

        async def on_message(message: Any) -> None:
            if getattr(message, "method", None) == "notifications/tools/list_changed":
                changed.set()

        async with client(home, on_message=on_message) as session:
            before = sorted(tool.name for tool in (await session.list_tools()).tools)
            done = await asyncio.to_thread(run_deeting, "plugin", "disable", "sleeper", home=home)
            assert done.returncode == 0, done.stderr
            await changed.wait()  # the kernel follows state.json, and the client is told
            after = sorted(tool.name for tool in (await session.list_tools()).tools)
        return before, after

    before, after = asyncio.run(drive())
    assert before == sorted(ECHO_TOOLS + SLEEPER_TOOLS)
    assert after == ECHO_TOOLS
