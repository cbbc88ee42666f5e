"""The browser bench's figures: what was measured, its rows and JSON, and the verdicts
against their targets (``browser.py`` measures them)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .common import percentile, table_lines, verdict_lines

#: The targets.
START_MS_MAX = 50.0
FRAME_P50_MS_MAX = 30.0
FRAME_P99_MS_MAX = 100.0
#: The heap after a GC once the flood's last frame is drawn, against the first frame's.
HEAP_GROWTH_MAX = 1.10
BIG_CHART_MS_MAX = 100.0


@dataclass
class BrowserSizes:
    starts: int = 30
    frames: int = 300
    interval_ms: float = 20.0
    flood_rate: int = 200
    flood_seconds: float = 20.0
    chart_points: int = 10_000
    chart_runs: int = 5

    @classmethod
    def quick(cls) -> BrowserSizes:
        return cls(starts=5, frames=40, flood_seconds=2.0, chart_runs=2)


@dataclass
class FrameLatency:
    """Send (plugin or pipe) to drawn (in the iframe's document), in ms, one per frame."""

    name: str
    sent: int
    samples: list[float] = field(repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "frames_sent": self.sent,
            "frames_drawn": len(self.samples),
            "p50_ms": round(percentile(self.samples, 50), 3),
            "p99_ms": round(percentile(self.samples, 99), 3),
            "max_ms": round(max(self.samples), 3),
        }


@dataclass
class Heap:
    """JavaScript heap before and after the chart flood, bytes, after a forced GC each."""

    frames: int
    seconds: float
    window: int | None  # points per frame of a sliding window; None: every point so far
    drawn: int  # payloads the chart's iframe drew during the flood (data-updates)
    took_s: float  # the plugin's pushing, start to end
    drained_s: float  # from the last push to the last frame drawn (a backlog, if any)
    frame_start: int
    frame_end: int
    page_start: int | None  # None when the iframe shares the page's heap
    page_end: int | None
    frame_samples: list[int] = field(repr=False)  # every 2 s, after a GC, start to end

    @property
    def frame_peak(self) -> int:
        return max(self.frame_samples)

    @property
    def growth(self) -> float:
        return self.frame_end / self.frame_start

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "window_points": self.window or self.frames,
            "frames_pushed": self.frames,
            "seconds": self.seconds,
            "frames_drawn": self.drawn,
            "push_took_s": round(self.took_s, 3),
            "drain_after_push_s": round(max(self.drained_s, 0.0001), 4),
            "iframe_heap_start_bytes": self.frame_start,
            "iframe_heap_end_bytes": self.frame_end,
            "iframe_heap_peak_bytes": self.frame_peak,
            "iframe_heap_samples": len(self.frame_samples),
            "iframe_heap_growth": round(self.growth, 4),
        }
        if self.page_start is not None and self.page_end is not None:
            out["page_heap_start_bytes"] = self.page_start
            out["page_heap_end_bytes"] = self.page_end
        return out


