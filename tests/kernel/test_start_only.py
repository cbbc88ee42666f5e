"""``Kernel.start(only=...)``: what ``deeting mcp serve`` starts — some of the enabled plugins,
every one of them waiting for its first use, even the clock (a tick subscriber the chat starts
at once): a serving process has no clock and nobody watching a live feed."""

from __future__ import annotations

from pathlib import Path

from support import FAST_POLICY, FIXTURES, REPO

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths

LAZY = FIXTURES / "lazy_plugin"
ECHO = FIXTURES / "good_plugin"
CLOCK = REPO / "plugins" / "clock"


async def _install(*sources: Path) -> None:
    first = Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)
    await first.start(ticker=False)
    try:
        for source in sources:
            report = await first.loader.install(source)
            assert report.enabled, report.problem
    finally:
        await first.shutdown()


async def test_only_wires_the_named_plugins_each_waiting_for_its_first_use(home: Path) -> None:
    await _install(LAZY, CLOCK, ECHO)
    kernel = Kernel(resolve_paths(), policy=FAST_POLICY)
    problems = await kernel.start(ticker=False, only={"clock", "echo-fixture"})
    try:
        assert problems == []
        assert sorted(kernel.loader.runtimes) == ["clock", "echo-fixture"]
        clock = kernel.loader.runtimes["clock"]
        assert clock.waiting and clock.supervisor.pid is None  # not started at launch here
        assert kernel.tools.get("remember") is None  # lazy-fixture's: not wired in
        assert {info.plugin for info in kernel.tool_infos()} == {"clock", "echo-fixture"}
        session = kernel.open_session().id
        outcome = await kernel.call_tool(session, "echo", {"text": "first use"})
        assert outcome.ok and outcome.text == "first use"
        assert kernel.loader.installed.get("lazy-fixture").enabled  # left as it was
    finally:
        await kernel.shutdown()
