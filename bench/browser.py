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
from pathlib import Path
from typing import Any

import orjson

from .browser_figures import BrowserFigures, BrowserSizes, FrameLatency, Heap, report
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
from .common import BENCH_DIR, REPO_ROOT
from .throughput import deeting_executable
from .ui_launch import install_plugin, terminal_env

__all__ = ["BrowserFigures", "BrowserSizes", "browser_figures"]

BROWSER_PLUGIN = BENCH_DIR / "plugins" / "browser"
STAMPED_CARD = "stream:bench-browser:bench.stamped"
CHART_CARD = "stream:bench-browser:bench.chart"
CHART_GROW_CARD = "stream:bench-browser:bench.chart.grow"
#: Points per series in the sliding window of the live chart.
CHART_WINDOW = 120


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
        print(report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
