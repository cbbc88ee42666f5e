"""bench-streamer: a steady flood of ``push_stream`` updates, so the UI bench can press keys
while the chat redraws a live chart (``python -m bench``, the UI section)."""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

TOPIC = "bench.flood"
#: Points per series on the card, as a live card of sysinfo's would hold.
WINDOW = 60


def invoke(ctx: Any, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    if tool != "flood":
        raise ValueError(f"bench-streamer has no tool {tool!r} (tools: flood)")
    count = int(args["count"])
    seconds = float(args.get("seconds", 5.0))
    interval = seconds / count
    wave: deque[float] = deque(maxlen=WINDOW)
    noise: deque[float] = deque(maxlen=WINDOW)
    began = time.monotonic()
    for i in range(count):
        # On a schedule, not sleep(interval): a late push does not delay the ones after it.
        delay = began + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        wave.append(round(50 + 45 * math.sin(i / 10), 2))
        noise.append(round((i * 7919) % 100, 2))
        ctx.push_stream(
            TOPIC,
            {
                "kind": "sparkline",
                "title": f"flood {i + 1}/{count}",
                "unit": "%",
                "series": [
                    {"name": "wave", "values": list(wave)},
                    {"name": "noise", "values": list(noise)},
                ],
            },
            renderer="chart",
        )
    took = time.monotonic() - began
    return {
        "data": {"pushed": count, "seconds": round(took, 4)},
        "text": f"pushed {count} updates in {took:.2f} s",
    }
