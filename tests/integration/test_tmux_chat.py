"""End to end in a real terminal: the newcomer's first minutes with ``deeting``, in tmux.

The venv's own ``deeting`` console script runs inside a detached tmux session of exactly
80x24, on a tmux server of our own (its socket and config in ``tmp_path``, so a user's tmux is
never touched), with a fresh ``DEETING_HOME`` and the offline assistant. The test types what a
newcomer would and reads the screen with ``capture-pane``: the chat, ``help``, a tool call,
the plugin manager, the permission dialog, enable, disable, back, quit. Every step waits by
polling the screen for its condition; nothing sleeps a fixed time to synchronise. A failed
wait shows the last screen it saw.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import FIXTURES, OFFICIAL, REPO
from terminal_support import TERMJACK, VISIBLE

from deeting_tui.plugin.scopes import explain, parse_scope

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(
    TMUX is None,
    reason="tmux is not installed: install it (apt-get install tmux) or run ./dev.sh test "
    "as root, which installs it",
)

WIDTH, HEIGHT = 80, 24
STEP_TIMEOUT = 20.0
POLL = 0.05
SESSION = "deeting"
# Our own server: no user config, Esc delivered at once, the pane kept after deeting exits
# so its exit status and last words can be read; an OSC 52 from the pane would fill a buffer.
TMUX_CONF = f"""\
set -g default-size {WIDTH}x{HEIGHT}
set -g escape-time 0
set -g remain-on-exit on
set -g history-limit 2000
set -g set-clipboard on
"""


def deeting_script() -> Path:
    """The venv's ``deeting`` console script, beside the interpreter running the tests."""
    candidate = Path(sys.executable).with_name("deeting")
    if candidate.exists():
        return candidate
    found = shutil.which("deeting")
    assert found, f"no 'deeting' next to {sys.executable} or on PATH: pip install -e ."
    return Path(found)


