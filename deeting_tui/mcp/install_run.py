"""What the MCP installers share: their error, their result, and running a package manager.

A package manager is a stranger's program fed a stranger's package, so it runs the one way
here: no stdin (it can never stop to ask, and never reads what the user types next), its
output streamed line by line to the caller (neutralised first: a package's metadata reaches
the terminal through it), in a process group of its own that a timeout or a Ctrl-C kills
whole (npm starts children), and inside a folder that is removed again when anything fails,
so a failed ``mcp add`` leaves no half-installed server behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deeting_tui.errors import DeetingError
from deeting_tui.terminal_text import neutralise_line

__all__ = [
    "INSTALL_TIMEOUT",
    "InstallError",
    "InstalledServer",
    "Ran",
    "quiet",
    "run_tool",
    "server_folder",
    "stop_installs",
    "tool_env",
]

#: How long one package-manager run may take before it is killed (a stuck index, a huge tree).
INSTALL_TIMEOUT = 600.0
#: How many of the last output lines are kept to explain a failure.
_TAIL_LINES = 200
#: One output line is cut here: a package can make its manager print anything.
_LINE_BYTES = 16 * 1024

#: The package managers running now, for :func:`stop_installs`.
_RUNNING: set[subprocess.Popen[bytes]] = set()
_RUNNING_LOCK = threading.Lock()
_STOPPED: set[int] = set()


class InstallError(DeetingError):
    """An install that did not happen, as one line: what failed, why, what to do.

    ``unreachable`` says the registry could not be reached at all (the tests skip on it,
    the CLI says to check the network); anything else is about the package or the machine."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True)
class InstalledServer:
    """A stock server installed in a plugin's folder, as the plugin's kimai.json records it.

    ``entry`` is relative to the plugin root (the staged folder is renamed into place after
    the install): for ``python`` a script run as ``server/venv/bin/python ENTRY``, for
    ``node`` a JavaScript file run as ``node ENTRY`` (neither relies on a shebang, which holds
    the staged path and, for npm, ``/usr/bin/env``). ``package`` is the exact pin
    (``mcp-server-time==2026.10.19``, ``@modelcontextprotocol/server-filesystem@2026.8.31``)."""

    runtime: str
    entry: str
    package: str
    version: str
    description: str


def quiet(line: str) -> None:
    """The default ``on_line``: the output is dropped (the tail still explains a failure)."""


@dataclass(frozen=True)
class Ran:
    """A finished package-manager run: its exit status and its last lines (neutralised)."""

    returncode: int
    tail: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.tail)


def tool_env(extra: Mapping[str, str] | None, drop: Sequence[str] = ()) -> dict[str, str]:
    """The package manager's environment: ours (the user's proxy, CA, registry and pip/npm
    configuration must keep working), less ``drop``, plus ``extra`` (tests point the
    caches and indexes at their own folders with it)."""
    env = {key: value for key, value in os.environ.items() if key not in drop}
    env.update(extra or {})
    return env


def run_tool(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    on_line: Callable[[str], None],
    what: str,
    timeout: float = INSTALL_TIMEOUT,
) -> Ran:
    """Run ``argv`` to its end with no stdin, each output line (stdout and stderr together)
    given to ``on_line``; killed with its whole process group after ``timeout`` seconds
    (an :class:`InstallError` naming ``what``) or when the caller is interrupted."""
    try:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise InstallError(f"could not start {what} ({argv[0]}): {exc.strerror or exc}") from exc
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        _kill_group(process)

    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    with _RUNNING_LOCK:
        _RUNNING.add(process)
    try:
        assert process.stdout is not None
        while raw := process.stdout.readline(_LINE_BYTES):
            line = neutralise_line(raw.decode("utf-8", "replace").rstrip("\r\n")).rstrip()
            if line:
                tail.append(line)
                on_line(line)
        returncode = process.wait()
    except BaseException:
        _kill_group(process)
        process.wait()
        raise
    finally:
        timer.cancel()
        with _RUNNING_LOCK:
            _RUNNING.discard(process)
            stopped = process.pid in _STOPPED
            _STOPPED.discard(process.pid)
        if process.stdout is not None:
            process.stdout.close()
    _kill_group(process)  # anything it left running in its group (it is reaped: pid not reused)
    if stopped:
        raise InstallError(f"{what} was stopped before it finished: nothing was installed")
    if timed_out.is_set():
        minutes = f"{timeout / 60:g} minutes" if timeout >= 60 else f"{timeout:g} seconds"
        raise InstallError(
            f"{what} did not finish in {minutes} and was stopped: the package index may be "
            "slow or unreachable — check the network and try again"
        )
    return Ran(returncode, tuple(tail))


def stop_installs() -> None:
    """Kill every package manager running now (with its process group); each run ends in an
    :class:`InstallError` ("... was stopped") that removes its half-made folder.

    Why: the installers block, so ``mcp add`` runs them in a thread, and a cancelled asyncio
    task cannot stop a thread; without this a Ctrl-C would wait for pip or npm to finish
    (up to :data:`INSTALL_TIMEOUT`). Call it when the task awaiting the thread is cancelled,
    then let the thread end."""
    with _RUNNING_LOCK:
        running = list(_RUNNING)
        _STOPPED.update(process.pid for process in running)
    for process in running:
        _kill_group(process)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def server_folder(plugin_root: Path, *parts: str) -> Iterator[Path]:
    """``plugin_root/server`` (or a folder below it, ``parts``), made here and removed again
    with everything in it if the body raises, so a failed install leaves nothing behind.

    The folder must not exist yet: an install never mixes with an older one's files."""
    created_root = not plugin_root.exists()
    plugin_root.mkdir(parents=True, exist_ok=True)
    folder = plugin_root.joinpath("server", *parts)
    if folder.exists() or folder.is_symlink():
        raise InstallError(
            f"{folder} already exists: an MCP server is installed into a fresh folder "
            "(remove it, or add the server under another name)"
        )
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    top = made[-1] if made else folder
    folder.mkdir(parents=True)
    try:
        yield folder
    except BaseException:
        shutil.rmtree(top, ignore_errors=True)
        if created_root:
            with contextlib.suppress(OSError):
                plugin_root.rmdir()
        raise
