"""Holding the kernel: a hostile plugin tries to freeze or hold it, through the real kernel and
real workers. A trigger regex that takes 2^n steps on a backtracking engine; lifecycle hooks
that report progress forever to hold start-up, shutdown and ``plugin uninstall``. Each attempt
must fail within the hook's hard deadline plus a second, and the kernel must keep serving.

Deadlines are shortened through the policy (the logic is the product's). Run as root by
.ci/run, and again as an unprivileged user by test_unprivileged.py."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import HOSTILE, events_of

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.plugins.loader import PluginError
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths
from deeting_tui.workers.supervisor import SupervisionPolicy

BACKTRACK = HOSTILE / "backtrack"
HOLDOUT = HOSTILE / "holdout"
HOOK_DEADLINE = 0.5
POLICY = SupervisionPolicy(
    kill_grace=0.3,
    stop_grace=0.5,
    backoff_base=0.01,
    hook_deadlines={
        "activate": HOOK_DEADLINE,
        "deactivate": HOOK_DEADLINE,
        "preuninstall": HOOK_DEADLINE,
    },
)
#: Nothing here may take longer; it only keeps a regression from hanging the suite.
NEVER = 30.0
#: The 41-character message that froze the kernel: word characters, then no match.
FROZE_IT = "a" * 40 + "!"


def _new_kernel() -> Kernel:
    return Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=POLICY)


@pytest.fixture
async def kernel(home: Path) -> AsyncIterator[Kernel]:
    k = _new_kernel()
    await k.start(ticker=False, follow=False)
    try:
        yield k
    finally:
        await asyncio.wait_for(k.shutdown(), NEVER)


async def _answered_at_once(kernel: Kernel, text: str = "hello") -> list[dict[str, Any]]:
    """The kernel serves the next message without waiting for anything the plugin holds."""
    session = kernel.open_session()
    seen = events_of(kernel)
    turn = await asyncio.wait_for(kernel.submit(session.id, text), 5.0)
    assert not turn.failed, turn.errors
    assert any(e["type"] == "reply" for e in seen), seen
    return seen


def _hold(kernel: Kernel, *hooks: str) -> None:
    data = kernel.paths.plugin_data("holdout")
    data.mkdir(parents=True, exist_ok=True)
    (data / "hold.json").write_text(orjson.dumps(list(hooks)).decode())


def _missed(hook: str) -> str:
    return (
        f"plugin 'holdout': its {hook} hook did not finish within {HOOK_DEADLINE:g} s "
        "(a hard deadline: progress does not extend it), so it was stopped"
    )


# -- the trigger --------------------------------------------------------------------------


async def test_the_catastrophic_trigger_cannot_freeze_the_kernel(kernel: Kernel) -> None:
    report = await kernel.loader.install(BACKTRACK)
    assert report.enabled, report.problem
    # The message that froze it, and one far longer: both go on to the assistant at once.
    seen = await _answered_at_once(kernel, FROZE_IT)
    assert not [e for e in seen if e["type"] == "tool_call"]
    seen = await _answered_at_once(kernel, "a" * 65_535 + "!")
    assert not [e for e in seen if e["type"] == "tool_call"]
    # What it does match still reaches it: the trigger works, it just cannot hang.
    seen = await _answered_at_once(kernel, "hello brave new world")
    assert [e["plugin"] for e in seen if e["type"] == "tool_call"] == ["backtrack"]


async def test_a_trigger_re2_cannot_run_is_refused_at_install_naming_it(
    kernel: Kernel, tmp_path: Path
) -> None:
    source = tmp_path / "backtrack"
    shutil.copytree(BACKTRACK, source)
    kimai = orjson.loads((source / "kimai.json").read_bytes())
    kimai["trigger"]["regex"] = r"^(\w+\s?)*(?<!!)$"  # catastrophic in re, and a lookbehind
    (source / "kimai.json").write_bytes(orjson.dumps(kimai))
    with pytest.raises(PluginError) as refused:
        await kernel.loader.install(source)
    message = str(refused.value)
    assert "trigger.regex: a negative lookbehind (?<!…) is not supported" in message
    assert "\n" not in message
    assert kernel.installed.get("backtrack") is None
    await _answered_at_once(kernel, FROZE_IT)


async def test_an_installed_copy_changed_behind_the_installers_back_is_not_enabled(
    home: Path,
) -> None:
    first = _new_kernel()
    await first.start(ticker=False, follow=False)
    assert (await first.loader.install(BACKTRACK)).enabled
    await first.shutdown()
    code = first.paths.plugin_code("backtrack", "1.0.0")
    kimai = orjson.loads((code / "kimai.json").read_bytes())
    kimai["trigger"]["regex"] = r"^(\w+\s?)*(?<!!)$"
    (code / "kimai.json").write_bytes(orjson.dumps(kimai))

    second = _new_kernel()
    try:
        problems = await asyncio.wait_for(second.start(ticker=False, follow=False), NEVER)
        assert len(problems) == 1 and "installed copy of 'backtrack' is damaged" in problems[0]
        assert "lookbehind" in problems[0] and "reinstall it with --force" in problems[0]
        assert "backtrack" not in second.loader.runtimes
        seen = await _answered_at_once(second, FROZE_IT)
        assert not [e for e in seen if e["type"] == "tool_call"]
    finally:
        await asyncio.wait_for(second.shutdown(), NEVER)


# -- lifecycle hooks ----------------------------------------------------------------------


async def test_an_activate_that_never_ends_cannot_hold_start_up_or_its_first_use(
    home: Path,
) -> None:
    first = _new_kernel()
    await first.start(ticker=False, follow=False)
    assert (await first.loader.install(HOLDOUT)).enabled
    _hold(first, "activate")
    await first.shutdown()

    second = _new_kernel()
    notices = events_of(second)
    started = time.monotonic()
    try:
        # Its worker waits for its first use: start-up does not even run activate.
        problems = await asyncio.wait_for(second.start(ticker=False, follow=False), NEVER)
        assert problems == []
        assert second.loader.runtimes["holdout"].waiting
        # The first use runs it, and waits no longer than its hard deadline.
        session = second.open_session()
        outcome = await asyncio.wait_for(second.call_tool(session.id, "ping", {}), NEVER)
        took = time.monotonic() - started
        assert took < HOOK_DEADLINE + POLICY.stop_deadline + 1.0, took
        assert not outcome.ok
        assert outcome.error == f"could not start 'holdout': {_missed('activate')}"
        assert (second.paths.plugin_data("holdout") / "activate.held").exists()
        assert _missed("activate") in second.paths.plugin_log("holdout").read_text()
        assert second.loader.runtimes["holdout"].waiting  # stopped again: no worker left
        assert second.loader.runtimes["holdout"].supervisor.pid is None
        await _answered_at_once(second)
        told = [e["message"] for e in notices if e["type"] == "plugin_notice"]
        assert told == [f"could not start 'holdout': {_missed('activate')}"]
    finally:
        await asyncio.wait_for(second.shutdown(), NEVER)


async def test_a_deactivate_that_never_ends_cannot_hold_shutdown(home: Path) -> None:
    kernel = _new_kernel()
    await kernel.start(ticker=False, follow=False)
    assert (await kernel.loader.install(HOLDOUT)).enabled
    supervisor = kernel.loader.runtimes["holdout"].supervisor
    _hold(kernel, "deactivate")
    notices = events_of(kernel)
    started = time.monotonic()
    await asyncio.wait_for(kernel.shutdown(), NEVER)
    took = time.monotonic() - started
    assert took < POLICY.shutdown_deadline + 1.0, took
    assert supervisor.pid is None and supervisor.state == "stopped"
    assert (kernel.paths.plugin_data("holdout") / "deactivate.held").exists()
    told = [e["message"] for e in notices if e["type"] == "plugin_notice"]
    assert told == [_missed("deactivate")]
    assert _missed("deactivate") in kernel.paths.plugin_log("holdout").read_text()


async def test_shutdown_stops_every_plugin_at_once(home: Path, tmp_path: Path) -> None:
    """Three plugins holding deactivate cost one deadline, not three."""
    kernel = _new_kernel()
    await kernel.start(ticker=False, follow=False)
    for n in range(3):
        source = tmp_path / f"holdout{n}"
        shutil.copytree(HOLDOUT, source)
        for name in ("kimai.json", "package.json"):
            document = orjson.loads((source / name).read_bytes())
            document["name"] = f"holdout{n}"
            (source / name).write_bytes(orjson.dumps(document))
        tools = (source / "llm-tool.yaml").read_text().replace("name: ping", f"name: ping{n}")
        (source / "llm-tool.yaml").write_text(tools)
        data = kernel.paths.plugin_data(f"holdout{n}")
        data.mkdir(parents=True)
        (data / "hold.json").write_text('["deactivate"]')
        assert (await kernel.loader.install(source)).enabled
    started = time.monotonic()
    await asyncio.wait_for(kernel.shutdown(), NEVER)
    took = time.monotonic() - started
    assert took < POLICY.shutdown_deadline + 1.0, took
    assert all(
        (kernel.paths.plugin_data(f"holdout{n}") / "deactivate.held").exists() for n in range(3)
    )


async def test_hooks_that_never_end_cannot_hold_uninstall(kernel: Kernel) -> None:
    assert (await kernel.loader.install(HOLDOUT)).enabled
    _hold(kernel, "deactivate", "preuninstall")
    notices = events_of(kernel)
    started = time.monotonic()
    await asyncio.wait_for(kernel.loader.uninstall("holdout"), NEVER)
    took = time.monotonic() - started
    # deactivate + stop, then preuninstall (in a worker of its own) + stop
    bound = 2 * (HOOK_DEADLINE + POLICY.stop_deadline) + 1.0
    assert took < bound, took
    assert kernel.installed.get("holdout") is None
    assert not kernel.paths.plugin_data("holdout").exists()
    told = [e["message"] for e in notices if e["type"] == "plugin_notice"]
    assert told == [
        _missed("deactivate"),
        f"'holdout' preuninstall failed: {_missed('preuninstall')} (uninstalled anyway)",
    ]
    await _answered_at_once(kernel)


async def test_progress_still_extends_an_ordinary_tool_call(kernel: Kernel) -> None:
    """Only hooks changed: the faulty plugin's slow tool (2 s of steady progress against a
    1.5 s call deadline) still finishes."""
    assert (await kernel.loader.install(HOSTILE / "faulty")).enabled
    session = kernel.open_session()
    outcome = await asyncio.wait_for(kernel.call_tool(session.id, "fault", {"kind": "slow"}), NEVER)
    assert outcome.ok and outcome.text == "slow but steady", outcome.error
