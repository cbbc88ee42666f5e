"""Plugin states in one word, as the header and the plugin manager show them."""

from __future__ import annotations

from support import FIXTURES, HOSTILE, OFFICIAL

from deeting_tui.kernel.health import health_line, plugin_state
from deeting_tui.kernel.kernel import Kernel


async def test_states_and_the_health_line(kernel: Kernel) -> None:
    assert health_line(kernel) == "0 running"
    await kernel.loader.install(FIXTURES / "good_plugin")
    await kernel.loader.install(OFFICIAL / "weather")  # asks for network: not granted
    await kernel.loader.install(OFFICIAL / "calc")
    await kernel.loader.disable("calc")
    assert plugin_state(kernel, "echo-fixture") == "enabled"
    assert plugin_state(kernel, "weather") == "needs consent"
    assert plugin_state(kernel, "calc") == "disabled"
    assert health_line(kernel) == "1 running · 1 awaiting consent"


async def test_a_crash_loop_reads_as_crashed(kernel: Kernel) -> None:
    await kernel.loader.install(HOSTILE / "faulty", yes=True)
    session = kernel.open_session()
    for _ in range(3):
        await kernel.submit(session.id, "fault exit")
    assert plugin_state(kernel, "faulty") == "crashed"
    assert health_line(kernel) == "0 running · 1 crashed"


async def test_a_damaged_install_reads_as_crashed(kernel: Kernel) -> None:
    await kernel.loader.install(OFFICIAL / "calc")
    await kernel.loader.disable("calc")
    record = kernel.installed.get("calc")
    assert record is not None
    (kernel.paths.plugin_code("calc", record.version) / "kimai.json").write_text("{")
    assert plugin_state(kernel, "calc") == "crashed"