@dataclass
class BrowserFigures:
    start: list[float] = field(default_factory=list)  # CardServer, ms
    start_floor: list[float] = field(default_factory=list)  # asyncio.start_server, ms
    latency: list[FrameLatency] = field(default_factory=list)
    heap: Heap | None = None  # a sliding window: the target
    heap_growing: Heap | None = None  # the data grows: reported, no target
    chart_called: list[float] = field(default_factory=list)  # the draw call, ms
    chart_painted: list[float] = field(default_factory=list)  # to the painted frame, ms
    chart_points: int = 0
    chart_floor: list[float] = field(default_factory=list)  # a 10-point chart, to painted, ms
    chart_redraw: list[float] = field(default_factory=list)  # the same page drawing it again
    #: Parts that could not run, and why (figures from the others still count).
    missing: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, samples in (
            ("server_start", self.start),
            ("server_start_floor", self.start_floor),
        ):
            if samples:
                out[key] = _ms(samples)
        for item in self.latency:
            out[f"frame_{item.name}"] = item.as_json()
        if self.heap is not None:
            out["chart_flood"] = self.heap.as_json()
        if self.heap_growing is not None:
            out["chart_flood_growing_data"] = self.heap_growing.as_json()
        if self.chart_painted:
            out["big_chart"] = {
                "points": self.chart_points,
                "draw_call": _ms(self.chart_called),
                "painted": _ms(self.chart_painted),
                "redraw_painted": _ms(self.chart_redraw),
                "floor_10_points_painted": _ms(self.chart_floor),
            }
        if self.missing:
            out["missing"] = dict(self.missing)
        return out

    def rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = [("browser faces", "n", "p50", "p99", "max")]
        for label, samples in (
            ("CardServer start to accepting", self.start),
            ("floor: asyncio.start_server", self.start_floor),
        ):
            if samples:
                rows.append(_row(label, str(len(samples)), samples))
        labels = {
            "in_process": "frame: plugin to drawn, CardServer in process",
            "view": "frame: plugin to drawn, deeting view (other process)",
            "floor": "floor: pipe to SSE to a bare page's body",
        }
        for item in self.latency:
            rows.append(
                _row(
                    labels.get(item.name, item.name),
                    f"{len(item.samples)}/{item.sent}",
                    item.samples,
                )
            )
        if self.chart_painted:
            rows.append(
                _row(f"{self.chart_points:,}-point chart, to painted", str(len(self.chart_painted)),
                     self.chart_painted)
            )  # fmt: skip
            rows.append(
                _row("  of which the draw call", str(len(self.chart_called)), self.chart_called)
            )
            rows.append(
                _row("  drawn again on the same page", str(len(self.chart_redraw)),
                     self.chart_redraw)
            )  # fmt: skip
            rows.append(
                _row("floor: a 10-point chart, to painted", str(len(self.chart_floor)),
                     self.chart_floor)
            )  # fmt: skip
        for heap in (self.heap, self.heap_growing):
            if heap is not None:
                rows += _heap_rows(heap)
        return rows

    def verdicts(self) -> list[tuple[str, str, str, bool, float]]:
        out: list[tuple[str, str, str, bool, float]] = []
        if self.start:
            p50 = percentile(self.start, 50)
            floor = percentile(self.start_floor, 50) if self.start_floor else math.nan
            out.append(
                (
                    "card server start p50 <= 50 ms",
                    f"{p50:.2f} ms (floor {floor:.2f} ms)",
                    f"<= {START_MS_MAX:g} ms",
                    p50 <= START_MS_MAX,
                    p50,
                )
            )
        for item in self.latency:
            if item.name == "floor":
                continue
            p50, p99 = percentile(item.samples, 50), percentile(item.samples, 99)
            out.append(
                (
                    f"push_stream to drawn p50 ({item.name.replace('_', ' ')})",
                    f"{p50:.1f} ms ({len(item.samples)}/{item.sent} drawn)",
                    f"<= {FRAME_P50_MS_MAX:g} ms",
                    p50 <= FRAME_P50_MS_MAX,
                    p50,
                )
            )
            out.append(
                (
                    f"push_stream to drawn p99 ({item.name.replace('_', ' ')})",
                    f"{p99:.1f} ms",
                    f"<= {FRAME_P99_MS_MAX:g} ms",
                    p99 <= FRAME_P99_MS_MAX,
                    p99,
                )
            )
        if self.heap is not None:
            heap = self.heap
            out.append(
                (
                    f"live chart heap, {heap.window}-point window, {heap.frames} frames in "
                    f"{heap.seconds:g} s, last/first",
                    f"{heap.growth:.2f}x ({_mb(heap.frame_start)} -> {_mb(heap.frame_end)}, "
                    f"peak {_mb(heap.frame_peak)})",
                    f"<= {HEAP_GROWTH_MAX:g}x",
                    heap.growth <= HEAP_GROWTH_MAX,
                    heap.growth,
                )
            )
        if self.chart_painted:
            p50 = percentile(self.chart_painted, 50)
            out.append(
                (
                    f"{self.chart_points:,}-point chart drawn p50",
                    f"{p50:.1f} ms",
                    f"<= {BIG_CHART_MS_MAX:g} ms",
                    p50 <= BIG_CHART_MS_MAX,
                    p50,
                )
            )
        return out


def _heap_rows(heap: Heap) -> list[tuple[str, ...]]:
    what = (
        f"sliding window of {heap.window} points"
        if heap.window
        else "data growing (every point so far)"
    )
    rows: list[tuple[str, ...]] = [
        ("", "", "", "", ""),
        (f"live chart, {what}, {heap.frames} frames in {heap.seconds:g} s", "value", "", "", ""),
        ("frames drawn in the iframe", str(heap.drawn), "", "", ""),
        ("pushing took", f"{heap.took_s:.2f} s", "", "", ""),
        ("last frame drawn after the last push", f"{heap.drained_s:.2f} s", "", "", ""),
        ("iframe JS heap, first frame drawn", _mb(heap.frame_start), "", "", ""),
        ("iframe JS heap, last frame drawn", _mb(heap.frame_end), "", "", ""),
        ("iframe JS heap, largest of every 2 s", _mb(heap.frame_peak), "", "", ""),
    ]
    trend = " ".join(f"{sample / 1e6:.1f}" for sample in heap.frame_samples)
    rows.append((f"  every 2 s, MB: {trend}", "", "", "", ""))
    if heap.page_start is not None and heap.page_end is not None:
        rows += [
            ("host page JS heap, first frame drawn", _mb(heap.page_start), "", "", ""),
            ("host page JS heap, last frame drawn", _mb(heap.page_end), "", "", ""),
        ]
    return rows


def _ms(samples: list[float]) -> dict[str, Any]:
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 50), 3),
        "p99_ms": round(percentile(samples, 99), 3),
        "max_ms": round(max(samples), 3),
    }


def _row(label: str, n: str, samples: list[float]) -> tuple[str, ...]:
    return (
        label,
        n,
        f"{percentile(samples, 50):.2f} ms",
        f"{percentile(samples, 99):.2f} ms",
        f"{max(samples):.2f} ms",
    )


def _mb(value: int) -> str:
    return f"{value / 1e6:.2f} MB"


# -- the run ----------------------------------------------------------------------------------


def report(figures: BrowserFigures) -> str:
    lines = table_lines(figures.rows())
    for part, reason in figures.missing.items():
        lines.append(f"not measured: {part}: {reason}")
    lines += ["", *verdict_lines(figures.verdicts())]
    return "\n".join(lines)
