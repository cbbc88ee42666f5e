"""Real-browser tests: Playwright (from PyPI) driving Debian's Chromium.

``playwright install`` needs a download this network refuses, so the browser is the distro's
(``./dev.sh test`` installs chromium-headless-shell as root) and is launched by path. Tests
that need it take the ``browser`` fixture, which skips with the reason when no Chromium is
on the machine. The flags keep Chromium off the network it would otherwise try at start.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.browser_page import FLAGS as BENCH_FLAGS
from bench.browser_page import find_chromium

#: The bench's flags, plus steadier glyphs for screenshot comparison.
FLAGS = (*BENCH_FLAGS, "--font-render-hinting=none")


def chromium_path() -> str | None:
    """Debian's Chromium, or one named by DEETING_CHROMIUM (found as the bench finds it)."""
    return find_chromium()


def skip_reason() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed: run ./dev.sh test (it installs the dev extras)"
    if chromium_path() is None:
        return (
            "no Chromium on this machine: install chromium-headless-shell (apt-get install "
            "chromium-headless-shell) or run ./dev.sh test as root, which installs it"
        )
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium per test module; each test opens its own context.

    Not per session: sync Playwright keeps its asyncio loop running in the main thread while it
    is open, and every async test after it (pytest-asyncio) then fails with "Runner.run() cannot
    be called from a running event loop". Closing it at the end of the module stops the loop."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=chromium_path(), args=list(FLAGS))
        try:
            yield chromium
        finally:
            chromium.close()
