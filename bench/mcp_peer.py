"""The peer to beat: the ``mcp`` SDK (2.x) over stdio with the same trivial tool.

The server is ``MCPServer`` (FastMCP's v2 name) with one tool, ``ping(n) -> {"pong": n}``,
in a child process; the client is a ``ClientSession`` over ``stdio_client`` calling
``call_tool`` — what an MCP host does for every tool call.

Run as ``python -m bench.mcp_peer --serve`` it is the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from .common import Latency, child_env, python


def serve() -> None:
    from mcp.server.mcpserver import MCPServer

    server: Any = MCPServer("bench-trivial", log_level="WARNING")

    @server.tool()
    def ping(n: int = 0) -> dict[str, Any]:
        """Answer pong with n."""
        return {"pong": n}

    server.run("stdio")


@contextlib.asynccontextmanager
async def mcp_session() -> AsyncIterator[Any]:
    """A ready ClientSession to the trivial server, its reply checked once."""
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=python(),
        args=["-m", "bench.mcp_peer", "--serve"],
        env={"PYTHONPATH": child_env()["PYTHONPATH"]},
        cwd=os.getcwd(),
    )
    with open(os.devnull, "w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            check = await session.call_tool("ping", {"n": 7})
            if check.is_error or check.structured_content not in (
                {"pong": 7},
                {"result": {"pong": 7}},
            ):
                raise RuntimeError(f"unexpected reply from the mcp server: {check!r}")
            yield session


async def _mcp(n: int, warmup: int) -> list[float]:
    async with mcp_session() as session:
        for i in range(warmup):
            await session.call_tool("ping", {"n": i})
        samples = []
        clock = time.perf_counter
        for i in range(n):
            began = clock()
            await session.call_tool("ping", {"n": i})
            samples.append(clock() - began)
    return samples


def mcp_latency(n: int, warmup: int) -> Latency:
    return Latency("mcp SDK (stdio, call_tool)", asyncio.run(_mcp(n, warmup)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.mcp_peer")
    parser.add_argument("--serve", action="store_true", help="run the stdio server")
    options = parser.parse_args(argv)
    if not options.serve:
        print(mcp_latency(200, 20).as_json())
        return
    with contextlib.suppress(KeyboardInterrupt):
        serve()
    sys.exit(0)


if __name__ == "__main__":
    main()