class Pane:
    """One tmux server with one 80x24 session running a command; screen reads and keys."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        assert TMUX is not None
        socket = folder / "tmux.sock"
        if len(str(socket)) > 100:  # sun_path is 108 bytes: fall back to a named socket
            self.server = ["-L", f"deeting-test-{os.getpid()}-{time.monotonic_ns()}"]
        else:
            self.server = ["-S", str(socket)]
        config = folder / "tmux.conf"
        config.write_text(TMUX_CONF)
        self.base = [TMUX, "-u", "-f", str(config), *self.server]
        self.env = env
        self.screen = ""
        self.pid: int | None = None
        self.server_pid = 0

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            [*self.base, *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self, command: list[str]) -> None:
        # `exec` so the pane's process is deeting itself: its pid is the one to reap.
        self.tmux(
            "new-session", "-d", "-s", SESSION, "-x", str(WIDTH), "-y", str(HEIGHT),
            "-c", str(REPO), "exec " + shlex.join(command),
        )  # fmt: skip
        self.pid = int(self.field("pane_pid"))
        self.server_pid = int(self.field("pid"))

    def field(self, name: str) -> str:
        return self.format(f"#{{{name}}}")

    def format(self, text: str) -> str:
        return self.tmux("display-message", "-p", "-t", SESSION, text).strip()

    def capture(self, history: bool = False) -> str:
        args = ["capture-pane", "-p", "-t", SESSION] + (["-S", "-"] if history else [])
        self.screen = self.tmux(*args)
        return self.screen

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", SESSION, "-l", text)

    def press(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", SESSION, *keys)

    def wait_for(
        self,
        what: str,
        condition: Callable[[str], bool],
        timeout: float = STEP_TIMEOUT,
        shows_a_log: bool = False,
    ) -> str:
        """Poll the screen until ``condition`` holds; fail with the last screen otherwise.
        A traceback on screen fails at once, unless the screen ``shows_a_log`` (a plugin's)."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.capture()
            assert shows_a_log or "Traceback" not in screen, f"a traceback on screen:\n{screen}"
            if condition(screen):
                return screen
            if self.field("pane_dead") == "1":
                self.fail(f"deeting exited while waiting for {what}", history=True)
            if time.monotonic() > deadline:
                self.fail(f"{what}: not seen within {timeout:g} s")
            time.sleep(POLL)

    def wait_text(self, *texts: str) -> str:
        return self.wait_for(" and ".join(map(repr, texts)), lambda s: all(t in s for t in texts))

    def wait_re(self, pattern: str) -> str:
        compiled = re.compile(pattern, re.MULTILINE)
        return self.wait_for(f"/{pattern}/", lambda s: compiled.search(s) is not None)

    def fail(self, message: str, history: bool = False) -> None:
        screen = self.capture(history=history)
        raise AssertionError(f"{message}; the screen:\n{'-' * WIDTH}\n{screen}{'-' * WIDTH}")

    def wait_exit(self, timeout: float = STEP_TIMEOUT) -> str:
        """``exit N`` or ``signal N``, once the pane's process has ended."""
        deadline = time.monotonic() + timeout
        while True:
            fields = self.format("#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}")
            dead, status, signal_number = fields.split("|")
            if dead == "1" and (status or signal_number):
                return f"exit {status}" if status else f"signal {signal_number}"
            if self.pid is not None and _state(self.pid) == "Z":
                # Exited, but tmux has not reaped it: built with libutempter (Debian's is),
                # tmux can lose a SIGCHLD that arrives while utempter's helper runs, as it
                # does when the pane closes (tmux/tmux#311). Another SIGCHLD makes it look.
                os.kill(self.server_pid, signal.SIGCHLD)
            if time.monotonic() > deadline:
                self.fail(f"deeting still running {timeout:g} s after ctrl+q")
            time.sleep(POLL)

    def kill(self) -> None:
        """Stop the server (SIGHUP to the pane), then make sure deeting is gone."""
        subprocess.run([*self.base, "kill-server"], env=self.env, capture_output=True, timeout=10)
        if self.pid is not None:
            _reap(self.pid)


def _state(pid: int) -> str | None:
    """The process's state letter (``R``, ``S``, ``Z`` …), or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rpartition(")")[2].split()[0]


def _reap(pid: int, timeout: float = 5.0) -> None:
    """Wait for ``pid`` (our tmux's child, not ours) to end; SIGKILL it if it lingers."""
    deadline = time.monotonic() + timeout
    while _state(pid) not in (None, "Z"):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(POLL)


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
    env.pop("DEETING_DEBUG", None)
    env["DEETING_HOME"] = str(home)
    env.setdefault("LANG", "C.UTF-8")
    env["TERM"] = "xterm-256color"
    return env


def _install(env: dict[str, str], folder: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(deeting_script()), "plugin", "install", str(folder), *flags],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextlib.contextmanager
def _pane(tmp_path: Path, env: dict[str, str]) -> Iterator[Pane]:
    folder = tmp_path / "tmux"
    folder.mkdir()
    tmux = Pane(folder, env)
    try:
        yield tmux
    finally:
        tmux.kill()


@pytest.fixture
def pane(tmp_path: Path, home: Path) -> Iterator[Pane]:
    env = _environment(home)
    for plugin in ("calc", "sysinfo"):
        done = _install(env, OFFICIAL / plugin)
        # sysinfo asks for filesystem:read:/proc: installed, not enabled, exit status 1.
        assert f"installed {plugin}" in done.stdout, done.stdout + done.stderr
    with _pane(tmp_path, env) as tmux:
        yield tmux


def test_newcomer_flow_in_an_80x24_terminal(pane: Pane) -> None:
    pane.start([str(deeting_script())])

    # The chat appears (its header), ready for typing.
    pane.wait_text("Deeting")
    pane.type("help")
    pane.wait_re(r"^\W*help\W*$")  # echoed alone in the prompt: keys reach the input
    pane.press("Enter")
    pane.wait_text("offline assistant", "/calc expr=")

    # A direct tool call: its block, then the result card.
    pane.type("/calc expr=2+3")
    pane.press("Enter")
    pane.wait_re(r"\bcalc\b.*\b\d+ ms\b")  # the call's status line: tool and duration
    pane.wait_re(r"result\s+5\b")

    # The plugin manager: calc running, sysinfo waiting for consent.
    pane.type("/plugins")
    pane.press("Enter")
    pane.wait_re(r"^\s*calc\s+\S+\s+enabled\b")
    pane.wait_re(r"^\s*sysinfo\s+\S+\s+needs consent\b")

    # Enable sysinfo: the dialog names the scope in the words the user decides on.
    words, _risk = explain(parse_scope("filesystem:read:/proc"))
    pane.press("Down", "e")
    pane.wait_text("'sysinfo' asks for", words)
    pane.press("a")
    pane.wait_re(r"^\s*sysinfo\s+\S+\s+enabled\b")
    pane.press("d")
    pane.wait_re(r"^\s*sysinfo\s+\S+\s+disabled\b")

    # Back to the chat, then quit.
    pane.press("Escape")
    table_header = re.compile(r"^\s*plugin\s+version\s+state\b", re.MULTILINE)
    pane.wait_for(
        "the chat again (plugin table gone)",
        lambda s: "Deeting" in s and table_header.search(s) is None,
    )
    pane.press("C-q")
    status = pane.wait_exit()
    last = pane.capture(history=True)
    assert status == "exit 0", f"deeting ended with {status}; the screen:\n{last}"
    assert "Traceback" not in last, last


def test_a_hostile_plugin_cannot_retitle_the_terminal_or_set_the_clipboard(
    tmp_path: Path, home: Path
) -> None:
    """The real terminal's view of tests/fixtures/hostile/termjack: its reply, result card,
    error and plugin-manager page (description, README, log) all try OSC 0, OSC 52 and a
    clear screen. Each wait first checks the pane's title and tmux's buffers, so the first
    step that gets through fails the test by name."""
    env = _environment(home)
    done = _install(env, TERMJACK, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    with _pane(tmp_path, env) as pane:
        pane.start([str(deeting_script())])
        pane.wait_text("Deeting")
        title = pane.field("pane_title")

        def intact(shown: Callable[[str], object]) -> Callable[[str], bool]:
            def check(screen: str) -> bool:
                now = pane.field("pane_title")
                assert now == title, f"the plugin retitled the terminal: {now!r}"
                assert pane.tmux("list-buffers") == "", "the plugin wrote the clipboard"
                return bool(shown(screen))

            return check

        for line, answer in (("/misbehave what=reply", VISIBLE), ("/misbehave what=fail", "✗")):
            pane.type(line)
            pane.wait_re(rf"^\W*{re.escape(line)}\W*$")  # echoed in the prompt: keys arrived
            pane.press("Enter")
            answered = re.compile(rf"{answer}.*\n(?s:.*)Message, or /TOOL")  # the prompt empty
            pane.wait_for(f"the answer to {line}", intact(answered.search))
        pane.press("F2")
        page = ("termjack 1.0.0 —", "sandbox")  # the README is further down the pane
        pane.wait_for("its page", intact(lambda s: all(t in s for t in page)))
        pane.press("Tab", "End")  # the details pane, kept at its log's last line
        tail = (f"activate: {VISIBLE}", "ERROR deeting.worker: invoke raised")
        pane.wait_for("its log", intact(lambda s: all(t in s for t in tail)), shows_a_log=True)
        pane.press("Escape")
        back = re.compile(r"^\W*Message, or /TOOL", re.MULTILINE)
        pane.wait_for("the chat", intact(back.search), shows_a_log=True)
        pane.press("C-q")
        status = pane.wait_exit()
        assert status == "exit 0", f"deeting ended with {status}:\n{pane.capture(history=True)}"


def test_esc_and_ctrl_c_on_a_blocking_plugin_in_an_80x24_terminal(
    tmp_path: Path, home: Path
) -> None:
    """tests/fixtures/blocking_plugin blocks in time.sleep, as urllib does: Esc (four times,
    more than the crash-loop limit) and Ctrl-C each end its call's block at once, marked
    cancelled; the plugin answers the next call every time and is never disabled; quitting
    afterwards prints no traceback."""
    env = _environment(home)
    done = _install(env, FIXTURES / "blocking_plugin", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr

    def send(pane: Pane, line: str) -> None:
        pane.type(line)
        pane.wait_re(rf"^\s*▊\s*{re.escape(line)}\s*▎\s*$")  # in the prompt: keys arrived
        pane.press("Enter")

    with _pane(tmp_path, env) as pane:
        pane.start([str(deeting_script())])
        pane.wait_text("Deeting")
        for round_, key in enumerate(("Escape", "Escape", "Escape", "Escape", "C-c"), 1):
            send(pane, "/new")  # an empty transcript each round: what is seen is this round's
            pane.wait_for("a new session", lambda s: "> " not in s)
            send(pane, "sleep 60")
            pane.wait_text("blocking")  # the plugin's progress line: it is inside time.sleep
            pane.press(key)
            screen = pane.wait_for(
                f"cancel {round_} ({key}) ends the block",
                lambda s: "⊘ block  cancelled after" in s and "blocking" not in s,
            )
            assert "crashed" not in screen and "disabled" not in screen, screen
            send(pane, "/state")
            screen = pane.wait_re(r"✓ state\b")
            assert "crashed" not in screen and "disabled" not in screen, screen
        pane.press("C-q")
        status = pane.wait_exit()
        last = pane.capture(history=True)
        assert status == "exit 0", f"deeting ended with {status}; the screen:\n{last}"
        assert "Traceback" not in last and "Error" not in last, last


def test_reopen_and_call_again_after_a_script(tmp_path: Path, home: Path) -> None:
    """A used home: ``deeting --script`` calls a tool, then the chat resumes that session
    and calls again, quits, reopens and calls again. Call ids used to restart at c1 in every
    process, so the chat's first call crashed on a repeated widget id, exited 0, and every
    later launch resumed the broken session. Then ``--session`` with an unknown id: one line
    and exit 2, before the chat takes the terminal."""
    env = _environment(home)
    assert "installed calc" in _install(env, OFFICIAL / "calc").stdout
    script = subprocess.run(
        [str(deeting_script()), "--script", "-"],
        input="/calc expr=1+1\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert script.returncode == 0, script.stdout + script.stderr
    for run, (expr, answer) in enumerate((("2+3", "5"), ("3+4", "7"))):
        folder = tmp_path / f"tmux-{run}"
        folder.mkdir()
        pane = Pane(folder, env)
        try:
            pane.start([str(deeting_script())])
            pane.wait_re(r"result\s+2\b")  # the script's call, resumed
            line = f"/calc expr={expr}"
            pane.type(line)
            pane.wait_re(rf"^\W*{re.escape(line)}\W*$")
            pane.press("Enter")
            pane.wait_re(rf"result\s+{answer}\b")
            pane.press("C-q")
            status = pane.wait_exit()
            last = pane.capture(history=True)
            assert status == "exit 0", f"run {run}: deeting ended with {status}:\n{last}"
            assert "Traceback" not in last, last
        finally:
            pane.kill()
    folder = tmp_path / "tmux-unknown"
    folder.mkdir()
    pane = Pane(folder, env)
    try:
        pane.start([str(deeting_script()), "--session", "doesnotexist"])
        status = pane.wait_exit()
        screen = pane.capture(history=True).splitlines()
        shown = [line for line in screen if line.strip() and not line.startswith("Pane is dead")]
        assert status == "exit 2", f"deeting ended with {status}:\n{shown}"
        assert len(shown) == 1 and shown[0].startswith("deeting: error: --session doesnotexist"), (
            shown
        )
    finally:
        pane.kill()


def _dialog_text(screen: str) -> str:
    """The text inside a dialog's thick frame (█ … █ on each of its rows), rows joined and
    spaces squashed: what a reader of the dialog sees, wherever its lines wrap."""
    inside = []
    for row in screen.splitlines():
        first, last = row.find("█"), row.rfind("█")
        if first != -1 and last > first:
            inside.append(row[first + 1 : last])
    return " ".join(" ".join(inside).split())


def test_dialogs_wrap_their_whole_text_at_80x24(pane: Pane) -> None:
    """Every word of a question, a permission and its risk, at 80x24: wrapped, never cut."""
    pane.start([str(deeting_script())])
    pane.wait_text("Deeting", "Welcome to Deeting", "1 awaiting consent: F2, then e")
    pane.press("F2")
    pane.wait_re(r"^\s*sysinfo\s+\S+\s+needs consent\b")

    # The uninstall question, whole, then No.
    pane.press("Down", "x")
    question = "Uninstall sysinfo 1.0.0? Its code, data, cache, log and permissions are removed."
    pane.wait_for(f"the whole question {question!r}", lambda s: question in _dialog_text(s))
    pane.press("n")
    pane.wait_for("the question gone", lambda s: "Uninstall sysinfo" not in s)

    # The permission dialog: what the scope allows and its risk, in words.
    words, risk = explain(parse_scope("filesystem:read:/proc"))
    pane.press("e")
    wanted = f"• {words} ({risk} risk)"
    pane.wait_for(f"the whole scope {wanted!r}", lambda s: wanted in _dialog_text(s))
    pane.press("d")
    pane.wait_re(r"^\s*sysinfo\s+\S+\s+needs consent\b")

    pane.press("Escape")
    pane.wait_text("Message, or /TOOL")
    pane.press("C-q")
    status = pane.wait_exit()
    assert status == "exit 0", f"deeting ended with {status}:\n{pane.capture(history=True)}"
