"""`deeting view` as a user runs it: a real process, its URL read through a pipe, Ctrl-C, and
a `deeting --script` in another process whose results reach the page's event stream."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from support import DEETING, FIXTURES, REPO, run_deeting

from deeting_tui.kernel.sessions.store import SessionStore
from deeting_tui.paths import resolve_paths

URL = re.compile(r"http://127\.0\.0\.1:(\d+)/[A-Za-z0-9_-]{16,}/")
DEADLINE_S = 20.0


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DEETING_HOME": str(home), **extra}
    for name in ("DEETING_DEBUG", "DISPLAY", "WAYLAND_DISPLAY", "BROWSER", "SSH_TTY"):
        if name not in extra:
            env.pop(name, None)
    return env


def _session(title: str | None = "groceries") -> str:
    """A stored session with one finished call (written as the kernel writes them)."""
    with SessionStore(resolve_paths().sessions_db) as store:
        info = store.create(title)
        store.append(info.id, "user", {"text": "/add a=1 b=2"})
        store.append(
            info.id,
            "tool_call",
            {"call_id": "c1", "tool": "add", "plugin": "good", "args": {"a": 1, "b": 2}},
        )
        store.append(
            info.id,
            "tool_result",
            {
                "call_id": "c1",
                "tool": "add",
                "plugin": "good",
                "ok": True,
                "data": {"sum": 3},
                "text": None,
                "renderer": None,
                "error": None,
                "duration_ms": 4,
            },
        )
        return info.id


class View:
    """A running `deeting view`, its first stdout line read through the pipe."""

    def __init__(self, home: Path, *args: str, **env: str) -> None:
        self.process = subprocess.Popen(
            [*DEETING, "view", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(home, **env),
            cwd=REPO,
        )
        self.started = time.monotonic()
        self.url = self.read_line()

    def read_line(self) -> str:
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], DEADLINE_S)
        if not ready:
            self.stop()
            pytest.fail("deeting view printed no URL")
        return stdout.readline().decode()

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, float, str]:
        """Signal it; its exit status, how long it took to exit, and its stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        sent = time.monotonic()
        try:
            _, err = self.process.communicate(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return self.process.returncode, time.monotonic() - sent, err.decode()


@pytest.fixture
def views() -> Iterator[list[View]]:
    started: list[View] = []
    yield started
    for view in started:
        if view.process.poll() is None:
            view.process.kill()
            view.process.communicate()


def _events(url: str) -> Iterator[dict[str, Any]]:
    """The page's event stream, one JSON object per `data:` line."""
    with (
        httpx.Client(timeout=httpx.Timeout(DEADLINE_S)) as client,
        client.stream("GET", url + "events") as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:"):
                yield orjson.loads(line.removeprefix("data:"))


def test_url_is_the_first_line_at_once_through_a_pipe(home: Path, views: list[View]) -> None:
    session = _session()
    view = View(home, "--no-open")
    views.append(view)
    assert view.process.poll() is None  # read while it runs: flushed, not at exit
    assert URL.fullmatch(view.url.rstrip("\n")), view.url
    url = view.url.strip()
    assert httpx.get(url + "vendor/mcp-app.js").status_code == 200
    reset = _loaded(_events(url))
    assert reset["session"]["id"] == session
    assert [card["id"] for card in reset["cards"]] == ["c1"]
    code, took, err = view.stop()
    assert code == 0 and took < 1.0, (code, took, err)
    assert "Traceback" not in err and "no browser opened" not in err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_it_within_a_second_with_exit_0(
    home: Path, views: list[View], signum: int
) -> None:
    _session()
    view = View(home, "--no-open")
    views.append(view)
    url = view.url.strip()
    events = _events(url)
    assert next(events)["op"] == "reset"  # a page is connected and following
    code, took, err = view.stop(signum)
    assert (code, "Traceback" in err) == (0, False), err
    assert took < 1.0
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=2)


def _loaded(events: Iterator[dict[str, Any]]) -> dict[str, Any]:
    """The next reset that names a session (a page may connect before the view has loaded
    its session: that first reset names none)."""
    for op in events:
        if op["op"] == "reset" and op["session"]["id"] is not None:
            return op
    raise AssertionError("the event stream ended")


def _shown(events: Iterator[dict[str, Any]]) -> dict[str, Any]:
    return dict(_loaded(events)["session"])


def test_latest_session_by_default_and_session_by_id(home: Path, views: list[View]) -> None:
    first = _session("first")
    second = _session("second")
    view = View(home, "--no-open")
    views.append(view)
    assert _shown(_events(view.url.strip()))["id"] == second
    view.stop()
    view = View(home, "--no-open", "--session", first)
    views.append(view)
    assert _shown(_events(view.url.strip())) == {"id": first, "title": "first"}
    assert view.stop()[0] == 0


def test_without_session_the_view_moves_to_each_newer_session(
    home: Path, views: list[View]
) -> None:
    """A `deeting --script` run started after the view makes a new session: the page shows
    it, without a restart. With --session, the view stays where it was put."""
    old = _session("old")
    newest = View(home, "--no-open")
    pinned = View(home, "--no-open", "--session", old)
    views.extend([newest, pinned])
    following, staying = _events(newest.url.strip()), _events(pinned.url.strip())
    assert _shown(following)["id"] == old
    assert _shown(staying)["id"] == old
    new = _session("new")
    assert _shown(following) == {"id": new, "title": "new"}
    assert "showing session " + new in newest.stop()[2]
    assert new not in pinned.stop()[2]


def test_with_no_session_yet_the_view_waits_for_the_first(home: Path, views: list[View]) -> None:
    view = View(home, "--no-open")
    views.append(view)
    events = _events(view.url.strip())
    reset = next(events)
    assert reset["op"] == "reset" and reset["cards"] == []
    first = _session("first")
    assert _shown(events) == {"id": first, "title": "first"}
    code, _took, err = view.stop()
    assert code == 0
    assert "no session yet" in err and "Traceback" not in err


def test_an_unknown_session_is_one_line(home: Path) -> None:
    _session()
    unknown = run_deeting("view", "--session", "ffffffffffff", home=home)
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.splitlines() == [
        "deeting: error: --session ffffffffffff: no session 'ffffffffffff' — without "
        "--session, the newest is shown"
    ]


def test_a_taken_port_is_one_clear_line(home: Path) -> None:
    _session()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_deeting("view", "--no-open", "--port", str(port), home=home)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"deeting: error: port {port} on 127.0.0.1 is already in use")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    bad = run_deeting("view", "--port", "65536", home=home)
    assert bad.returncode == 2 and "65536 is not a port" in bad.stderr


