"""``deeting mcp serve`` against the kernel it wraps: what one ``tools/call`` costs a client.

Three contenders answer the same trivial tool (bench-trivial's ``ping(n) -> {"pong": n}``) in
the same run, in turns (the order rotating from block to block, as roundtrip.py does, so each
sees the same weather on a shared machine):

- ``kernel``: ``Kernel.call_tool`` in-process — validation, the session's records, the
  sandboxed worker's round trip. The floor ``mcp serve`` stands on.
- ``mcp serve``: the SDK's ``ClientSession`` over ``stdio_client`` calling ``deeting mcp
  serve``, which makes the same kernel call: the kernel plus the MCP layers on both sides.
- ``mcp SDK peer``: the SDK's own server with the same tool (bench/mcp_peer.py, no sandbox,
  no kernel): what the protocol costs by itself.

``python -m bench.mcp_serve [--n N] [--quick]`` prints a table of p50 and p95 (ms) and the
overhead of ``mcp serve`` over the kernel. A report, not a gate: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .common import TRIVIAL_PLUGIN, child_env, percentile_ms, python, table_lines
from .roundtrip import Call, _measure

LABELS = {
    "kernel": "kernel.call_tool (in-process)",
    "serve": "deeting mcp serve (SDK client, stdio)",
    "peer": "mcp SDK peer (no kernel, no sandbox)",
}


@contextlib.asynccontextmanager
async def kernel_caller(home: Path) -> AsyncIterator[Call]:
    """The kernel over ``home``, as ``mcp serve`` builds it, calling ping in one session."""
    from deeting_tui.kernel.kernel import Kernel
    from deeting_tui.paths import resolve_paths

    kernel = Kernel(resolve_paths({"DEETING_HOME": str(home)}))
    await kernel.start(ticker=False, follow=False)
    try:
        session = kernel.open_session().id

        async def call(i: int) -> Any:
            outcome = await kernel.call_tool(session, "ping", {"n": i})
            if not outcome.ok:
                raise RuntimeError(f"kernel ping failed: {outcome.error}")
            return outcome

        yield call
    finally:
        await kernel.shutdown()


@contextlib.asynccontextmanager
async def serve_caller(home: Path) -> AsyncIterator[Call]:
    """An SDK client to ``deeting mcp serve`` over ``home``."""
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=python(),
        args=["-m", "deeting_tui", "mcp", "serve"],
        env=child_env({"DEETING_HOME": str(home)}),
        cwd=os.getcwd(),
    )
    with open(os.devnull, "w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()

            async def call(i: int) -> Any:
                result = await session.call_tool("ping", {"n": i})
                if result.is_error or result.structured_content != {"pong": i}:
                    raise RuntimeError(f"unexpected reply from deeting mcp serve: {result!r}")
                return result

            yield call


def _install(home: Path) -> None:
    import subprocess

    done = subprocess.run(
        [python(), "-m", "deeting_tui", "plugin", "install", str(TRIVIAL_PLUGIN), "--yes"],
        env=child_env({"DEETING_HOME": str(home)}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"installing bench-trivial failed: {done.stderr.strip()}")


async def measure(n: int, warmup: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="deeting-bench-serve-") as folder:
        home = Path(folder) / "home"
        _install(home)
        async with contextlib.AsyncExitStack() as stack:
            kernel = await stack.enter_async_context(kernel_caller(home))
            serve = await stack.enter_async_context(serve_caller(home))
            from .mcp_peer import mcp_session

            peer_session = await stack.enter_async_context(mcp_session())

            async def peer(i: int) -> Any:
                return await peer_session.call_tool("ping", {"n": i})

            return await _measure(
                {
                    "kernel": (kernel, n, warmup),
                    "serve": (serve, n, warmup),
                    "peer": (peer, n, warmup),
                }
            )


def report(samples: dict[str, list[float]]) -> list[str]:
    rows: list[tuple[str, ...]] = [("round trip of one tools/call", "n", "p50 ms", "p95 ms")]
    for key, label in LABELS.items():
        got = samples[key]
        rows.append(
            (label, str(len(got)), f"{percentile_ms(got, 50):.3f}", f"{percentile_ms(got, 95):.3f}")
        )
    lines = table_lines(rows)
    kernel, serve = samples["kernel"], samples["serve"]
    extra = percentile_ms(serve, 50) - percentile_ms(kernel, 50)
    ratio = percentile_ms(serve, 50) / percentile_ms(kernel, 50)
    lines.append("")
    lines.append(f"mcp serve over the kernel: +{extra:.3f} ms at p50 ({ratio:.2f}x)")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.mcp_serve", description=__doc__)
    parser.add_argument("--n", type=int, default=2000, help="calls per contender")
    parser.add_argument("--quick", action="store_true", help="a few calls (the smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON document only")
    options = parser.parse_args(argv)
    n, warmup = (50, 10) if options.quick else (options.n, max(10, options.n // 10))
    samples = asyncio.run(measure(n, warmup))
    if options.json:
        print(json.dumps(figures(samples)))
        return
    for line in report(samples):
        print(line)


def figures(samples: dict[str, list[float]]) -> dict[str, Any]:
    return {
        key: {
            "n": len(got),
            "p50_ms": round(percentile_ms(got, 50), 4),
            "p95_ms": round(percentile_ms(got, 95), 4),
        }
        for key, got in samples.items()
    }


if __name__ == "__main__":
    main()
