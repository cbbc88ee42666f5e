"""Homes with many installed plugins, for the scale bench: generated copies of calc
(``plugin_copies.py``), installed with the real ``deeting plugin install SOURCE... --yes``
(one process for the whole list): the home is exactly what a user who installed them gets,
state files included.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .plugin_copies import OFFICIAL
from .throughput import deeting_executable
from .ui_launch import installed_count, terminal_env

__all__ = ["FRESH_INSTALL", "build_home"]

#: What the smallest home holds: the plugins a fresh install gets.
FRESH_INSTALL = ("calc", "clock", "notes")


def build_home(home: Path, copies: list[Path]) -> None:
    """A home with the fresh-install plugins and ``copies``, installed by the real CLI."""
    sources = [str(OFFICIAL / name) for name in FRESH_INSTALL] + [str(c) for c in copies]
    done = subprocess.run(
        [deeting_executable(), "plugin", "install", *sources, "--yes"],
        env=terminal_env(home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60 + 5 * len(sources),
    )
    if done.returncode != 0:
        raise RuntimeError(f"installing {len(sources)} plugins: {done.stderr.strip()[-600:]}")
    count = installed_count(home)
    if count != len(sources):
        raise RuntimeError(f"installed {len(sources)} plugins, but plugin list shows {count}")
