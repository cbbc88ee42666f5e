"""Workers that start on their plugin's first use and stop when unused (issue 17).

A kernel starts with every enabled plugin wired in (tools, trigger, subscriptions) but only
the workers that must run from the start (the clock's tick); the others start on their first
trigger match, tool call or subscribed event, and stop again after ``idle_stop`` seconds
unused, keeping their state in their folders. A worker that fails to start is a crash like
any other. Each test installs with one kernel, then starts another over the same home, as a
user reopening deeting does.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from support import FAST_POLICY, FIXTURES, REPO, events_of

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.plugins.info import PluginState
from deeting_tui.kernel.plugins.installed import Cause
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import Config, resolve_paths

LAZY = FIXTURES / "lazy_plugin"
NAME = "lazy-fixture"
CLOCK = REPO / "plugins" / "clock"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def install(*sources: Path) -> None:
    first = Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)
    await first.start(ticker=False)
    try:
        for source in sources:
            report = await first.loader.install(source)
            assert report.enabled, report.problem
    finally:
        await first.shutdown()


@asynccontextmanager
async def reopened(config: Config | None = None) -> AsyncIterator[Kernel]:
    kernel = Kernel(
        resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY, config=config
    )
    problems = await kernel.start(ticker=False)
    assert problems == []
    try:
        yield kernel
    finally:
        await kernel.shutdown()


def data_file(kernel: Kernel, name: str) -> Path:
    return kernel.paths.plugin_data(NAME) / name


async def recall(kernel: Kernel, session: str) -> dict[str, Any]:
    outcome = await kernel.call_tool(session, "recall", {})
    assert outcome.ok, outcome.error
    assert isinstance(outcome.data, dict)
    return outcome.data


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` (a state of the kernel's own, no event for it) for ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


@pytest.fixture
async def home_with_lazy(home: Path) -> Path:
    await install(LAZY, CLOCK)
    return home


async def test_a_reopened_kernel_wires_plugins_but_starts_only_those_that_must_run(
    home_with_lazy: Path,
) -> None:
    async with reopened() as kernel:
        lazy, clock = kernel.loader.runtimes[NAME], kernel.loader.runtimes["clock"]
        assert lazy.waiting and lazy.supervisor.pid is None
        assert not clock.waiting and clock.supervisor.state == "ready"  # a tick subscriber
        assert kernel.tools.get("remember") is not None  # its tools are there all the same
        assert kernel.plugins.info(NAME).state is PluginState.READY
        assert kernel.plugins.info("clock").state is PluginState.ENABLED
        assert kernel.plugins.health_line() == "1 running · 1 ready"
        assert (
            not data_file(kernel, "activations").exists()
            or data_file(kernel, "activations").read_text() == "1"
        )  # only the install's start ran activate


async def test_a_kernel_that_runs_no_plugins_lists_them_as_they_will_start(
    home_with_lazy: Path,
) -> None:
    kernel = Kernel(resolve_paths(), policy=FAST_POLICY)
    await kernel.start(plugins=False, ticker=False)
    try:
        assert kernel.plugins.info(NAME).state is PluginState.READY
        assert kernel.plugins.info("clock").state is PluginState.ENABLED
    finally:
        await kernel.shutdown()


async def test_the_first_trigger_match_starts_the_worker_and_the_message_is_answered(
    home_with_lazy: Path,
) -> None:
    async with reopened() as kernel:
        session = kernel.open_session().id
        turn = await kernel.submit(session, "remember milk")
        assert not turn.failed, turn.errors
        replies = [e.payload["text"] for e in kernel.sessions.events(session, ["reply"])]
        assert replies == ["1 kept"]
        runtime = kernel.loader.runtimes[NAME]
        assert not runtime.waiting and runtime.supervisor.state == "ready"
        assert kernel.plugins.info(NAME).state is PluginState.ENABLED


async def test_the_first_tool_call_starts_the_worker_and_runs_activate_once(
    home_with_lazy: Path,
) -> None:
    async with reopened() as kernel:
        session = kernel.open_session().id
        before = int(data_file(kernel, "activations").read_text())
        data = await recall(kernel, session)
        assert data["activations"] == before + 1
        assert data["served"] == 1


async def test_calls_racing_for_a_waiting_plugin_share_one_start(
    home_with_lazy: Path,
) -> None:
    async with reopened() as kernel:
        session = kernel.open_session().id
        before = int(data_file(kernel, "activations").read_text())
        results = await asyncio.gather(*(recall(kernel, session) for _ in range(6)))
        assert len({r["pid"] for r in results}) == 1
        assert {r["activations"] for r in results} == {before + 1}


async def test_a_subscribed_event_starts_the_worker_and_reaches_it(home_with_lazy: Path) -> None:
    async with reopened() as kernel:
        runtime = kernel.loader.runtimes[NAME]
        assert runtime.waiting
        delivered = await kernel.bus.publish("plugin.disabled", {"plugin": "x", "message": "m"})
        assert delivered
        assert runtime.supervisor.state == "ready"


async def test_an_unused_worker_stops_and_the_next_use_starts_it_with_its_state_kept(
    home_with_lazy: Path,
) -> None:
    async with reopened() as kernel:
        clock = FakeClock()
        kernel.loader.clock = clock
        session = kernel.open_session().id
        await kernel.submit(session, "remember eggs")
        first = await recall(kernel, session)
        runtime = kernel.loader.runtimes[NAME]
        deactivated = int(data_file(kernel, "deactivations").read_text())  # the install's

        clock.now += 59
        assert await kernel.loader.stop_idle(60) == []  # used a minute ago: kept
        clock.now += 2
        assert await kernel.loader.stop_idle(60) == [NAME]  # the clock's plugin is not
        assert runtime.waiting and kernel.loader.runtimes[NAME] is runtime
        assert int(data_file(kernel, "deactivations").read_text()) == deactivated + 1
        assert kernel.plugins.info(NAME).state is PluginState.READY
        assert kernel.loader.runtimes["clock"].supervisor.state == "ready"

        again = await recall(kernel, session)
        assert again["pid"] != first["pid"] and again["served"] == 1  # a new worker
        assert again["kept"] == ["eggs"]  # what it kept in its folder
        assert again["activations"] == first["activations"] + 1


async def test_a_plugin_being_changed_is_left_alone_and_the_others_still_stop(
    home: Path,
) -> None:
    await install(LAZY, FIXTURES / "good_plugin")
    async with reopened() as kernel:
        clock = FakeClock()
        kernel.loader.clock = clock
        session = kernel.open_session().id
        await recall(kernel, session)
        assert (await kernel.call_tool(session, "echo", {"text": "hi"})).ok
        clock.now += 3600
        async with kernel.loader.lock(NAME):  # an upgrade waiting for the user's consent
            stopped = await asyncio.wait_for(kernel.loader.stop_idle(60), 10)
        assert stopped == ["echo-fixture"]
        assert await kernel.loader.stop_idle(60) == [NAME]  # once it is free


async def test_a_call_in_flight_keeps_the_worker_from_stopping(home: Path) -> None:
    await install(FIXTURES / "blocking_plugin")
    async with reopened() as kernel:
        clock = FakeClock()
        kernel.loader.clock = clock
        runtime = kernel.loader.runtimes["sleeper"]
        session = kernel.open_session().id
        call = asyncio.ensure_future(kernel.call_tool(session, "block", {"seconds": "30"}))
        await until(lambda: runtime.supervisor.activity[1] > 0 or call.done())
        assert not call.done()
        clock.now += 3600
        assert await kernel.loader.stop_idle(60) == []
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call


async def test_the_kernel_stops_idle_workers_by_itself(home_with_lazy: Path) -> None:
    async with reopened(Config(idle_stop=0.2)) as kernel:
        stopped = asyncio.Event()
        stop_idle = kernel.loader.stop_idle

        async def watched(idle_after: float) -> list[str]:
            names = await stop_idle(idle_after)
            if names:
                stopped.set()
            return names

        kernel.loader.stop_idle = watched  # type: ignore[method-assign]
        session = kernel.open_session().id
        await recall(kernel, session)
        await asyncio.wait_for(stopped.wait(), 20)
        assert kernel.loader.runtimes[NAME].waiting


async def test_giving_up_on_a_call_while_its_worker_starts_leaves_the_start_to_finish(
    home_with_lazy: Path,
) -> None:
    async with reopened() as kernel:
        seen = events_of(kernel)
        session = kernel.open_session().id
        runtime = kernel.loader.runtimes[NAME]
        call = asyncio.ensure_future(kernel.call_tool(session, "recall", {}))
        await until(lambda: runtime.waking is not None or call.done())
        call.cancel()  # Esc while the worker starts
        with pytest.raises(asyncio.CancelledError):
            await call
        results = [e for e in seen if e["type"] == "tool_result"]
        assert results and results[-1]["cancelled"] is True
        await runtime.waking
        assert runtime.supervisor.state == "ready"
        data = await recall(kernel, session)
        assert data["served"] == 1


async def test_a_worker_that_fails_to_start_on_first_use_is_a_crash(
    home_with_lazy: Path,
) -> None:
    crashed: list[dict[str, Any]] = []
    disabled: list[dict[str, Any]] = []
    async with reopened() as kernel:
        kernel.bus.subscribe("plugin.crashed", lambda t, p: crashed.append(p))
        kernel.bus.subscribe("plugin.disabled", lambda t, p: disabled.append(p))
        seen = events_of(kernel)
        data_file(kernel, "fail-activate").write_text("yes")
        session = kernel.open_session().id
        for attempt in range(3):
            outcome = await kernel.call_tool(session, "recall", {})
            assert not outcome.ok
            assert outcome.error is not None
            assert f"could not start '{NAME}'" in outcome.error or "not running" in outcome.error
            if attempt < 2:
                assert "told to fail" in outcome.error
                assert kernel.loader.runtimes[NAME].waiting  # tried again on the next use
        await asyncio.sleep(0)  # the bus delivers plugin.* notices on the next loop pass
        await asyncio.sleep(0)
        notices = [e["message"] for e in seen if e["type"] == "plugin_notice"]
        assert any("told to fail" in m for m in notices)
        assert any("failed to start 3 times" in m for m in notices)
        assert len(crashed) == 2 and disabled and disabled[0]["plugin"] == NAME
        assert NAME not in kernel.loader.runtimes
        record = kernel.installed.get(NAME)
        assert record is not None and not record.enabled and record.cause is Cause.CRASHED
        assert kernel.plugins.info(NAME).state is PluginState.CRASHED

        data_file(kernel, "fail-activate").unlink()  # fixed: enabling it brings it back
        await kernel.plugins.enable(NAME)
        assert (await recall(kernel, session))["served"] == 1


async def test_an_upgrade_of_a_waiting_plugin_switches_and_runs_its_postupgrade(
    home: Path,
) -> None:
    upgrade, v1, v2 = "upgrade-fixture", FIXTURES / "upgrade_v1", FIXTURES / "upgrade_v2"
    await install(v1)
    async with reopened() as kernel:
        assert kernel.loader.runtimes[upgrade].waiting
        shutil.copytree(v2, kernel.paths.plugin_code(upgrade, "2.0.0"))
        report = await kernel.loader.upgrade(upgrade, "2.0.0")
        assert report.new == "2.0.0"
        session = kernel.open_session().id
        outcome = await kernel.call_tool(session, "count", {})
        assert outcome.ok and outcome.data["version"] == "2.0.0"
        assert outcome.data["inherited"] == {}  # a waiting worker hands over no state


# -- manifests read once -----------------------------------------------------------------------


async def test_a_reopened_kernel_validates_no_manifest_and_a_refresh_reads_none(
    home_with_lazy: Path,
) -> None:
    async with reopened() as kernel:
        for _ in range(5):
            kernel.plugins.health()
            kernel.plugins.all()
        assert kernel.loader.specs.validations == 0


async def test_a_changed_manifest_is_validated_again_and_a_damaged_one_is_reported(
    home_with_lazy: Path,
) -> None:
    async with reopened() as kernel:
        code = kernel.paths.plugin_code(NAME, "1.0.0")
        kimai = code / "kimai.json"
        kimai.write_text(kimai.read_text().replace("Keeps what", "Now keeps what"))
        assert kernel.loader.spec(NAME).description.startswith("Now keeps what")
        assert kernel.loader.specs.validations == 1
        kimai.write_text("{ not json")
        info = kernel.plugins.info(NAME)
        assert info.state is PluginState.DAMAGED
        assert info.problem is not None and "not valid JSON" in info.problem


async def test_a_damaged_kept_spec_is_validated_again(home_with_lazy: Path) -> None:
    folder = resolve_paths().cache_dir / "plugin-specs"
    kept = sorted(folder.glob("*.json"))
    assert kept
    for path in kept:
        path.write_bytes(b"\xff not a kept spec")
    async with reopened() as kernel:
        assert kernel.loader.spec(NAME).name == NAME
        assert kernel.loader.specs.validations >= 1
        session = kernel.open_session().id
        assert (await recall(kernel, session))["kept"] == []


async def test_plugins_whose_tools_clash_at_start_are_refused_and_the_rest_are_wired(
    home: Path, tmp_path: Path
) -> None:
    await install(LAZY)
    twin = tmp_path / "twin"
    shutil.copytree(LAZY, twin)
    for name in ("kimai.json", "package.json"):
        path = twin / name
        path.write_text(path.read_text().replace('"lazy-fixture"', '"lazy-twin"'))
    # Installed while the first one was disabled (its tools free), then both enabled.
    first = Kernel(resolve_paths(), policy=FAST_POLICY)
    await first.start(ticker=False)
    await first.loader.disable(NAME)
    await first.loader.install(twin)
    await first.shutdown()
    first.installed.set_enabled(NAME, True)

    kernel = Kernel(resolve_paths(), policy=FAST_POLICY)
    problems = await kernel.start(ticker=False)
    try:
        assert len(problems) == 1 and "remember" in problems[0]
        assert len(kernel.loader.runtimes) == 1
        assert kernel.tools.get("remember") is not None
        assert len(kernel.triggers) == 1
    finally:
        await kernel.shutdown()


async def test_a_shutdown_while_a_worker_starts_for_its_first_use_leaves_no_worker(
    home_with_lazy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kernel = Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)
    await kernel.start(ticker=False)
    runtime = kernel.loader.runtimes[NAME]
    session = kernel.open_session().id
    call = asyncio.ensure_future(kernel.call_tool(session, "recall", {}))
    await until(lambda: runtime.waking is not None or call.done())
    call.cancel()  # Ctrl-C: the caller goes, then the kernel shuts down at once
    with pytest.raises(asyncio.CancelledError):
        await call
    await kernel.shutdown()
    assert runtime.supervisor.pid is None and runtime.supervisor.state == "stopped"
    assert "forkserver failed" not in caplog.text  # a cut-short start is not its failure
