"""Calls to a worker under their deadlines: requests, hooks, events, cancellation.

A mixin of :class:`~deeting_tui.workers.supervisor.Supervisor`; the state and methods it uses
of the other parts are declared once, in state.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from deeting_tui.rpc import protocol
from deeting_tui.rpc.errors import (
    CALL_TIMEOUT,
    CONNECTION_CLOSED,
    NOT_READY,
    WORKER_CRASHED,
    RpcError,
)
from deeting_tui.rpc.protocol import (
    CancelParams,
    EventParams,
    InvokeParams,
    InvokeResult,
    ProtocolError,
)

from .policy import (
    ProgressListener,
)
from .state import SupervisorState

log = logging.getLogger("deeting.supervisor")


class SupervisedCalls(SupervisorState):
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


def _ascii_dashes(text: str) -> str:
    """The proxy's status line spells its reason's dash in ASCII; compare them alike."""
    return text.replace("\u2014", "-")
