"""calc: evaluate arithmetic safely (see handler.py; nothing here ever calls eval)."""

from __future__ import annotations

from typing import Any

from deeting_tui.sdk import Context, Result

try:
    from .handler import evaluate, format_number, rounded
except ImportError:  # imported as a plain module, with src/ on sys.path
    from handler import evaluate, format_number, rounded  # type: ignore[no-redef,import-not-found]

TOOLS = ("calc",)


def invoke(ctx: Context, tool: str, args: dict[str, Any]) -> Result:
    if tool != "calc":
        raise ValueError(f"calc has no tool {tool!r} (tools: {', '.join(TOOLS)})")
    if not isinstance(args, dict):
        raise ValueError("calc: arguments must be an object")
    unknown = sorted(set(args) - {"expr"})
    if unknown:
        raise ValueError(f"calc: unknown argument(s) {', '.join(unknown)} (expected: expr)")
    if "expr" not in args or args["expr"] is None:
        raise ValueError("calc: missing argument 'expr' (an expression such as 2 + 2)")
    expr = args["expr"]
    if not isinstance(expr, str):
        raise ValueError(f"calc: expr must be a string, not {type(expr).__name__}")
    value = evaluate(expr)
    expr = expr.strip()
    return Result(
        data={"expression": expr, "result": rounded(value)},
        text=f"{expr} = {format_number(value)}",
        renderer="key-value",
    )
