"""The plugin pipeline's tools print what a submitted plugin says (its results and errors,
its file names, its problems) to a maintainer's terminal or a CI log: through the
neutraliser, one line each. A copy of the hostile termjack plugin, with examples and a
source file whose name is an escape sequence, goes through lint, scan and smoke, each run as
its command (gen_registry: tests/registry_tools/test_gen_registry_terminal.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO
from terminal_support import TERMJACK, VISIBLE, assert_terminal_safe

EVIL_NAME = "evil\x1b]0;PWNED\x07.py"
EXAMPLES = """\
- tool: misbehave
  arguments: {what: reply}
  expect: {summary_contains: title}
- tool: misbehave
  arguments: {what: fail}
  expect: {error: true, summary_contains: title}
"""


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    root = tmp_path / "sources" / "termjack"
    shutil.copytree(TERMJACK, root)
    (root / "examples.yaml").write_text(EXAMPLES)
    (root / "src" / EVIL_NAME).write_text('import subprocess\nsubprocess.run(["ls"])\n')
    return root


def _tool(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ}
    env.pop("DEETING_DEBUG", None)
    return subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def test_lint_scan_and_smoke_print_a_hostile_plugin_safely(hostile: Path) -> None:
    lint = _tool("ci/lint.py", hostile)
    assert_terminal_safe(lint.stdout + lint.stderr, "lint")
    scan = _tool("ci/scan.py", hostile)
    found = assert_terminal_safe(scan.stdout + scan.stderr, "scan")
    assert "src/evil.py:1:1: error DS201 shell-without-scope" in found  # its name, neutralised
    smoke = _tool("ci/smoke.py", hostile)
    said = assert_terminal_safe(smoke.stdout, "smoke")
    warned = assert_terminal_safe(smoke.stderr, "smoke's kernel warnings")
    assert said.count("misbehave") == 2 and said.count(VISIBLE) == 2, said
    assert f"deactivate failed: deactivate: {VISIBLE}" in warned
