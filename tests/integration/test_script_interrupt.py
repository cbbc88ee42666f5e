"""Ctrl-C in ``deeting --script`` while a plugin blocks in sync code: the call is recorded as
cancelled, the run ends at once with 130 and one line, and no traceback, ever."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import orjson
from support import DEETING, FIXTURES, REPO, run_deeting


def test_ctrl_c_mid_call_ends_the_run_cleanly(home: Path) -> None:
    installed = run_deeting(
        "plugin", "install", str(FIXTURES / "blocking_plugin"), "--yes", home=home
    )
    assert installed.returncode == 0, installed.stderr
    env = {**os.environ, "DEETING_HOME": str(home)}
    env.pop("DEETING_DEBUG", None)
    script = subprocess.Popen(
        [*DEETING, "--script", "-", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    try:
        assert script.stdin is not None and script.stdout is not None
        script.stdin.write(b"/block seconds=60\n/state\n")
        script.stdin.flush()
        call = orjson.loads(script.stdout.readline())
        assert call["type"] == "tool_call" and call["tool"] == "block"
        # The call line is written before the request goes out; the plugin may not be
        # blocking yet, which makes no difference to how Ctrl-C must end the run.
        script.send_signal(signal.SIGINT)
        out, err = script.communicate(timeout=30)
    finally:
        if script.poll() is None:
            script.kill()
            script.wait()
    assert script.returncode == 130
    assert err == b"deeting: interrupted\n"
    (result,) = [orjson.loads(line) for line in out.splitlines()]
    assert result["type"] == "tool_result" and result["call_id"] == call["call_id"]
    assert result["cancelled"] is True and result["ok"] is False
