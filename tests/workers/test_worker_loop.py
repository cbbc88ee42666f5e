"""The worker waits in a blocking read while its event loop is idle and hands over to the loop
whenever a plugin gives it work: async calls, bare timers, background tasks. Every one of those
must keep working, and the worker must still stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import os

import pytest
from support import FIXTURES

from deeting_tui.kernel.events import Event, StreamFrame
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.workers.supervisor import Supervisor

LOOP_PLUGIN = FIXTURES / "loop_plugin"


async def _supervisor(kernel: Kernel) -> Supervisor:
    report = await kernel.loader.install(LOOP_PLUGIN)
    assert report.enabled, report.problem
    return kernel.loader.runtimes["loop-fixture"].supervisor


def _streams(kernel: Kernel, topic: str, wanted: int) -> asyncio.Event:
    """An event set once ``wanted`` stream events of ``topic`` reached the kernel."""
    arrived = asyncio.Event()
    count = 0

    def listen(event: Event) -> None:
        nonlocal count
        if isinstance(event, StreamFrame) and event.topic == topic:
            count += 1
            if count >= wanted:
                arrived.set()

    kernel.add_listener(listen)
    return arrived


async def test_sync_and_async_calls_alternate_in_one_worker(kernel: Kernel) -> None:
    supervisor = await _supervisor(kernel)
    first = await supervisor.invoke("where", {})
    assert (await supervisor.invoke("nap", {"seconds": 0.01}))["text"] == "rested"
    again = await supervisor.invoke("where", {})
    both = await asyncio.gather(
        supervisor.invoke("nap", {"seconds": 0.05}), supervisor.invoke("where", {})
    )
    assert [r["text"] for r in both] == ["rested", "here"]
    assert first["data"]["pid"] == again["data"]["pid"] == supervisor.pid


async def test_a_timer_left_by_a_sync_call_fires_with_no_further_call(kernel: Kernel) -> None:
    supervisor = await _supervisor(kernel)
    kernel.open_session()
    fired = _streams(kernel, "loop.later", 1)
    assert (await supervisor.invoke("later", {}))["text"] == "timer set"
    await asyncio.wait_for(fired.wait(), timeout=10)


async def test_a_background_task_runs_on_its_own_and_calls_still_work(kernel: Kernel) -> None:
    supervisor = await _supervisor(kernel)
    kernel.open_session()
    beats = _streams(kernel, "loop.beat", 5)
    assert (await supervisor.invoke("beat", {}))["text"] == "beating"
    await asyncio.wait_for(beats.wait(), timeout=10)
    assert (await supervisor.invoke("where", {}))["text"] == "here"
    # An async call cancelled by the caller is cancelled in the worker, which serves on.
    nap = asyncio.ensure_future(supervisor.invoke("nap", {"seconds": 30}))
    await asyncio.sleep(0)  # let the request go out
    nap.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await nap
    assert (await asyncio.wait_for(supervisor.invoke("where", {}), timeout=5))["text"] == "here"


async def test_a_thread_handing_the_idle_loop_a_coroutine_is_served_at_once(
    kernel: Kernel,
) -> None:
    """The worker waits for the kernel in a blocking read while its loop is idle: a plugin
    thread's run_coroutine_threadsafe must wake it, not wait for the next kernel message
    (none comes here: the stream must arrive on its own)."""
    supervisor = await _supervisor(kernel)
    kernel.open_session()
    handed = _streams(kernel, "loop.handoff", 1)
    assert (await supervisor.invoke("handoff", {"after": 0.3}))["text"] == "handing over"
    await asyncio.wait_for(handed.wait(), timeout=10)
    assert (await supervisor.invoke("where", {}))["text"] == "here"


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "with-background-task"])
async def test_shutdown_is_clean_in_either_mode(kernel: Kernel, busy: bool) -> None:
    supervisor = await _supervisor(kernel)
    if busy:
        await supervisor.invoke("beat", {})
    process = supervisor._process
    assert process is not None
    await supervisor.stop()
    status = process.exited.result()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
