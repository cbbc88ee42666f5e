"""A host the proxy refuses: the reason reaches the plugin and the user, not only the log.

A plugin's HTTP client tends to say only ``HTTP Error 403: Forbidden``; the proxy knows which
host it refused, what was granted and which grant would allow it. That reason is in the 403's
status line (clients that never read the body still show it) and, whatever the plugin does
with it, in the failed call's error text the chat and ``--script`` show.

Through the real kernel, a real sandboxed worker and its real proxy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support import FIXTURES, HELLO, events_of, hello, run_deeting

from deeting_tui.kernel.kernel import Kernel

FETCH = FIXTURES / "fetch_plugin"


@pytest.fixture
async def web() -> AsyncIterator[int]:
    server = await asyncio.start_server(hello, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _call(kernel: Kernel, line: str) -> dict[str, object]:
    session = kernel.open_session()
    seen = events_of(kernel)
    await kernel.submit(session.id, line)
    (result,) = [e for e in seen if e["type"] == "tool_result"]
    return result


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_the_refusal_reason_is_in_the_calls_error(
    kernel: Kernel, web: int, scheme: str
) -> None:
    report = await kernel.loader.install(FETCH, yes=True)
    assert report.enabled, report.problem
    target = f"localhost:{web}"
    result = await _call(kernel, f"/fetch url={scheme}://{target}/")
    assert result["ok"] is False
    error = str(result["error"])
    # What the plugin's own client said, and the proxy's whole reason with it.
    assert "403" in error, error
    assert f"plugin 'fetch-fixture' may not connect to {target}" in error, error
    assert "it was granted network:127.0.0.1" in error, error
    assert f"network:{target} would allow it" in error, error
    # The plugin keeps serving, at once: the granted host is still reached.
    fetched = await asyncio.wait_for(_call(kernel, f"/fetch url=http://127.0.0.1:{web}/"), 10)
    assert fetched["ok"] is True and fetched["text"] == HELLO.decode()


async def test_a_plugin_that_keeps_only_the_status_code_still_shows_the_reason(
    kernel: Kernel, web: int
) -> None:
    await kernel.loader.install(FETCH, yes=True)
    result = await _call(kernel, f"/fetch_terse url=http://localhost:{web}/")
    assert result["ok"] is False
    assert str(result["error"]) == (
        "request failed with status 403 — plugin 'fetch-fixture' may not connect to "
        f"localhost:{web} — it was granted network:127.0.0.1; network:localhost:{web} would "
        "allow it"
    )


async def test_a_call_that_fails_for_another_reason_is_not_blamed_on_an_old_refusal(
    kernel: Kernel, web: int
) -> None:
    await kernel.loader.install(FETCH, yes=True)
    refused = await _call(kernel, f"/fetch url=http://localhost:{web}/")
    assert "would allow it" in str(refused["error"])
    other = await _call(kernel, "/fetch url=not-a-url")
    assert other["ok"] is False and "would allow it" not in str(other["error"])


def test_script_mode_shows_the_reason_on_its_error_line(home: Path) -> None:
    assert run_deeting("plugin", "install", str(FETCH), "--yes", home=home).returncode == 0
    done = run_deeting("--script", "-", home=home, stdin="/fetch url=http://localhost:9/\n")
    assert done.returncode == 1
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("deeting: error:")]
    assert "403" in line
    assert "network:localhost:9 would allow it" in line, done.stderr
