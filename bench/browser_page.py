"""The browser side of the browser bench: Chromium (Debian's, by path, as the tests launch
it), the card's iframe in a host page, and what the page records.

Every timing is taken in the page: a ``MutationObserver`` on the drawing document's
``<body data-updates>`` (the page contract: a face bumps it after drawing each payload)
records ``performance.timeOrigin + performance.now()`` — the wall clock, sub-millisecond —
with the frame number and send time the frame's text carries. Python's ``time.time()`` in
the plugin and the page's clock are the same machine's wall clock.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

#: Debian's Chromium, launched by path (never downloaded); tests/browser_support.py uses these.
CANDIDATES = (
    "/usr/bin/chromium-headless-shell",
    "/usr/lib/chromium/chromium-headless-shell",
    "/usr/bin/chromium",
)
#: Keep Chromium off the network it would otherwise try at start.
FLAGS = [
    "--no-sandbox",  # as root; the pages are ours, on 127.0.0.1
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]


def find_chromium() -> str | None:
    """The Chromium DEETING_CHROMIUM names (None if it can't run), else Debian's."""
    named = os.environ.get("DEETING_CHROMIUM")
    if named:
        return named if os.access(named, os.X_OK) else None
    for candidate in (*CANDIDATES, shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def chromium_path() -> str:
    found = find_chromium()
    if found is None:
        raise RuntimeError(
            "no Chromium on this machine: apt-get install chromium-headless-shell "
            "(./dev.sh bench installs it as root), or name one in DEETING_CHROMIUM"
        )
    return found


#: Installed in the drawing document: one record per frame drawn, [frame, sent_ms, drawn_ms].
OBSERVE = """() => {
  if (window.__benchRecords) return;
  const records = [];
  const seen = new Set();
  window.__benchRecords = records;
  const pattern = /frame (\\d+) of \\d+\\s+sent_ms ([\\d.]+)/;
  new MutationObserver(() => {
    const drawn = performance.timeOrigin + performance.now();
    const match = pattern.exec(document.body.textContent);
    if (match && !seen.has(match[1])) {
      seen.add(match[1]);
      records.push([Number(match[1]), Number(match[2]), drawn]);
    }
  }).observe(document.body, { attributes: true, attributeFilter: ["data-updates"] });
}"""


def console_errors(page: Any) -> list[str]:
    """The page's console errors from now on (its iframes' included), for error messages."""
    seen: list[str] = []
    page.on("console", lambda msg: seen.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: seen.append(str(err)))
    return seen


async def card_frame(
    page: Any, card_id: str, errors: list[str] | None = None, timeout_s: float = 30.0
) -> Any:
    """The iframe of card ``card_id`` in the host page, once it has drawn a payload."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    selector = f'iframe[data-card="{card_id}"]'
    try:
        element = await page.wait_for_selector(selector, state="attached", timeout=timeout_s * 1e3)
        frame = await element.content_frame()
        if frame is None:
            raise RuntimeError(f"the card {card_id}'s iframe has no document")
        await frame.wait_for_function(
            "() => document.body && Number(document.body.dataset.updates || 0) >= 1",
            timeout=timeout_s * 1e3,
        )
    except PlaywrightTimeout:
        said = "; ".join(dict.fromkeys(errors or [])) or "nothing"
        raise RuntimeError(
            f"the card {card_id} drew nothing in {timeout_s:g} s; the page's console said: "
            f"{said[:500]}"
        ) from None
    return frame


async def wait_for_frame(target: Any, number: int, timeout_s: float) -> None:
    """Until the records hold frame ``number`` (the last one sent)."""
    await target.wait_for_function(
        "(n) => window.__benchRecords.some((r) => r[0] === n)", arg=number, timeout=timeout_s * 1e3
    )


async def records(target: Any) -> list[tuple[int, float, float]]:
    rows = await target.evaluate("() => window.__benchRecords")
    return [(int(n), float(sent), float(drawn)) for n, sent, drawn in rows]


async def heap_session(page: Any, frame: Any) -> tuple[Any, bool]:
    """A CDP session that sees ``frame``'s JavaScript heap, and whether it is the iframe's own
    target (Chromium put the sandboxed iframe in another process) rather than the page's."""
    try:
        session, separate = await page.context.new_cdp_session(frame), True
    except Exception:  # not an out-of-process iframe: the page's session sees its heap
        session, separate = await page.context.new_cdp_session(page), False
    await session.send("Performance.enable")
    return session, separate


async def heap_used(session: Any, collect: bool) -> int:
    """JSHeapUsedSize, after a full garbage collection when ``collect``.

    Before collecting, the console's kept messages are dropped: the MCP Apps SDK logs every
    message it parses with console.debug, and while a DevTools client (this one) is attached
    the inspector keeps the last thousand with their arguments — the payloads — which would
    read as the page's growth. Without DevTools nothing keeps them.
    """
    if collect:
        await session.send("Runtime.discardConsoleEntries")
        await session.send("HeapProfiler.collectGarbage")
    metrics = await session.send("Performance.getMetrics")
    for metric in metrics["metrics"]:
        if metric["name"] == "JSHeapUsedSize":
            return int(metric["value"])
    raise RuntimeError("Performance.getMetrics reported no JSHeapUsedSize")


#: Draws PAYLOAD in a top-level chart face; resolves with [draw call ms, to painted ms].
DRAW_TIMED = """async (payload) => {
  const began = performance.now();
  DeetingFace.drawForTest(payload, "light");
  const called = performance.now() - began;
  // The chart paints in its own requestAnimationFrame, asked for during the draw: a frame
  // callback asked for after it runs after that paint, in the same frame.
  await new Promise((done) => requestAnimationFrame(done));
  if (document.querySelector(".face-failure")) {
    throw new Error(document.querySelector(".face-failure").textContent);
  }
  return [called, performance.now() - began];
}"""
