"""The Supervisor's state and the methods its parts call on each other, declared once.

A Supervisor (supervisor.py) is its own start-up and handshake, plus two mixins: the calls
to its worker (calls.py) and how the worker ends (endings.py). Each part reads the state the
supervisor sets in ``__init__`` and calls a few methods of another part; it sees them through
:class:`SupervisorState`, so no part imports another or repeats the others' stubs.

It is a plain base class rather than a ``typing.Protocol``: the parts inherit it, and mypy
cannot type an attribute a protocol's explicit subclass reads before it assigns it in the same
method (``has-type``). It adds nothing at run time: the state is annotations only, and the
methods are declared for the type checker alone (under ``TYPE_CHECKING``), so the MRO finds
each part's own definition.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from deeting_tui.rpc.peer import Peer

from ..netproxy.proxy import HostProxy
from .denials import DenialReporter
from .launcher import Launcher
from .policy import (
    CrashLoopGuard,
    ProgressListener,
    SupervisionPolicy,
    SupervisorHooks,
    WorkerConfig,
)
from .worker_process import WorkerProcess

if TYPE_CHECKING:
    from ..quota.watchdog import Confinement

__all__ = ["SupervisorState"]


class SupervisorState:
    """What every part of a Supervisor may use of the whole (supervisor.py sets the state in
    ``__init__``; the comment on each method says which part defines it)."""

    config: WorkerConfig
    confinement: Confinement | None
    name: str
    launcher: Launcher
    hooks: SupervisorHooks
    policy: SupervisionPolicy
    guard: CrashLoopGuard
    state: str
    pid: int | None
    hooks_defined: list[str]
    sandbox: dict[str, Any] | None
    disabled_reason: str | None
    denials: DenialReporter
    _proxy: HostProxy | None
    _process: WorkerProcess | None
    _peer: Peer | None
    _generation: int
    _ready: asyncio.Event
    _end_reason: asyncio.Future[str] | None
    _progress: dict[int, float]
    _progress_listeners: dict[int, ProgressListener]
    _timers: dict[int, asyncio.TimerHandle]
    _restart_task: asyncio.Task[None] | None
    _winding_down: set[int]
    _idle: asyncio.Event | None
    _stopped_for_cancel: int | None

    if TYPE_CHECKING:

        async def _spawn(self) -> None:
            """Start a new worker generation and hand-shake with it (supervisor.py)."""

        async def _reason_for(self, generation: int, exc: BaseException) -> str:
            """Why a call on ``generation`` failed with ``exc``, as the caller is told
            (supervisor.py)."""
            ...

        async def run_hook(self, hook: str, params: Any = None) -> Any:
            """Run a lifecycle hook under its hard deadline (calls.py)."""

        def log_line(self, line: str) -> None:
            """One line in the plugin's log (calls.py)."""

        def _abandon(self, generation: int, reason: str) -> None:
            """Give up on ``generation``'s worker for ``reason`` (endings.py)."""
