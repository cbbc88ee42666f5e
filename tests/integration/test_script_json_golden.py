"""``deeting --script --json`` prints the very bytes it printed before events were typed.

The JSON Lines output is a contract (DESIGN: other programs parse it), so this test runs the
real command (offline assistant, the official calc plugin) over lines that make each kind of
event it prints — a plain reply, a direct call with a card, a trigger, a failing call, an
unknown tool, ``/help``, a line that is not UTF-8, plugin strings with terminal controls —
and compares stdout byte for byte with a checked-in golden file.

Only what differs from run to run is masked: the session id (``"session_id":"S"``, after
checking every line has the same one), each call id (``"call_id":"C1"``, ``"C2"`` … in order
of first appearance, so a result still has to name its own call) and ``duration_ms``
(``0``). Set ``DEETING_WRITE_GOLDEN=1`` to write the file anew after a deliberate change.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from support import DEETING, OFFICIAL, REPO, run_deeting

GOLDEN = REPO / "tests" / "fixtures" / "golden" / "script_json.jsonl"

SCRIPT = (
    b"hello\n"  # the offline assistant's plain reply
    b"/calc expr=2+3\n"  # a direct call: tool_call, tool_result (a key-value card), reply
    b"= 7*6\n"  # the calc plugin's trigger
    b"/nosuchtool x=1\n"  # an error line
    b"/help\n"
    b"caf\xe9 au lait\n"  # not UTF-8: an error event that keeps the input, spelled \xe9
    b"/calc expr=1/0\n"  # a call that fails: tool_result ok=false, then an error
    b"= 2+\xe2\x80\xae3\x1b[31m\n"  # bidi and ESC in a plugin's strings: escaped in the JSON
    b"/calc expr=\xc2\x9b1\n"  # a C1 control (CSI)
)

_SESSION = re.compile(rb'"session_id":"([^"]*)"')
_CALL = re.compile(rb'"call_id":"([^"]*)"')
_DURATION = re.compile(rb'"duration_ms":[0-9.eE+-]+')


def masked(output: bytes) -> bytes:
    """``output`` with the session id, call ids and durations replaced (see the module doc)."""
    sessions = set(_SESSION.findall(output))
    assert len(sessions) == 1, sessions
    calls: dict[bytes, bytes] = {}

    def call(match: re.Match[bytes]) -> bytes:
        name = calls.setdefault(match[1], b"C%d" % (len(calls) + 1))
        return b'"call_id":"' + name + b'"'

    output = _SESSION.sub(b'"session_id":"S"', output)
    output = _CALL.sub(call, output)
    return _DURATION.sub(b'"duration_ms":0', output)


def test_script_json_output_is_byte_identical_to_the_golden_file(home: Path) -> None:
    installed = run_deeting("plugin", "install", str(OFFICIAL / "calc"), "--yes", home=home)
    assert installed.returncode == 0, installed.stderr
    env = {**os.environ, "DEETING_HOME": str(home)}
    env.pop("DEETING_DEBUG", None)
    run = subprocess.run(
        [*DEETING, "--script", "-", "--json", "--provider", "offline"],
        input=SCRIPT,
        capture_output=True,
        env=env,
        timeout=120,
        cwd=REPO,
    )
    assert run.returncode == 1, run.stderr  # some lines fail, on purpose
    assert b"Traceback" not in run.stderr
    got = masked(run.stdout)
    if os.environ.get("DEETING_WRITE_GOLDEN") == "1":
        GOLDEN.write_bytes(got)
    assert got == GOLDEN.read_bytes()
