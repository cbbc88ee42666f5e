"""gen_registry prints a refusal that names a submitted plugin's file: neutralised (the
file's name is an escape sequence here), on one line."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from terminal_support import TERMJACK, assert_terminal_safe

EVIL_NAME = "evil\x1b]0;PWNED\x07.py"


def test_gen_registry_prints_a_refusal_safely(
    tmp_path: Path, keyring: Any, now: datetime, run_tool: Any
) -> None:
    keyring.root(["alice"], 1, now=now)
    hostile = tmp_path / "hostile" / "termjack"
    shutil.copytree(TERMJACK, hostile)
    (hostile / f"link{EVIL_NAME}").symlink_to("README.md")
    done = run_tool(
        "gen_registry", hostile.parent, "--out", tmp_path / "out",
        "--root", keyring.folder / "root.json", "--key", keyring["alice"].secret,
    )  # fmt: skip
    said = assert_terminal_safe(done.stdout + done.stderr, "gen_registry")
    assert done.returncode == 1 and "linkevil.py: a symlink cannot go into" in said
