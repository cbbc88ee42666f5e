"""The round trips: deeting invoke and both floors side by side, then the mcp peer.

On a shared VM the machine's speed drifts by tens of percent within a minute; measured one
after the other, the floor and the Supervisor could land in different weather, and their
ratio would say more about the weather than about the code. So invoke and the two floors
stay up at once and take turns in blocks (the order rotating from block to block): each sees
the same conditions, and the invoke/floor ratio is fair.

The mcp peer runs in a phase of its own. Put in the rotation, its blocks (both cores busy
for ~2 ms per call) change the weather for whoever comes next: on this VM the floors then
measure 2 to 3x faster (~40 us instead of ~140 us) than they ever do alone or beside invoke, as
the host keeps the vCPUs awake. That regime is an artefact of the neighbour, not of the code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .common import Latency
from .floor import AsyncEchoClient, EchoChild, request_bytes
from .invoke import running_supervisor
from .launchers import close_launcher, default_launcher, launcher_name

BLOCKS = 10

Call = Callable[[int], Awaitable[Any]]


def _blocking_caller(child: EchoChild) -> Call:
    buffer = b""

    async def call(request_id: int) -> None:
        # Deliberately no await inside: this is the floor without an event loop in the way.
        nonlocal buffer
        os.write(child.write_fd, request_bytes(request_id))
        while b"\n" not in buffer:
            data = os.read(child.read_fd, 256 * 1024)
            if not data:
                raise ConnectionError("echo child closed the pipe")
            buffer += data
        _line, buffer = buffer.split(b"\n", 1)

    return call


async def _measure(
    contenders: dict[str, tuple[Call, int, int]],
) -> dict[str, list[float]]:
    """contenders: name -> (call, n, warmup). Warm each up, then time them in turns."""
    for call, _n, warmup in contenders.values():
        for i in range(warmup):
            await call(i)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    clock = time.perf_counter
    for block in range(BLOCKS):
        turn = block % len(names)
        for name in names[turn:] + names[:turn]:
            call, n, _warmup = contenders[name]
            bucket = samples[name]
            for i in range(max(1, n // BLOCKS)):
                began = clock()
                await call(i)
                bucket.append(clock() - began)
    return samples


async def _roundtrips(
    n: int, warmup: int, mcp_n: int, mcp_warmup: int, errors: dict[str, str]
) -> dict[str, Latency]:
    name, launcher = default_launcher()
    name = launcher_name(launcher)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(close_launcher, launcher)
        async_child = stack.enter_context(EchoChild())
        blocking_child = stack.enter_context(EchoChild())
        client = AsyncEchoClient(async_child.read_fd, async_child.write_fd)
        stack.callback(client.close)
        home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="deeting-bench-")))
        supervisor = await stack.enter_async_context(running_supervisor(launcher, home))
        reply = await supervisor.invoke("ping", {"n": 7})
        if reply.get("data") != {"pong": 7}:
            raise RuntimeError(f"unexpected reply from bench-trivial: {reply!r}")

        async def invoke(i: int) -> Any:
            return await supervisor.invoke("ping", {"n": i})

        async def floor(_i: int) -> Any:
            return await client.call()

        contenders: dict[str, tuple[Call, int, int]] = {
            "invoke": (invoke, n, warmup),
            "floor_asyncio": (floor, n, warmup),
            "floor_blocking": (_blocking_caller(blocking_child), n, warmup),
        }
        samples = await _measure(contenders)
        try:
            from .mcp_peer import mcp_session

            session = await stack.enter_async_context(mcp_session())

            async def mcp(i: int) -> Any:
                return await session.call_tool("ping", {"n": i})

            samples.update(await _measure({"mcp": (mcp, mcp_n, mcp_warmup)}))
        except Exception as exc:  # the bench extra missing, or the SDK changed
            errors["mcp"] = f"{type(exc).__name__}: {exc}"
    labels = {
        "invoke": f"deeting invoke (Supervisor, {name})",
        "floor_asyncio": "floor (asyncio pipe echo)",
        "floor_blocking": "floor (blocking pipe echo)",
        "mcp": "mcp SDK (stdio, call_tool)",
    }
    return {key: Latency(labels[key], values) for key, values in samples.items()}


def roundtrips(
    n: int, warmup: int, mcp_n: int, mcp_warmup: int, errors: dict[str, str]
) -> dict[str, Latency]:
    """Latency per contender key; a contender that cannot run is reported in ``errors``."""
    return asyncio.run(_roundtrips(n, warmup, mcp_n, mcp_warmup, errors))
