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

from deeting_tui.plugin.scopes import network_hosts
from deeting_tui.rpc import protocol
from deeting_tui.rpc.errors import (
    CALL_TIMEOUT,
    CONNECTION_CLOSED,
    NOT_READY,
    WORKER_CRASHED,
    RpcError,
)
from deeting_tui.rpc.peer import Peer
from deeting_tui.rpc.protocol import (
    CancelParams,
    DeniedParams,
    EventParams,
    InitializeResult,
    InvokeParams,
    InvokeResult,
    ProtocolError,
    StreamParams,
)

from ..netproxy.proxy import HostProxy
from .denials import DenialReporter
from .launcher import Launcher, describe_exit
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


class Supervisor:
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
            process = await self.launcher.spawn(log_fd, worker_environment())
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

    def _tell_denial(self, message: str) -> None:
        if self.hooks.on_denial is not None:
            self.hooks.on_denial(self.name, message)

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

    # -- calls -------------------------------------------------------------------------------

    async def invoke(
        self, tool: str, args: dict[str, Any], progress: ProgressListener | None = None
    ) -> dict[str, Any]:
        """:meth:`call`, its result as the JSON object the worker sent."""
        return (await self.call(tool, args, progress)).to_json()

    async def call(
        self, tool: str, args: dict[str, Any], progress: ProgressListener | None = None
    ) -> InvokeResult:
        """Call a tool; RpcError if it fails, or if the worker's answer is not an invoke
        result (a plugin writing to its pipe past the SDK): that call fails, saying so."""
        started = self.denials.now()
        try:
            raw = await self.request(
                protocol.INVOKE, InvokeParams(tool, args).to_json(), progress=progress
            )
        except RpcError as exc:
            # An HTTP client often says only "HTTP Error 403: Forbidden": the proxy's reason
            # (which host, what was granted, what would allow it) goes with the call's error.
            refusal = self.denials.network_refusal_since(started)
            if refusal is None or _ascii_dashes(refusal) in _ascii_dashes(exc.message):
                raise  # it says so already (the status line's words, say)
            raise RpcError(exc.code, f"{exc.message} — {refusal}", exc.data) from None
        try:
            return InvokeResult.from_json(raw)
        except ProtocolError as exc:
            log.warning("plugin %s: malformed answer to invoke: %s", self.name, exc.message)
            raise RpcError(
                exc.code, f"plugin '{self.name}' answered the call wrongly: {exc.message}"
            ) from None

    async def request(
        self,
        method: str,
        params: Any = None,
        timeout: float | None = None,
        progress: ProgressListener | None = None,
        *,
        hard: bool = False,
    ) -> Any:
        """One call with a deadline; progress notifications extend it unless ``hard``.

        ``progress`` hears this call's well-formed progress reports, and only this call's:
        the worker names the request it is serving, so reports of concurrent calls never
        cross.
        """
        timeout = self.config.call_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        if self.state != "ready":
            await self._wait_ready(timeout)
        peer, generation = self._peer, self._generation
        assert peer is not None
        request_id, future = peer.request_future(method, params)
        if progress is not None:
            self._progress_listeners[request_id] = progress
        self._timers[request_id] = loop.call_at(
            loop.time() + timeout,
            self._deadline,
            generation,
            request_id,
            future,
            timeout,
            method,
            hard,
        )
        try:
            return await future
        except asyncio.CancelledError:
            if peer.is_pending(request_id):
                self._cancel_in_worker(generation, request_id, by_caller=True)
            raise
        except RpcError as exc:
            if exc.code == CONNECTION_CLOSED:
                reason = await self._reason_for(generation, exc)
                raise RpcError(
                    WORKER_CRASHED,
                    f"plugin '{self.name}' crashed during {method}: {reason}",
                ) from None
            raise
        finally:
            timer = self._timers.pop(request_id, None)
            if timer is not None:
                timer.cancel()
            self._progress.pop(request_id, None)
            self._progress_listeners.pop(request_id, None)
            if not self._timers and self._idle is not None:
                self._idle.set()

    async def run_hook(self, hook: str, params: Any = None) -> Any:
        """A lifecycle hook under its hard deadline (:data:`HOOK_DEADLINES`). A hook that
        misses it is cancelled (killed if it ignores that), and one line saying so goes to
        the plugin's log and, as the error's message, to the user."""
        deadline = self.policy.hook_deadline(hook)
        try:
            return await self.request(hook, params, timeout=deadline, hard=True)
        except RpcError as exc:
            if exc.code != CALL_TIMEOUT:
                raise
            line = (
                f"plugin '{self.name}': its {hook} hook did not finish within {deadline:g} s "
                "(a hard deadline: progress does not extend it), so it was stopped"
            )
            log.warning("%s", line)
            self.log_line(line)
            raise RpcError(CALL_TIMEOUT, line) from None

    def log_line(self, line: str) -> None:
        """Append the kernel's word about this plugin to the plugin's own log."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            with open(self.config.log_path, "a", encoding="utf-8") as log_file:
                log_file.write(f"{stamp} deeting: {line}\n")
        except OSError as exc:
            log.warning("plugin %s: could not write to its log: %s", self.name, exc)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no call is in flight: a hot upgrade lets the old worker finish what it
        started before stopping it. False when calls are still running after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._timers:
            idle = self._idle = asyncio.Event()
            try:
                await asyncio.wait_for(idle.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                return not self._timers
        return True

    def send_event(self, topic: str, payload: dict[str, Any]) -> None:
        """A broadcast event, as a notification: nobody waits for plugins on the clock."""
        if self.state in ("ready", "cancelling") and self._peer is not None:
            self._peer.notify(protocol.EVENT, EventParams(topic, payload).to_json())

    async def _wait_ready(self, timeout: float) -> None:
        """Wait out a start, restart or cancellation; fail fast when nothing will come."""
        if self.state == "disabled":
            raise RpcError(NOT_READY, self.disabled_reason or f"plugin '{self.name}' is disabled")
        if self.state in ("stopped", "stopping"):
            raise RpcError(NOT_READY, f"plugin '{self.name}' is not running")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            raise RpcError(
                NOT_READY, f"plugin '{self.name}' did not become ready within {timeout:g} s"
            ) from None
        if self.state != "ready":
            raise RpcError(NOT_READY, self.disabled_reason or f"plugin '{self.name}' stopped")

    def _deadline(
        self,
        generation: int,
        request_id: int,
        future: asyncio.Future[Any],
        timeout: float,
        method: str,
        hard: bool = False,
    ) -> None:
        if future.done():
            return
        loop = asyncio.get_running_loop()
        last_progress = None if hard else self._progress.get(request_id)
        if last_progress is not None and last_progress + timeout > loop.time():
            self._timers[request_id] = loop.call_at(
                last_progress + timeout,
                self._deadline,
                generation,
                request_id,
                future,
                timeout,
                method,
            )
            return
        what = "the call" if method != protocol.INVOKE else "the tool call"
        future.set_exception(
            RpcError(
                CALL_TIMEOUT,
                f"plugin '{self.name}' did not answer {what} ({method}) within {timeout:g} s; "
                "it was cancelled",
            )
        )
        self._cancel_in_worker(generation, request_id)

    def _cancel_in_worker(
        self, generation: int, request_id: int, *, by_caller: bool = False
    ) -> None:
        """Ask the worker to stop a call; hold new calls until it has, or kill it.

        A plugin stuck in sync code cannot even read the cancel, so new calls wait for the
        outcome instead of queueing behind it and failing when the worker is killed.
        ``by_caller``: the caller gave up (the user pressed Esc, the script was interrupted),
        not the plugin's deadline: a worker killed for ignoring that cancel is restarted at
        once and it does not count as a crash — blocking code is no fault of the plugin's.
        """
        peer = self._peer
        if generation != self._generation or peer is None or peer.closed:
            return
        peer.notify(protocol.CANCEL, CancelParams(request_id).to_json())
        self._winding_down.add(request_id)
        if self.state == "ready":
            self.state = "cancelling"
            self._ready.clear()
        loop = asyncio.get_running_loop()
        loop.call_later(
            self.policy.kill_grace, self._kill_if_stuck, generation, request_id, by_caller
        )

    def _on_response(self, request_id: int) -> None:
        self._winding_down.discard(request_id)
        if self.state == "cancelling" and not self._winding_down:
            self.state = "ready"
            self._ready.set()

    def _kill_if_stuck(self, generation: int, request_id: int, by_caller: bool = False) -> None:
        peer = self._peer
        if generation != self._generation or peer is None or not peer.is_pending(request_id):
            return
        grace = self.policy.kill_grace
        if by_caller:
            self._stopped_for_cancel = generation
            self._abandon(generation, f"was stopped: a cancelled call went on for {grace:g} s")
            return
        self._abandon(generation, f"ignored a cancelled call for {grace:g} s")

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
        self.denials.refused(message, log=False)  # the worker's guard logged it

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

    # -- endings -----------------------------------------------------------------------------

    def _on_garbage(self, generation: int, why: str) -> None:
        log.warning("plugin %s: protocol error: %s", self.name, why)
        self._abandon(generation, f"wrote garbage on its RPC pipe ({why}) and was killed")

    def _on_eof(self, generation: int) -> None:
        if generation == self._generation and self._process is not None:
            # A worker that closed its pipe is done for, whether or not it has exited yet.
            if self.state in ("ready", "cancelling"):
                self.state = "ending"
                self._ready.clear()
            self._process.kill()

    def _abandon(self, generation: int, reason: str) -> None:
        """Kill this generation's worker, remembering why (the first reason wins)."""
        if generation != self._generation or self._process is None:
            return
        if self._end_reason is not None and not self._end_reason.done():
            self._end_reason.set_result(reason)
        if self.state in ("ready", "cancelling"):
            self.state = "ending"  # new calls wait for the restart instead of failing
            self._ready.clear()
        if self._peer is not None:
            # Nothing more from this worker is trusted, not even answers already buffered.
            self._peer.close()
        self._process.kill()

    def _on_exit(self, generation: int, exited: asyncio.Future[int]) -> None:
        if generation != self._generation:
            return
        status = exited.result()
        reason = describe_exit(status)
        if self._end_reason is not None and not self._end_reason.done():
            self._end_reason.set_result(reason)
        elif self._end_reason is not None:
            reason = self._end_reason.result()
        if self._peer is not None:
            self._peer.close()
        self._ready.clear()
        self.pid = None
        if self.state in ("stopping", "stopped", "starting", "disabled"):
            return
        if self._stopped_for_cancel == generation:
            self._restart_after_cancel()
            return
        self._crashed(reason)

    def _restart_after_cancel(self) -> None:
        """The worker was stopped because a call its caller cancelled did not end (sync code
        cannot hear a cancel): start it again now, with no backoff, no notice and no crash
        counted. Its activate hook runs again (kernel ``on_restarted``), which is how a
        plugin's state comes back."""
        line = (
            f"plugin '{self.name}': a cancelled call did not stop within "
            f"{self.policy.kill_grace:g} s, so the worker was restarted (not counted as a crash)"
        )
        log.info("%s", line)
        self.log_line(line)
        self.state = "restarting"
        self._restart_task = asyncio.get_running_loop().create_task(self._restart(0.0))

    def _crashed(self, reason: str) -> None:
        count = self.guard.record()
        notice = f"plugin '{self.name}' worker {reason}"
        if self.guard.tripped:
            minutes = self.policy.crash_window / 60
            self.disabled_reason = (
                f"plugin '{self.name}' crashed {count} times in {minutes:g} minutes and was "
                f"disabled (last: worker {reason}) — after fixing it, run: "
                f"deeting plugin enable {self.name}"
            )
            self.state = "disabled"
            self._ready.set()  # wake waiters so they see the disabled state
            self._ready = asyncio.Event()
            log.error("%s", self.disabled_reason)
            if self.hooks.on_disabled is not None:
                self.hooks.on_disabled(self.name, self.disabled_reason)
            return
        delay = min(self.policy.backoff_max, self.policy.backoff_base * 2 ** (count - 1))
        log.warning("%s; restarting in %.1f s", notice, delay)
        if self.hooks.on_notice is not None:
            self.hooks.on_notice(self.name, f"{notice}; restarting it")
        self.state = "restarting"
        self._restart_task = asyncio.get_running_loop().create_task(self._restart(delay))

    async def _restart(self, delay: float) -> None:
        await asyncio.sleep(delay)  # backoff, not synchronisation
        if self.state != "restarting":
            return
        try:
            await self._spawn()
            if self.hooks.on_restarted is not None:
                await self.hooks.on_restarted(self)
        except (WorkerStartError, RpcError) as exc:
            message = exc.message if isinstance(exc, RpcError) else str(exc)
            log.warning("plugin %s: restart failed: %s", self.name, message)
            if self.state == "ready":
                self._abandon(self._generation, f"failed after restart: {message}")
            else:
                self._crashed(message)

    # -- resource limits (quota/watchdog.py) ------------------------------------------------

    def _confine(self, process: WorkerProcess, generation: int) -> None:
        """Cgroup and watchdog for a worker that has not run plugin code yet. When the worker
        ends, its cgroup is emptied and removed first; if the OS stopped it for a limit, that
        is the reason its end is reported with."""
        if self.confinement is None:
            return
        box = self.confinement.admit(self, process.pid, generation, process.contain)

        def ended(_exited: asyncio.Future[int]) -> None:
            reason = box.end()
            pending = self._end_reason
            if reason and generation == self._generation and pending and not pending.done():
                pending.set_result(reason)

        process.exited.add_done_callback(ended)  # runs before _on_exit: added first

    @property
    def activity(self) -> tuple[int, int]:
        """(requests sent to this worker so far, requests it has yet to answer): how the
        watchdog tells work done for a caller from work a plugin does on its own."""
        peer = self._peer
        return (peer.requests_sent, peer.pending_count) if peer is not None else (0, 0)

    def stop_for_limit(self, generation: int, reason: str) -> None:
        """Over a memory, task or CPU limit: kill this worker, with ``reason`` as its end
        (the notice, restart and crash-loop rules of any other crash follow)."""
        self._abandon(generation, reason)

    def disable_for_limit(self, generation: int, reason: str) -> None:
        """Over its disk quota: stop for good (no restart frees a byte), as a crash loop
        does; ``reason`` says what to free and how to enable it again."""
        if generation != self._generation or self.state in ("disabled", "stopping", "stopped"):
            return
        self.disabled_reason = reason
        self.state = "disabled"
        self._abandon(generation, reason)
        self._ready.set()  # wake waiters so they see the disabled state
        self._ready = asyncio.Event()
        if self.hooks.on_disabled is not None:
            self.hooks.on_disabled(self.name, reason)

    # -- stopping ----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Ask the worker to shut down; kill it if it does not within the grace period."""
        if self._restart_task is not None:
            self._restart_task.cancel()
        previous = self.state
        self.state = "stopping" if previous != "disabled" else "disabled"
        self._ready.clear()
        process, peer = self._process, self._peer
        if process is not None and not process.exited.done():
            if previous in ("ready", "cancelling") and peer is not None and not peer.closed:
                with contextlib.suppress(RpcError, TimeoutError):
                    await asyncio.wait_for(peer.request(protocol.SHUTDOWN), self.policy.stop_grace)
                peer.close()  # EOF tells a worker that missed the request to exit
            try:
                await asyncio.wait_for(asyncio.shield(process.exited), self.policy.stop_grace)
            except TimeoutError:
                process.kill()
                await process.exited
        if peer is not None:
            peer.close()
        if self.state == "stopping":
            self.state = "stopped"
        self.pid = None
        # Wake calls still waiting for this worker to be ready: it never will be, and they
        # fail fast (NOT_READY, never sent) instead of at their deadline.
        waiting, self._ready = self._ready, asyncio.Event()
        waiting.set()
        if self._proxy is not None:
            proxy, self._proxy = self._proxy, None
            await proxy.close()

    async def kill(self) -> None:
        """End the worker now, without asking: the last resort of a stop that ran out of
        time (it may have been cancelled half way). Returns once the process is reaped."""
        if self._restart_task is not None:
            self._restart_task.cancel()
        if self.state != "disabled":
            self.state = "stopping"  # so its exit is not taken for a crash
        process = self._process
        if process is not None and not process.exited.done():
            process.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(process.exited), self.policy.stop_grace)
        await self.stop()


def _rotate_log(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if path.stat().st_size > LOG_ROTATE_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))


def _ascii_dashes(text: str) -> str:
    """The proxy's status line spells its reason's dash in ASCII; compare them alike."""
    return text.replace("\u2014", "-")