def test_the_given_port_is_served(home: Path, views: list[View]) -> None:
    _session()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    view = View(home, "--no-open", "--port", str(port))
    views.append(view)
    match = URL.fullmatch(view.url.strip())
    assert match is not None and int(match.group(1)) == port


def test_no_display_says_the_url_and_the_ssh_hint_on_stderr(home: Path, views: list[View]) -> None:
    _session()
    view = View(home)  # no --no-open, no DISPLAY, no SSH: nothing can be opened
    views.append(view)
    url = view.url.strip()
    assert next(_events(url))["op"] == "reset"
    code, _, err = view.stop()
    port = URL.fullmatch(url).group(1)  # type: ignore[union-attr]
    assert code == 0
    assert "deeting: no browser opened (no graphical display" in err
    assert f"ssh -L {port}:127.0.0.1:{port} HOST" in err


def test_a_browser_is_started_with_the_url(home: Path, views: list[View], tmp_path: Path) -> None:
    _session()
    opened = tmp_path / "opened"
    browser = tmp_path / "fake-browser"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {opened}.tmp && mv {opened}.tmp {opened}\n')
    browser.chmod(0o755)
    view = View(home, DISPLAY=":99", BROWSER=str(browser))
    views.append(view)
    deadline = time.monotonic() + DEADLINE_S
    while not opened.exists() and time.monotonic() < deadline:
        select.select([], [], [], 0.05)  # polling a file another process writes
    assert opened.read_text() == view.url.strip()
    code, _, err = view.stop()
    assert code == 0 and "no browser opened" not in err


def test_results_a_script_adds_in_another_process_reach_the_page(
    home: Path, views: list[View]
) -> None:
    installed = run_deeting("plugin", "install", str(FIXTURES / "good_plugin"), "--yes", home=home)
    assert installed.returncode == 0, installed.stderr
    first = run_deeting("--script", "-", "--json", home=home, stdin="echo one\n")
    session = orjson.loads(first.stdout.splitlines()[0])["session_id"]
    view = View(home, "--no-open", "--session", session)
    views.append(view)
    events = _events(view.url.strip())
    reset = next(events)
    assert len(reset["cards"]) == 1
    script = subprocess.Popen(
        [*DEETING, "--script", "-", "--session", session],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(home),
        cwd=REPO,
    )
    try:
        script.communicate(b"/add a=20 b=22\n", timeout=60)
        for op in events:
            card = op.get("card") or {}
            result = card.get("result") or {}
            if result.get("structuredContent") == {"sum": 42}:
                break
        else:
            pytest.fail("the event stream ended before the script's result came")
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()
    assert card["tool"] == "add" and card["kind"] == "result"
    assert view.stop()[0] == 0


@pytest.mark.parametrize("command", [["view"], ["--script", "-"]])
def test_a_session_id_that_is_not_utf8_is_unknown_not_a_crash(
    home: Path, command: list[str]
) -> None:
    _session()
    result = run_deeting(*command, "--session", "\udcff", home=home, stdin="hi\n")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("deeting: error: --session \ufffd: no session")
    assert "UnicodeEncodeError" not in result.stderr


def _kill_started(command: Path) -> None:
    """Kill every process group led by a process running ``command`` (a fake browser Deeting
    started in its own session). Called once `deeting view` has exited, so none can start
    after."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if str(command).encode() in (proc / "cmdline").read_bytes():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(proc.name), signal.SIGKILL)


def test_ctrl_c_while_the_browser_starts_is_still_quiet_and_quick(
    home: Path, views: list[View], tmp_path: Path
) -> None:
    _session()
    browser = tmp_path / "slow-browser"
    browser.write_text("#!/bin/sh\nsleep 30\n")  # runs on, as a browser does
    browser.chmod(0o755)
    view = View(home, DISPLAY=":99", BROWSER=str(browser))
    views.append(view)
    try:
        code, took, err = view.stop()
    finally:
        _kill_started(browser)
    assert (code, err.count("\n")) == (0, 1), err  # only the "showing session" line
    assert took < 1.0
