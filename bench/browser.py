"""The browser faces' speeds: server start, a stream frame to its drawing, memory under a fast
live chart, and a big chart's first drawing — each against a floor in the same run.

**Server start.** ``CardServer.start()`` until a client's connect is accepted, taking turns
with a bare ``asyncio.start_server`` (the floor, ``browser_floor.py``).

**Frame latency.** The bench-browser plugin's ``stamped`` tool pushes N ``text`` frames,
INTERVAL apart, through the real kernel and a sandboxed worker; each carries its send time
(the plugin's wall clock). Chromium shows the host page; a ``MutationObserver`` on the card
iframe's ``<body data-updates>`` records when each frame was drawn (``browser_page.py``).
Two ways to the page: *in process*, a ``CardServer`` fed by the kernel's listener (how the
chat does it); and *deeting view*, another process following the session as it is stored.
The floor: the same frames from a child process over a pipe, sent as Server-Sent Events to
a bare page that puts them in its body — no kernel, no host page, no iframe.

**Memory.** What "200 frames/s into one chart without memory growth" means: a sliding
window, the data itself not growing. The live chart card is shown alone on a page
(``?card=ID``, as the chat opens one; Chromium keeps a page and its sandboxed iframes in one
heap, so other cards would count too). A warm-up of 2 s at the flood's rate is drawn first
(a full window of 120 points of two series from the first frame; then the start); then the
plugin's ``chart`` tool pushes RATE frames/s for S seconds into that card (each the window
shifted by one point, in process). The same again with the data growing (every point so
far, each frame appended), reported as data growth with no target: the page must hold what
it shows. The JavaScript heap (CDP ``Performance.getMetrics`` JSHeapUsedSize after a forced
GC) of the chart's iframe — and of the host page, when Chromium gives the iframe its own
process — is sampled every 2 s (as often as the busy page answers) and once the flood's last
frame is drawn; the target compares the last with the first. Frames drawn and how long the
pushing really took are reported beside it (a kernel that can't keep up stretches the flood;
a page that falls behind gets each card's latest frame).

**Big chart.** A 10,000-point line chart drawn by the chart face, opened top-level from the
card server: from the draw call to the frame its canvas was painted in, a fresh page a run.

``python -m bench.browser [--quick] [--json]``; ``python -m bench`` runs it with the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .browser_floor import FloorServer, start_floor_ms
from .browser_page import (
    DRAW_TIMED,
    FLAGS,
    OBSERVE,
    card_frame,
    chromium_path,
    console_errors,
    heap_session,
    heap_used,
    records,
    wait_for_frame,
)
from .common import BENCH_DIR, REPO_ROOT, percentile
from .throughput import deeting_executable
from .ui_launch import install_plugin, terminal_env

__all__ = ["BrowserFigures", "BrowserSizes", "browser_figures"]

BROWSER_PLUGIN = BENCH_DIR / "plugins" / "browser"
STAMPED_CARD = "stream:bench-browser:bench.stamped"
CHART_CARD = "stream:bench-browser:bench.chart"
CHART_GROW_CARD = "stream:bench-browser:bench.chart.grow"
#: Points per series in the sliding window of the live chart.
CHART_WINDOW = 120

#: Targets (issue 15).
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


def browser_figures(sizes: BrowserSizes) -> BrowserFigures:
    return asyncio.run(_run(sizes))


async def _run(sizes: BrowserSizes) -> BrowserFigures:
    from playwright.async_api import async_playwright

    figures = BrowserFigures()
    await _server_starts(sizes, figures)
    with tempfile.TemporaryDirectory(prefix="deeting-bench-browser-") as tmp:
        home = Path(tmp) / "home"
        install_plugin(home, BROWSER_PLUGIN)
        async with async_playwright() as driver:
            browser = await driver.chromium.launch(executable_path=chromium_path(), args=FLAGS)
            try:
                await _floor_latency(browser, sizes, figures)
                await _kernel_parts(browser, home, sizes, figures)
            finally:
                await browser.close()
    return figures


async def _server_starts(sizes: BrowserSizes, figures: BrowserFigures) -> None:
    from deeting_tui.web.server import CardServer

    for _ in range(sizes.starts):  # taking turns, so a busy moment costs both alike
        figures.start_floor.append(await start_floor_ms())
        began = time.perf_counter()
        server = CardServer()
        await server.start()
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        figures.start.append((time.perf_counter() - began) * 1e3)
        writer.close()
        await server.stop()


def _latencies(name: str, sent: int, rows: list[tuple[int, float, float]]) -> FrameLatency:
    return FrameLatency(name, sent, [drawn - sent_ms for _, sent_ms, drawn in rows])


async def _floor_latency(browser: Any, sizes: BrowserSizes, figures: BrowserFigures) -> None:
    floor = FloorServer()
    await floor.start()
    page = await browser.new_page()
    try:
        await page.goto(floor.url)
        await floor.connected()
        await page.evaluate(OBSERVE)
        sent = await floor.relay(sizes.frames, sizes.interval_ms)
        await wait_for_frame(page, sizes.frames, _drain_s(sizes))
        figures.latency.append(_latencies("floor", sent, await records(page)))
    finally:
        await page.close()
        await floor.stop()


def _drain_s(sizes: BrowserSizes) -> float:
    return 30.0 + sizes.frames * sizes.interval_ms / 1000


async def _kernel_parts(
    browser: Any, home: Path, sizes: BrowserSizes, figures: BrowserFigures
) -> None:
    """In process, then deeting view, then the chart flood and the big chart: one kernel."""
    from deeting_tui.kernel.kernel import Kernel
    from deeting_tui.paths import resolve_paths
    from deeting_tui.web.server import CardServer

    kernel = Kernel(resolve_paths({"DEETING_HOME": str(home)}))
    problems = await kernel.start(ticker=False, follow=False)
    if problems:
        raise RuntimeError("; ".join(problems))
    server = CardServer(theme="light")
    try:
        await server.start()
        session = kernel.open_session()
        server.load(session.id, session.title, [])
        kernel.add_listener(server.publish)
        page = await browser.new_page(viewport={"width": 720, "height": 1200})
        errors = console_errors(page)
        await page.goto(server.url)
        await _call(kernel, session.id, "stamped", {"count": 1, "interval_ms": 0})
        frame = await card_frame(page, STAMPED_CARD, errors)
        await frame.evaluate(OBSERVE)
        await _call(
            kernel, session.id, "stamped", {"count": sizes.frames, "interval_ms": sizes.interval_ms}
        )
        await wait_for_frame(frame, sizes.frames, _drain_s(sizes))
        figures.latency.append(_latencies("in_process", sizes.frames, await records(frame)))

        try:
            await _view_latency(browser, home, kernel, session.id, sizes, figures)
        except _Missing as exc:
            figures.missing["deeting view"] = str(exc)

        try:
            for grow in (False, True):
                heap = await _chart_flood(browser, server, kernel, session.id, sizes, grow=grow)
                setattr(figures, "heap_growing" if grow else "heap", heap)
        except _Missing as exc:
            figures.missing["live chart"] = str(exc)
        try:
            await _big_chart(browser, server.url, sizes, figures)
        except _Missing as exc:
            figures.missing["big chart"] = str(exc)
        await page.close()
    finally:
        await server.stop()
        await kernel.shutdown()


class _Missing(Exception):
    """A part that cannot run on this tree (a face or a command not there yet)."""


async def _call(kernel: Any, session_id: str, tool: str, args: dict[str, Any]) -> None:
    outcome = await kernel.call_tool(session_id, tool, args)
    if not getattr(outcome, "ok", True):
        raise RuntimeError(f"{tool} failed: {outcome}")


async def _view_latency(
    browser: Any, home: Path, kernel: Any, session_id: str, sizes: BrowserSizes,
    figures: BrowserFigures,
) -> None:  # fmt: skip
    """The same frames, seen through ``deeting view`` following the session from a child."""
    args = [deeting_executable(), "view", "--session", session_id, "--no-open"]
    process = await asyncio.create_subprocess_exec(
        *args,
        env=terminal_env(home) | {"PYTHONPATH": os.environ.get("PYTHONPATH", str(REPO_ROOT))},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    page = None
    try:
        assert process.stdout is not None and process.stderr is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), 30)
        except TimeoutError:
            raise RuntimeError("deeting view wrote no URL in 30 s") from None
        url = line.decode(errors="replace").strip()
        if not url.startswith("http://127.0.0.1:"):
            error = (await process.stderr.read()).decode(errors="replace").strip()
            raise _Missing(f"deeting view did not start: {error[-200:] or url!r}")
        page = await browser.new_page(viewport={"width": 720, "height": 1200})
        errors = console_errors(page)
        await page.goto(url)
        frame = await card_frame(page, STAMPED_CARD, errors)
        await frame.evaluate(OBSERVE)
        await _call(
            kernel, session_id, "stamped", {"count": sizes.frames, "interval_ms": sizes.interval_ms}
        )
        await wait_for_frame(frame, sizes.frames, _drain_s(sizes))
        figures.latency.append(_latencies("view", sizes.frames, await records(frame)))
    finally:
        if page is not None:
            await page.close()
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


def _has_face(name: str) -> bool:
    from deeting_tui.resources import core_renderers_dir

    return (core_renderers_dir() / name / "index.html").is_file()


async def _chart_flood(
    browser: Any, server: Any, kernel: Any, session_id: str, sizes: BrowserSizes, *, grow: bool
) -> Heap:
    """The live chart card alone on a page (``?card=``, as the chat's key opens one: the tool
    calls' own result cards would otherwise add iframes to the heap measured, which Chromium
    shares between the page and its sandboxed iframes). A warm-up of WARMUP_S at the flood's
    rate first (the code compiled, the library's caches made: not growth), then the heap's
    start; the end is taken once the flood's last frame is drawn, after a GC. A sliding window
    (`grow` false) or every point so far, each into its own card."""
    if not _has_face("chart"):
        raise _Missing("no chart face (renderers/chart/index.html) on this tree")
    shape: dict[str, Any] = {"grow": True} if grow else {"window": CHART_WINDOW}
    card = CHART_GROW_CARD if grow else CHART_CARD
    page = await browser.new_page(viewport={"width": 720, "height": 1200})
    try:
        await page.goto(server.card_url(card))
        # One frame more than the flood has: its last title ("live N/N") is not the flood's.
        warmup = {"count": int(sizes.flood_rate * WARMUP_S) + 1, "seconds": WARMUP_S}
        await _call(kernel, session_id, "chart", {**warmup, **shape})
        frame = await card_frame(page, card, console_errors(page))
        return await _flood(page, frame, kernel, session_id, sizes, shape, grow)
    finally:
        await page.close()


#: Seconds of frames before the live chart's heap is first sampled.
WARMUP_S = 2.0


async def _flood(
    page: Any, frame: Any, kernel: Any, session_id: str, sizes: BrowserSizes,
    shape: dict[str, Any], grow: bool,
) -> Heap:  # fmt: skip
    heap, separate = await heap_session(page, frame)
    page_heap = await page.context.new_cdp_session(page)
    await page_heap.send("Performance.enable")
    frame_start = await heap_used(heap, collect=True)
    page_start = await heap_used(page_heap, collect=True)
    before = int(await frame.evaluate("() => Number(document.body.dataset.updates)"))

    count = int(sizes.flood_rate * sizes.flood_seconds)
    args = {"count": count, "seconds": sizes.flood_seconds, **shape}
    began = time.monotonic()
    flood = asyncio.ensure_future(kernel.call_tool(session_id, "chart", args))
    try:
        samples = [frame_start]
        while not flood.done():
            await asyncio.wait([flood], timeout=2.0)
            if not flood.done():  # every 2 s, after a GC: the trend, not the garbage
                samples.append(await heap_used(heap, collect=True))
        outcome = flood.result()
    finally:
        if not flood.done():
            flood.cancel()
            with contextlib.suppress(BaseException):
                await flood
    pushed_s = time.monotonic() - began
    if not getattr(outcome, "ok", True):
        raise RuntimeError(f"chart failed: {outcome}")
    last = f"live {count}/{count}"
    await frame.wait_for_function(
        "(last) => document.body.textContent.includes(last)", arg=last, timeout=300_000
    )
    drained_s = time.monotonic() - began - pushed_s
    drawn = int(await frame.evaluate("() => Number(document.body.dataset.updates)")) - before
    frame_end = await heap_used(heap, collect=True)
    page_end = await heap_used(page_heap, collect=True)
    return Heap(
        count, sizes.flood_seconds, None if grow else CHART_WINDOW, drawn, pushed_s, drained_s,
        frame_start, frame_end,
        page_start if separate else None, page_end if separate else None, [*samples, frame_end],
    )  # fmt: skip


def big_chart_payload(points: int) -> dict[str, Any]:
    values = [round(50 + 40 * math.sin(i / 150) + 8 * math.sin(i / 7), 3) for i in range(points)]
    return {
        "kind": "line",
        "title": f"{points:,} points",
        "unit": "ms",
        "series": [{"name": "latency", "values": values}],
    }


async def _big_chart(browser: Any, base: str, sizes: BrowserSizes, figures: BrowserFigures) -> None:
    """A fresh page per run: the 10-point floor, then the big chart, then the big chart again
    on the same page (a redraw: the chart exists, only its data changes)."""
    if not _has_face("chart"):
        raise _Missing("no chart face (renderers/chart/index.html) on this tree")
    small, big = big_chart_payload(10), big_chart_payload(sizes.chart_points)
    figures.chart_points = sizes.chart_points
    for _ in range(sizes.chart_runs):
        figures.chart_floor.append((await _draw_fresh(browser, base, [small]))[0][1])
        (called, painted), (_, again) = await _draw_fresh(browser, base, [big, big])
        figures.chart_called.append(called)
        figures.chart_painted.append(painted)
        figures.chart_redraw.append(again)


async def _draw_fresh(browser: Any, base: str, payloads: list[Any]) -> list[tuple[float, float]]:
    page = await browser.new_page(viewport={"width": 720, "height": 480})
    try:
        await page.goto(f"{base}renderers/chart/index.html")
        await page.wait_for_function("() => window.DeetingFace && DeetingFace.drawForTest")
        timings = []
        for payload in payloads:
            called, painted = await page.evaluate(DRAW_TIMED, payload)
            timings.append((float(called), float(painted)))
        return timings
    finally:
        await page.close()


# -- the command ------------------------------------------------------------------------------


def _report(figures: BrowserFigures) -> str:
    rows = figures.rows()
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for row in rows:
        if not any(row):
            lines.append("")
            continue
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if row[1] in ("n", "value"):
            lines.append("-" * len(lines[-1]))
    for part, reason in figures.missing.items():
        lines.append(f"not measured: {part}: {reason}")
    lines.append("")
    for target, measured, limit, passed, _value in figures.verdicts():
        lines.append(f"{target}: {measured} (target {limit}) {'PASS' if passed else 'FAIL'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.browser", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N (for the smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON document only")
    options = parser.parse_args(argv)
    os.chdir(REPO_ROOT)
    figures = browser_figures(BrowserSizes.quick() if options.quick else BrowserSizes())
    if options.json:
        sys.stdout.buffer.write(orjson.dumps(figures.as_json(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(_report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
