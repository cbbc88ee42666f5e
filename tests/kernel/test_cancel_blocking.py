"""Cancelling a call whose plugin blocks in sync code (time.sleep, urllib): the call ends at
once, marked cancelled; the worker, which cannot hear the cancel, is stopped and started again
without that counting as a crash, so cancelling never disables a plugin."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from support import FIXTURES, events_of

from deeting_tui.kernel.kernel import Kernel

DEADLINE_S = 10.0


async def _blocking_call(
    kernel: Kernel, seen: list[dict[str, Any]], tool: str = "block"
) -> asyncio.Task[Any]:
    """Start `/TOOL seconds=60` and return its turn once the plugin is inside time.sleep."""
    session = kernel.open_session().id
    before = len(seen)
    turn = asyncio.create_task(kernel.submit(session, f"/{tool} seconds=60"))

    async def blocking() -> None:
        while not any(e["type"] == "progress" for e in seen[before:]):
            await asyncio.sleep(0.01)  # polling our own event list

    await asyncio.wait_for(blocking(), DEADLINE_S)
    return turn


def _results(seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in seen if e["type"] == "tool_result"]


async def test_a_cancelled_blocking_call_ends_at_once_marked_cancelled(kernel: Kernel) -> None:
    await kernel.loader.install(FIXTURES / "blocking_plugin")
    supervisor = kernel.loader.runtimes["sleeper"].supervisor
    seen = events_of(kernel)
    turn = await _blocking_call(kernel, seen)
    pid = supervisor.pid
    turn.cancel()
    await asyncio.gather(turn, return_exceptions=True)
    # Said before the worker was dealt with: it still sleeps in the same process.
    (result,) = _results(seen)
    assert result["cancelled"] is True and result["ok"] is False
    assert result["error"] == "cancelled"
    assert supervisor.pid == pid
    assert not [e for e in seen if e["type"] == "error"]
    stored = kernel.sessions.events(result["session_id"], kinds=["tool_result"])
    assert stored and stored[-1].payload["cancelled"] is True


async def test_cancelling_again_and_again_never_disables_a_blocking_plugin(
    kernel: Kernel,
) -> None:
    await kernel.loader.install(FIXTURES / "blocking_plugin")
    supervisor = kernel.loader.runtimes["sleeper"].supervisor
    seen = events_of(kernel)
    session = kernel.open_session().id
    pids = set()
    for _ in range(supervisor.policy.crash_limit + 1):
        turn = await _blocking_call(kernel, seen)
        pids.add(supervisor.pid)
        turn.cancel()
        await asyncio.gather(turn, return_exceptions=True)
        # The next call is served: by a fresh worker (the old one could not hear the cancel),
        # whose activate hook ran again.
        answer = await asyncio.wait_for(kernel.call_tool(session, "state", {}), DEADLINE_S)
        assert answer.ok, answer.error
        assert answer.data["activated"] is True and answer.data["pid"] not in pids
    assert supervisor.state == "ready" and not supervisor.guard.tripped
    assert kernel.loader.record("sleeper").enabled
    assert not [e for e in seen if e["type"] in ("plugin_notice", "error")]
    assert [r["cancelled"] for r in _results(seen) if r["tool"] == "block"] == [True] * 4


async def test_blocking_code_awaited_in_a_thread_is_cancelled_without_a_restart(
    kernel: Kernel,
) -> None:
    """What the plugin guide recommends: the await of asyncio.to_thread hears the cancel, so
    the worker (and what the plugin holds in memory) stays."""
    await kernel.loader.install(FIXTURES / "blocking_plugin")
    supervisor = kernel.loader.runtimes["sleeper"].supervisor
    seen = events_of(kernel)
    # Time enough to let go even on a loaded machine: this test is about not being killed.
    supervisor.policy = dataclasses.replace(supervisor.policy, kill_grace=10.0)
    turn = await _blocking_call(kernel, seen, tool="block_in_thread")
    pid = supervisor.pid
    turn.cancel()
    await asyncio.gather(turn, return_exceptions=True)
    (result,) = _results(seen)
    assert result["cancelled"] is True
    session = kernel.open_session().id
    answer = await asyncio.wait_for(kernel.call_tool(session, "state", {}), DEADLINE_S)
    assert answer.ok and answer.data["pid"] == pid == supervisor.pid
