"""bench-browser: stream frames for the browser bench (``python -m bench.browser``).

``stamped`` frames carry the wall-clock time they were sent, so the bench can time each to
its drawing in the browser; ``chart`` is a fast live chart, for the page's memory over time:
a sliding window (every frame the last WINDOW points, full from the first frame, as a
sysinfo-style card sends), or, with ``grow``, every point so far (the data itself grows).
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

STAMPED = "bench.stamped"
CHART = "bench.chart"
CHART_GROW = "bench.chart.grow"


def _on_schedule(began: float, i: int, interval: float) -> None:
    # On a schedule, not sleep(interval): a late push does not delay the ones after it.
    delay = began + i * interval - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _stamped(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    count = int(args["count"])
    interval = float(args.get("interval_ms", 20.0)) / 1000
    began = time.monotonic()
    for i in range(count):
        _on_schedule(began, i, interval)
        sent = time.time() * 1000
        ctx.push_stream(
            STAMPED, {"text": f"frame {i + 1} of {count}\nsent_ms {sent:.3f}"}, renderer="text"
        )
    return {"data": {"pushed": count}, "text": f"pushed {count} stamped frames"}


def _chart(ctx: Any, args: dict[str, Any]) -> dict[str, Any]:
    count = int(args["count"])
    seconds = float(args.get("seconds", 20.0))
    window = int(args.get("window", 120))
    grow = bool(args.get("grow", False))
    interval = seconds / count
    wave: deque[float] = deque(maxlen=None if grow else window)
    noise: deque[float] = deque(maxlen=None if grow else window)
    for i in range(0 if grow else -window, 0):  # a window is full from the first frame
        wave.append(round(50 + 45 * math.sin(i / 10), 2))
        noise.append(round((i * 7919) % 100, 2))
    began = time.monotonic()
    for i in range(count):
        _on_schedule(began, i, interval)
        wave.append(round(50 + 45 * math.sin(i / 10), 2))
        noise.append(round((i * 7919) % 100, 2))
        ctx.push_stream(
            CHART_GROW if grow else CHART,
            {
                "kind": "line",
                "title": f"live {i + 1}/{count}",
                "unit": "%",
                "series": [
                    {"name": "wave", "values": list(wave)},
                    {"name": "noise", "values": list(noise)},
                ],
            },
            renderer="chart",
        )
    took = time.monotonic() - began
    return {"data": {"pushed": count, "seconds": round(took, 4)}, "text": f"pushed {count}"}


def invoke(ctx: Any, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    if tool == "stamped":
        return _stamped(ctx, args)
    if tool == "chart":
        return _chart(ctx, args)
    raise ValueError(f"bench-browser has no tool {tool!r} (tools: stamped, chart)")
