"""The parent side of one plugin worker: start, handshake, calls with deadlines, restarts.

Whatever a plugin does — raise, exit, hang, scribble on the pipe, eat memory — costs that
plugin and never the kernel: the call in flight gets one clear error, the worker is killed
and restarted with backoff, and a crash loop disables the plugin with a message saying how
to re-enable it. Deadlines are timers on the event loop, not wrapper tasks, because the
invoke round trip is the kernel's hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deeting_tui.errors import Fix, Hint
from deeting_tui.plugin.scopes import ScopeError, network_hosts, parse_scope
from deeting_tui.rpc import protocol
from deeting_tui.rpc.errors import (
    CONNECTION_CLOSED,
    RpcError,
)
from deeting_tui.rpc.peer import Peer
from deeting_tui.rpc.protocol import (
    DeniedParams,
    InitializeResult,
    ProtocolError,
    StreamParams,
)

from ..netproxy.proxy import HostProxy
from .calls import SupervisedCalls
from .denials import DenialReporter
from .endings import WorkerEndings
from .launcher import Launcher
from .policy import (
    HOOK_DEADLINES,
    MAX_PROGRESS_MESSAGE,
    CrashLoopGuard,
    ProgressListener,
    SupervisionPolicy,
    SupervisorHooks,
    WorkerConfig,
    WorkerStartError,
    _progress_report,
)
from .worker_process import WorkerProcess, worker_environment

if TYPE_CHECKING:
    from ..quota.watchdog import Confinement

#: What other modules import from here (policy.py holds most of it since the split).
__all__ = [
    "HOOK_DEADLINES",
    "MAX_PROGRESS_MESSAGE",
    "CrashLoopGuard",
    "ProgressListener",
    "SupervisionPolicy",
    "Supervisor",
    "SupervisorHooks",
    "WorkerConfig",
    "WorkerStartError",
    "_progress_report",
]

log = logging.getLogger("deeting.supervisor")

LOG_ROTATE_BYTES = 5 * 1024 * 1024
#: Longest scope a refusal report may name for a grant to be offered (a path in it).
MAX_SCOPE = 512


class Supervisor(SupervisedCalls, WorkerEndings):
    """Owns one plugin's worker process for as long as the plugin is enabled."""

    def __init__(
        self,
        config: WorkerConfig,
        launcher: Launcher,
        hooks: SupervisorHooks | None = None,
        policy: SupervisionPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        confinement: Confinement | None = None,
    ) -> None:
        self.config = config
        #: Cgroup and watchdog for each worker (quota/watchdog.py); None: rlimits only.
        self.confinement = confinement
        self.name = config.name
        self.launcher = launcher
        self.hooks = hooks or SupervisorHooks()
        self.policy = policy or SupervisionPolicy()
        self.guard = CrashLoopGuard(self.policy.crash_limit, self.policy.crash_window, clock)
        # stopped | starting | ready | cancelling | ending | restarting | disabled | stopping
        self.state = "stopped"
        self.pid: int | None = None
        self.hooks_defined: list[str] = []
        self.last_ready_seconds: float | None = None
        #: What the worker reported applying: level, landlock ABI, seccomp, network, exec.
        self.sandbox: dict[str, Any] | None = None
        self.disabled_reason: str | None = None
        # A plugin granted only some hosts reaches them through this; it outlives restarts.
        self._proxy: HostProxy | None = None
        self.denials = DenialReporter(config.name, config.log_path, self._tell_denial)
        self._process: WorkerProcess | None = None
        self._peer: Peer | None = None
        self._generation = 0
        self._ready = asyncio.Event()
        self._end_reason: asyncio.Future[str] | None = None
        self._progress: dict[int, float] = {}
        self._progress_listeners: dict[int, ProgressListener] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._restart_task: asyncio.Task[None] | None = None
        self._winding_down: set[int] = set()  # cancelled calls the worker has yet to end
        self._idle: asyncio.Event | None = None  # set when the last call in flight ends
        #: The generation killed because a call its caller cancelled did not stop.
        self._stopped_for_cancel: int | None = None

    # -- starting ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Spawn and handshake; raises WorkerStartError with the reason on failure."""
        if self.state in ("ready", "starting"):
            return
        self.disabled_reason = None
        await self._spawn()

    async def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        self.state = "starting"
        self._generation += 1
        generation = self._generation
        began = time.perf_counter()
        _rotate_log(self.config.log_path)
        c = self.config
        # Its folders exist before the worker does: the sandbox's rules name them, and the
        # disk accounting (quota/diskwatch.py) watches them from the worker's first moment.
        for folder in (c.data_dir, c.cache_dir, c.tmp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(self.config.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            env = worker_environment()
            if c.mcp is not None:
                env["DEETING_WORKER_KIND"] = "mcp"  # the forkserver warms the MCP SDK for it
            process = await self.launcher.spawn(log_fd, env)
        except OSError as exc:
            self.state = "stopped"
            raise WorkerStartError(f"could not start a worker for '{self.name}': {exc}") from None
        finally:
            os.close(log_fd)
        self._process = process
        self.pid = process.pid
        self._end_reason = loop.create_future()
        peer = Peer(
            process.read_fd,
            process.write_fd,
            notification_handler=self._on_notification,
            on_close=lambda: self._on_eof(generation),
            on_protocol_error=lambda why: self._on_garbage(generation, why),
        )
        self._peer = peer
        self._winding_down.clear()
        peer.on_response = self._on_response
        peer.start()
        self._confine(process, generation)  # before initialize: before any plugin code
        process.exited.add_done_callback(lambda f: self._on_exit(generation, f))
        try:
            reply = await self._handshake(peer)
        except BaseException as exc:
            self._abandon(generation, "did not start")
            reason = await self._reason_for(generation, exc)
            self.state = "stopped"
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise WorkerStartError(f"plugin '{self.name}' failed to start: {reason}") from None
        self.hooks_defined = list(reply.hooks)
        self.sandbox = reply.sandbox
        try:
            await self._adopt_listener(process, generation)
        except OSError as exc:
            self._abandon(generation, "did not start")
            self.state = "stopped"
            raise WorkerStartError(
                f"plugin '{self.name}' failed to start: its network proxy could not be "
                f"attached ({exc})"
            ) from None
        self.last_ready_seconds = time.perf_counter() - began
        self.state = "ready"
        self._ready.set()

    async def _proxy_port(self) -> int | None:
        hosts = network_hosts(self.config.scopes)
        if not hosts:
            return None  # any host (no proxy needed) or none at all
        if self._proxy is None:
            self._proxy = HostProxy(self.name, hosts, on_denied=self._on_proxy_denied)
            await self._proxy.start()
        return self._proxy.port

    async def _adopt_listener(self, process: WorkerProcess, generation: int) -> None:
        """Serve the proxy listener the worker made in its private network namespace (its
        only way out): take a copy of the socket from the worker and hand it to the proxy."""
        namespaces = (self.sandbox or {}).get("namespaces")
        fd = namespaces.get("listener_fd") if isinstance(namespaces, dict) else None
        if not isinstance(fd, int) or isinstance(fd, bool) or self._proxy is None:
            return
        listener = socket.socket(fileno=process.take_fd(fd))
        server = await self._proxy.adopt(listener)
        proxy = self._proxy

        def release(_exited: asyncio.Future[int]) -> None:
            proxy.release(server)

        process.exited.add_done_callback(release)

    def _on_proxy_denied(self, target: str, reason: str) -> None:
        # info, not warning: the plugin's log, a notice and the call's error all say it.
        log.info("plugin %s: proxy refused %s: %s", self.name, target, reason)
        self.denials.network_refused(reason)

    def _tell_denial(self, message: str, hint: Hint | None) -> None:
        if self.hooks.on_denial is not None:
            self.hooks.on_denial(self.name, message, hint)

    async def _handshake(self, peer: Peer) -> InitializeResult:
        c = self.config
        params = {
            "name": c.name,
            "version": c.version,
            "root": str(c.root),
            "data_dir": str(c.data_dir),
            "cache_dir": str(c.cache_dir),
            "tmp_dir": str(c.tmp_dir),
            "scopes": c.scopes,
            "limits": c.limits(),
            "kernel_pid": os.getpid(),
            "home": str(Path.home()),
            "sandbox": c.sandbox,
            "proxy_port": await self._proxy_port(),
        }
        if c.mcp is not None:
            params["mcp"] = c.mcp()
        reply = await asyncio.wait_for(
            peer.request(protocol.INITIALIZE, params), self.policy.start_timeout
        )
        return InitializeResult.from_json(reply)  # ProtocolError: the start fails, saying why

    async def _reason_for(self, generation: int, exc: BaseException) -> str:
        if isinstance(exc, RpcError) and exc.code != CONNECTION_CLOSED:
            return exc.message
        if isinstance(exc, TimeoutError):
            return f"no handshake within {self.policy.start_timeout:g} s"
        if self._end_reason is not None and generation == self._generation:
            with contextlib.suppress(TimeoutError):
                reason = await asyncio.wait_for(asyncio.shield(self._end_reason), 2.0)
                return f"the worker {reason} (see {self.config.log_path})"
        return str(exc) or type(exc).__name__

    # -- notifications from the worker ------------------------------------------------------

    def _on_notification(self, method: str, params: Any) -> None:
        """A report from the worker; one of the wrong shape is dropped, and logged."""
        try:
            if method == protocol.STREAM and self.hooks.on_stream is not None:
                self.hooks.on_stream(self.name, StreamParams.check(params))
            elif method == protocol.DENIED:
                self._on_denied(DeniedParams.from_json(params))
            elif method == protocol.PROGRESS:
                self._on_progress(params)
        except ProtocolError as exc:
            log.warning("plugin %s: dropped %s: %s", self.name, method, exc.message)

    def _on_denied(self, denied: DeniedParams) -> None:
        # The worker's word: it may not pass for a message about another plugin.
        message = denied.message
        if not message.startswith(f"plugin '{self.name}' "):
            message = f"plugin '{self.name}' reports a refusal: {message}"
        hint = self._grant_hint(denied.scope)
        self.denials.refused(message, log=False, hint=hint)  # the worker's guard logged it

    def _grant_hint(self, scope: str | None) -> Hint | None:
        """The grant that would allow what the worker says was refused, or None. The scope
        is the worker's word: offered only when it parses as a scope and is not granted
        already; the plugin it names is this supervisor's own, never the worker's."""
        if scope is None or len(scope) > MAX_SCOPE or not scope.isprintable():
            return None  # no scope is that long, or holds a control character
        try:
            parsed = parse_scope(scope)
        except ScopeError:
            return None
        if str(parsed) in self.config.scopes:
            return None  # granted: a grant would not fix it, so a hint would mislead
        return Hint(Fix.GRANT, self.name, str(parsed))

    def _on_progress(self, params: Any) -> None:
        call = params.get("call") if isinstance(params, dict) else None
        if isinstance(call, bool) or not isinstance(call, int) or call not in self._timers:
            return  # not a call of ours that is still running
        # Any report is a sign of life, and extends the deadline, even one that is dropped.
        self._progress[call] = asyncio.get_running_loop().time()
        listener = self._progress_listeners.get(call)
        report = _progress_report(params)
        if listener is not None and report is not None:
            listener(*report)


def _rotate_log(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
