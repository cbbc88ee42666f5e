"""A fresh home's first run: when it is one, and the marker that makes it happen once.

A home is fresh when the bundle's marker is absent and nothing of a used home exists: no
installed plugins (``plugins/state.json``), no grants, no stored conversation and no synced
registry.
That is decided before the kernel is built (the kernel makes the sessions database), and a
fresh home gets the marker ``pending`` at once, so a second deeting starting a moment later
takes part in the same first run (waiting for the first one under the updater lock) instead
of judging the home used. A home that upgrades deeting is never fresh: it gets no plugins
pushed into it, and sees the bundled ones as available.

The marker becomes ``done`` when the first run has installed what it installs; from then on
an uninstalled calc stays uninstalled. A first run that failed (a damaged bundle) stays
``pending`` and is tried again at the next start.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

from deeting_tui.atomic import write_bytes_atomic
from deeting_tui.paths import Paths

__all__ = [
    "BUNDLE_ENV",
    "MARKER",
    "bundle_folder",
    "first_run_pending",
    "mark_done",
    "marker_pending",
]

BUNDLE_ENV = "DEETING_BUNDLE"
PACKAGED = Path(__file__).resolve().parents[1] / "bundled"

MARKER = ".first-run"
PENDING, DONE = b"pending\n", b"done\n"


def bundle_folder(env: Mapping[str, str] | None = None) -> Path | None:
    """The bundle to use: ``DEETING_BUNDLE`` (empty: none), else the package's own when it
    was built (a checkout before ``./dev.sh`` has none). Here, not in bundle.py, so that a
    start that only asks pays for no signature library."""
    env = os.environ if env is None else env
    if BUNDLE_ENV in env:
        chosen = env[BUNDLE_ENV]
        return Path(chosen).expanduser() if chosen else None
    return PACKAGED if (PACKAGED / "registry.json").is_file() else None


def _marker(paths: Paths) -> bytes | None:
    try:
        return (paths.plugins_dir / MARKER).read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return DONE  # unreadable: never push plugins into a home we cannot judge


def marker_pending(paths: Paths) -> bool:
    return _marker(paths) == PENDING


def first_run_pending(paths: Paths) -> bool:
    """Whether this start takes part in a first run (and marks a fresh home ``pending``)."""
    marker = _marker(paths)
    if marker is not None:
        return marker == PENDING
    used = (paths.plugin_state_file, paths.grants_file, paths.data_dir / "registry")
    if any(path.exists() for path in used) or _has_sessions(paths.sessions_db):
        return False
    with contextlib.suppress(OSError):  # a read-only home: no first run, deeting still starts
        write_bytes_atomic(paths.plugins_dir / MARKER, PENDING)
        return True
    return False


def _has_sessions(database: Path) -> bool:
    """Whether the sessions database holds a conversation. An empty one is no sign of use:
    ``deeting view`` or ``--session ID`` as the very first command creates it. Anything
    unreadable counts as used (never push plugins into a home we cannot judge)."""
    if not database.exists():
        return False
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as db:
            return db.execute("SELECT 1 FROM sessions LIMIT 1").fetchone() is not None
    except sqlite3.Error:
        return True


def mark_done(paths: Paths) -> None:
    write_bytes_atomic(paths.plugins_dir / MARKER, DONE)
