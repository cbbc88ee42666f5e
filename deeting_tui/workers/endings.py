"""How a worker ends: garbage, EOF, exit, crash and restart, resource limits, stop and kill.

A mixin of :class:`~deeting_tui.workers.supervisor.Supervisor`; the state and methods it uses
of the other parts are declared once, in state.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from deeting_tui.rpc import protocol
from deeting_tui.rpc.errors import (
    RpcError,
)

from .launcher import describe_exit
from .policy import (
    WorkerStartError,
)
from .state import SupervisorState
from .worker_process import WorkerProcess

log = logging.getLogger("deeting.supervisor")


class WorkerEndings(SupervisorState):
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
                f"disabled (last: worker {reason}) — fix it, then enable it again"
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
