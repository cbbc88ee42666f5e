"""tests/web: the loopback server, the board of cards, and the host page in real Chromium.

The browser here lives for one module, not the session: sync Playwright keeps its own event
loop running in the main thread while it is open, and pytest-asyncio cannot start a test's
loop under it ("Runner.run() cannot be called from a running event loop"), so a session-wide
browser would break every async test collected after the first browser test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_support import FLAGS, chromium_path, skip_reason


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium for the module; each test opens its own context."""
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
