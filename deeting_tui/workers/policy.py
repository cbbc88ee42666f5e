"""What supervises a worker: its plugin's config, the deadlines and crash rules, and the
kernel's hooks for what the supervisor reports."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from deeting_tui.errors import Hint
from deeting_tui.rpc import protocol
from deeting_tui.rpc.protocol import ProgressParams, ProtocolError
from deeting_tui.terminal_text import one_line

#: Deadlines of the lifecycle hooks, in seconds. They are hard: progress reports do not
#: extend them (they extend tool calls only), so a plugin cannot hold the kernel's start-up,
#: an upgrade, ``plugin uninstall`` or quitting. postinstall may prepare data once, hence
#: its longer allowance; the others should take a moment.
HOOK_DEADLINES: dict[str, float] = {
    protocol.ACTIVATE: 10.0,
    protocol.DEACTIVATE: 5.0,
    protocol.POSTINSTALL: 60.0,
    protocol.PREUNINSTALL: 10.0,
    protocol.PREUPGRADE: 10.0,
    protocol.POSTUPGRADE: 10.0,
}


@dataclass
class WorkerConfig:
    """What a worker needs to know about its plugin; sent in the ``initialize`` request."""

    name: str
    version: str
    root: Path
    data_dir: Path
    cache_dir: Path
    tmp_dir: Path
    log_path: Path
    scopes: list[str] = field(default_factory=list)
    call_timeout: float = 30.0
    memory_mb: int = 1024
    #: Only benchmarks turn this off, to measure what the OS sandbox costs.
    sandbox: bool = True
    # The rest of kimai.json's limits (see plugin.manifest.Limits for what each means).
    tasks: int = 128
    disk_mb: int = 512
    cpu_percent: int = 100
    idle_cpu_percent: int = 25
    #: For a plugin that is a stock MCP server: how its worker starts the server
    #: (deeting_tui/mcp/launch.py), sent in ``initialize`` as ``mcp``. Asked at each start,
    #: so a runtime installed or removed since, or new ``--env`` values, count; it raises
    #: WorkerStartError saying what is missing.
    mcp: Callable[[], dict[str, Any]] | None = None

    def limits(self) -> dict[str, Any]:
        """The ``initialize`` request's limits: the worker sets its rlimits from these."""
        return {
            "memory_mb": self.memory_mb,
            "tasks": self.tasks,
            "disk_mb": self.disk_mb,
            "open_files": 256,
        }


@dataclass
class SupervisionPolicy:
    """Timing knobs; tests shrink them, the product keeps the defaults."""

    start_timeout: float = 10.0
    kill_grace: float = 1.0  # how long a cancelled call may take to stop before a kill
    #: For the worker's ``shutdown`` request, then again for its exit, before a kill.
    stop_grace: float = 1.0
    backoff_base: float = 0.2
    backoff_max: float = 10.0
    crash_limit: int = 3
    crash_window: float = 300.0
    hook_deadlines: dict[str, float] = field(default_factory=lambda: dict(HOOK_DEADLINES))

    def hook_deadline(self, hook: str) -> float:
        return self.hook_deadlines.get(hook, HOOK_DEADLINES.get(hook, 10.0))

    @property
    def stop_deadline(self) -> float:
        """The longest :meth:`Supervisor.stop` takes: shutdown request, exit, kill."""
        return 2 * self.stop_grace

    @property
    def shutdown_deadline(self) -> float:
        """How long stopping enabled plugins may take, all of them at once: the deactivate
        hook, then the stop."""
        return self.hook_deadline(protocol.DEACTIVATE) + self.stop_deadline


class CrashLoopGuard:
    """Remembers recent crashes; trips when ``limit`` fall within ``window`` seconds."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._crashes: deque[float] = deque()

    def record(self) -> int:
        """Record a crash; return how many fall inside the window, this one included."""
        now = self._clock()
        self._crashes.append(now)
        while self._crashes and self._crashes[0] <= now - self.window:
            self._crashes.popleft()
        return len(self._crashes)

    @property
    def tripped(self) -> bool:
        return len(self._crashes) >= self.limit

    def reset(self) -> None:
        self._crashes.clear()


#: Hears one call's progress: fraction done (None when unknown) and a short message.
ProgressListener = Callable[[float | None, str], None]

#: Longest progress message passed on; a plugin's word, shown on one line.
MAX_PROGRESS_MESSAGE = 200


def _progress_report(params: Any) -> tuple[float | None, str] | None:
    """A worker's progress params as (fraction, message), or None when malformed.

    The SDK checks these in the plugin, but the pipe is the trust boundary: a bad report is
    dropped (it still extended the deadline, as any sign of life does).
    """
    try:
        report = ProgressParams.from_json(params)
    except ProtocolError:
        return None
    return report.fraction, one_line(report.message)[:MAX_PROGRESS_MESSAGE]


class WorkerStartError(Exception):
    """The worker could not be started or did not complete the handshake."""


class Restarted(Protocol):
    """What ``on_restarted`` is handed: the supervisor whose worker just came back."""

    hooks_defined: list[str]

    async def run_hook(self, hook: str, params: Any = None) -> Any: ...


@dataclass
class SupervisorHooks:
    """How a supervisor reports to the kernel; every hook is optional."""

    on_stream: Callable[[str, dict[str, Any]], None] | None = None
    on_notice: Callable[[str, str], None] | None = None  # crash / restart messages
    on_disabled: Callable[[str, str], None] | None = None
    on_restarted: Callable[[Restarted], Awaitable[None]] | None = None
    #: Something the plugin tried was refused (its grants, a limit): one line for the user.
    #: The hint, when there is one, is the fix (a grant) as data, for the front end to phrase.
    on_denial: Callable[[str, str, Hint | None], None] | None = None
