"""How the worker waits for the kernel when its loop has nothing to do (no busy polling)."""

from __future__ import annotations

import asyncio
import select


class _IdleWait:
    """How an idle worker waits: for the kernel's next message, or for a plugin thread that
    hands the loop work (``run_coroutine_threadsafe`` and every other ``call_soon_threadsafe``
    write a byte to the loop's self-pipe). One poll() on both; no thread, no timer.

    The self-pipe is asyncio's own (``_ssock``), read here only for readiness: the loop
    drains it when it runs. On a loop without one, a plain blocking read of the kernel's fd
    (a thread's hand-over then waits for the next message, as it used to).
    """

    def __init__(self, read_fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self._read_fd = read_fd
        self._poll: select.poll | None = None
        self_pipe = getattr(loop, "_ssock", None)
        fileno = getattr(self_pipe, "fileno", None)
        if callable(fileno):
            self._poll = select.poll()
            self._poll.register(read_fd, select.POLLIN)
            self._poll.register(fileno(), select.POLLIN)

    def kernel_spoke(self) -> bool:
        """Block until either wakes; True when the kernel's fd has input (or hung up)."""
        if self._poll is None:
            return True
        while True:
            try:
                ready = self._poll.poll()
            except InterruptedError:  # pragma: no cover - PEP 475 retries poll() itself
                continue
            return any(fd == self._read_fd for fd, _events in ready)


def _loop_has_work(loop: asyncio.AbstractEventLoop) -> bool:
    """Tasks, ready callbacks or timers. asyncio has no public way to ask for the last two; a
    loop without these attributes is always treated as busy (the worker then simply keeps
    serving through the loop, as before this fast path existed)."""
    if asyncio.all_tasks(loop):
        return True
    ready = getattr(loop, "_ready", None)
    if ready is None:
        return True
    return bool(ready) or _next_timer_delay(loop) is not None


def _next_timer_delay(loop: asyncio.AbstractEventLoop) -> float | None:
    """Seconds to the loop's earliest live timer, or None without one."""
    timers = getattr(loop, "_scheduled", None)
    if timers is None:
        return 0.05  # unknown loop internals: look again soon rather than stall a timer
    live = [timer.when() for timer in timers if not timer.cancelled()]
    return max(0.0, min(live) - loop.time()) if live else None
