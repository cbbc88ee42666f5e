"""bench-trivial: the cheapest possible tool, so benchmarks measure the plumbing."""

from __future__ import annotations

from typing import Any


def invoke(ctx: Any, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    n = args.get("n", 0)
    return {"data": {"pong": n}, "text": "pong"}
