"""Terminal injection: a hostile plugin (tests/fixtures/hostile/termjack) puts escape sequences
in everything it says — its manifest, replies, result data, errors, progress, streams, logs,
and the messages its crashes leave — to retitle the user's terminal (OSC 0), write the
clipboard (OSC 52), clear the screen, send an 8-bit CSI, reverse a line with a bidi override
and overwrite it with a carriage return. Through the real ``deeting`` (script mode, plain and
``--json``, and the plugin commands) and the real kernel with a real sandboxed worker, none of
it may reach the terminal, ``--json`` must still carry the plugin's exact strings, and the
kernel must keep serving.

The chat's paths are in tests/ui/test_terminal_injection.py and the tmux test. Run as root by
.ci/run, and again as an unprivileged user by test_unprivileged.py."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import select
import subprocess
import time
import tty
from pathlib import Path
from typing import Any

import pytest
from support import DEETING, REPO
from terminal_support import ATTACK, MARKUP, TERMJACK, VISIBLE, assert_terminal_safe

from deeting_tui.headless import ScriptPrinter
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.paths import resolve_paths

SCRIPT = """\
/misbehave what=reply
/misbehave what=fail
/misbehave what=progress
/misbehave what=stream
/misbehave what=log
termjack reply
"""


def deeting(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[bytes]:
    """The real ``deeting``, its output as the bytes a terminal would get."""
    env = {**os.environ, "DEETING_HOME": str(home)}
    env.pop("DEETING_DEBUG", None)
    return subprocess.run(
        [*DEETING, *args],
        input=stdin.encode(),
        capture_output=True,
        env=env,
        timeout=120,
        cwd=REPO,
    )


@pytest.fixture
def installed(home: Path) -> Path:
    """termjack installed with its (hostile) scope granted, and its progress call let go."""
    done = deeting(home, "plugin", "install", str(TERMJACK), "--yes")
    out = assert_terminal_safe(done.stdout, "plugin install")
    assert done.returncode == 0, out + done.stderr.decode()
    assert "granted: filesystem:read:~/termjackscope" in out  # the scope path, neutralised
    data = resolve_paths().plugin_data("termjack")
    data.mkdir(parents=True, exist_ok=True)
    (data / "go").touch()  # what=progress returns at once
    return home


def _lines(output: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines()]


def test_script_output_cannot_drive_the_terminal(installed: Path) -> None:
    done = deeting(installed, "--script", "-", stdin=SCRIPT)
    out = assert_terminal_safe(done.stdout, "--script stdout")
    err = assert_terminal_safe(done.stderr, "--script stderr")
    assert done.returncode == 1, err  # the failed call
    # Both replies shown, markup as written; every call after the failure was served.
    assert out.count(f"{VISIBLE}cr\noverwritten {MARKUP}") == 2
    for word in ("progressed", "streamed", "logged"):
        assert word in out
    # The error, and the kernel's warning about the failing deactivate, one line each.
    assert f"deeting: error: misbehave: {VISIBLE}cr overwritten {MARKUP}" in err
    assert f"deactivate failed: deactivate: {VISIBLE}cr overwritten" in err
    assert not any(line.startswith("overwritten") for line in err.splitlines())


def test_json_output_keeps_the_plugins_exact_strings(installed: Path) -> None:
    done = deeting(installed, "--script", "-", "--json", stdin=SCRIPT)
    # The plugin's words stay in the JSON (as escaped data), so only controls are checked.
    assert_terminal_safe(done.stdout, "--json stdout", payloads=False)
    assert_terminal_safe(done.stderr, "--json stderr")
    events = _lines(done.stdout)
    replies = [e["text"] for e in events if e["type"] == "reply"]
    assert replies[0] == ATTACK and replies[-1] == ATTACK
    results = [e for e in events if e["type"] == "tool_result" and e["ok"]]
    assert results[0]["data"] == {"text": ATTACK, ATTACK: [ATTACK]}
    assert results[0]["text"] == ATTACK
    (error,) = [e for e in events if e["type"] == "error"]
    assert error["message"].endswith(ATTACK)
    (stream,) = [e for e in events if e["type"] == "stream"]
    assert stream["payload"] == {"text": ATTACK, ATTACK: ATTACK}


def test_a_continued_session_stays_clean(installed: Path) -> None:
    first = deeting(installed, "--script", "-", "--json", stdin="/misbehave what=reply\n")
    session_id = _lines(first.stdout)[0]["session_id"]
    done = deeting(
        installed, "--script", "-", "--session", session_id, stdin="hello\n/misbehave what=reply\n"
    )
    out = assert_terminal_safe(done.stdout, "continued session stdout")
    assert_terminal_safe(done.stderr, "continued session stderr")
    assert done.returncode == 0 and VISIBLE in out


def test_plugin_info_and_list_cannot_drive_the_terminal(installed: Path) -> None:
    info = deeting(installed, "plugin", "info", "termjack")
    text = assert_terminal_safe(info.stdout, "plugin info")
    assert info.returncode == 0, info.stderr.decode()
    lines = text.splitlines()
    # The description on the first line, whole: its carriage return forges no line of its own.
    assert lines[0] == f"termjack 1.0.0 — {VISIBLE}cr overwritten {MARKUP} " + (
        "[link=https://evil.example]link[/link]"
    )
    assert "  permissions: filesystem:read:~/termjackscope" in lines
    assert f"  tool:        misbehave — toolclipclearc1rev {MARKUP}" in lines
    assert r"  trigger:     ^termjack(?:)? (?P<what>\w+)$ → misbehave (priority 50)" in lines
    listing = deeting(installed, "plugin", "list")
    assert "termjack" in assert_terminal_safe(listing.stdout, "plugin list")

    # --json: the exact strings, in JSON a terminal can show.
    info_json = deeting(installed, "plugin", "info", "termjack", "--json")
    assert_terminal_safe(info_json.stdout, "plugin info --json", payloads=False)
    document = json.loads(info_json.stdout)
    assert document["description"] == ATTACK
    assert document["author"] == "author" + ATTACK
    assert document["license"] == "license" + ATTACK
    assert document["tools"][0]["description"].startswith("tool\x1b]0;PWNED\x07")
    assert document["permissions"][0]["scope"] == "filesystem:read:~/termjack\x1b]0;PWNED\x07scope"
    assert document["trigger"]["regex"] == "^termjack(?:\x1b]0;PWNED\x07)? (?P<what>\\w+)$"
    listing_json = deeting(installed, "plugin", "list", "--json")
    assert_terminal_safe(listing_json.stdout, "plugin list --json", payloads=False)
    assert [p["name"] for p in json.loads(listing_json.stdout)["plugins"]] == ["termjack"]


def test_errors_quoting_the_plugin_cannot_drive_the_terminal(installed: Path) -> None:
    armed = deeting(installed, "--script", "-", stdin="/misbehave what=arm\n")
    assert b"armed" in armed.stdout
    # Start-up: the kernel's problem, printed as the CLI's warning; the chat still answers.
    started = deeting(installed, "--script", "-", stdin="hello\n")
    err = assert_terminal_safe(started.stderr, "start-up warning")
    assert f"deeting: warning: could not enable 'termjack': activate: {VISIBLE}" in err
    assert started.returncode == 0 and started.stdout.strip()
    # The CLI's error line.
    enable = deeting(installed, "plugin", "enable", "termjack")
    err = assert_terminal_safe(enable.stderr, "plugin enable error")
    assert enable.returncode == 1
    assert err.startswith(f"deeting: error: could not enable 'termjack': activate: {VISIBLE}")
    assert len(err.splitlines()) == 1


async def _until(done: Any, what: str, timeout: float = 30.0) -> None:
    async def wait() -> None:
        while not done():
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(wait(), timeout)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def test_crash_notices_and_the_disabled_reason_cannot_drive_the_terminal(
    kernel: Kernel, home: Path
) -> None:
    report = await kernel.loader.install(TERMJACK, yes=True)
    assert report.enabled
    out, err = io.BytesIO(), io.StringIO()
    kernel.add_listener(ScriptPrinter(out, err, json_mode=False))
    session = kernel.open_session()
    # It crashes, and each restart's activate fails with the attack: notices, then disabled.
    crashed = await kernel.submit(session.id, "/misbehave what=crash")
    assert crashed.failed
    await _until(lambda: "termjack" not in kernel.loader.runtimes, "the crash loop's end")
    answered = await kernel.submit(session.id, "hello")
    assert not answered.failed  # the kernel keeps serving

    text = assert_terminal_safe(err.getvalue(), "notices and errors")
    notices = [line for line in text.splitlines() if line.startswith("notice: ")]
    assert any(f"activate: {VISIBLE}" in line for line in notices), text  # restarts that failed
    assert_terminal_safe(out.getvalue(), "replies")
    reason = kernel.loader.record("termjack").disabled_reason
    assert reason is not None and "\x1b]0;PWNED" in reason  # the record keeps what was said

    for command in (("plugin", "list"), ("plugin", "info", "termjack")):
        done = deeting(home, *command)
        shown = assert_terminal_safe(done.stdout, " ".join(command))
        assert f"and was disabled (last: worker failed after restart: activate: {VISIBLE}" in shown


def test_cards_drawn_on_a_terminal_cannot_drive_it(installed: Path, tmp_path: Path) -> None:
    """On a terminal, script mode also draws each result as the chat's card (with Rich)."""
    script = tmp_path / "script.txt"
    script.write_text("/misbehave what=reply\n")
    master, slave = pty.openpty()
    tty.setraw(slave)  # no newline translation: every byte read is one deeting wrote
    env = {**os.environ, "DEETING_HOME": str(installed), "TERM": "dumb", "COLUMNS": "100"}
    env.pop("DEETING_DEBUG", None)
    child = subprocess.Popen(
        [*DEETING, "--script", str(script)],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    os.close(slave)
    written = bytearray()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer is gone
                    break
                if not chunk:
                    break
                written += chunk
            elif child.poll() is not None:
                break
        _, stderr = child.communicate(timeout=60)
    finally:
        os.close(master)
        if child.poll() is None:
            child.kill()
            child.wait()
    screen = assert_terminal_safe(bytes(written), "cards on a terminal")
    said = assert_terminal_safe(stderr, "cards' stderr")
    assert "event listener failed" not in said, said  # e.g. Rich missing where the kernel runs
    assert child.returncode == 0
    assert screen.count(VISIBLE) >= 3, screen  # the reply, and the card's keys and values
