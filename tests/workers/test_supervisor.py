"""Supervision pieces that need no worker: the crash-loop guard and exit descriptions;
plus caller-side cancellation against a real worker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any

import pytest
from support import HOSTILE

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.workers.launcher import describe_exit
from deeting_tui.workers.supervisor import (
    MAX_PROGRESS_MESSAGE,
    CrashLoopGuard,
    _progress_report,
)


def test_crash_loop_guard_counts_only_inside_the_window() -> None:
    now = [0.0]
    guard = CrashLoopGuard(limit=3, window=300, clock=lambda: now[0])
    guard.record()
    now[0] = 200
    guard.record()
    now[0] = 301  # the first crash has left the window
    assert guard.record() == 2 and not guard.tripped
    now[0] = 302
    assert guard.record() == 3 and guard.tripped


def test_exit_descriptions() -> None:
    assert describe_exit(3 << 8) == "exited with code 3"
    assert describe_exit(signal.SIGKILL) == "was killed by signal 9 (SIGKILL)"


async def test_caller_cancellation_reaches_the_worker(kernel: Kernel) -> None:
    await kernel.loader.install(HOSTILE / "faulty", yes=True)
    supervisor = kernel.loader.runtimes["faulty"].supervisor
    call = asyncio.ensure_future(supervisor.invoke("fault", {"kind": "slow"}))
    await asyncio.sleep(0)  # let the request go out
    call.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await call
    # The async tool was cancelled inside the worker, which stays alive and serves again.
    pid = supervisor.pid
    result = await supervisor.invoke("ok", {"n": 9})
    assert result["text"] == "ok 9" and supervisor.pid == pid
    assert pid is not None and os.getpgid(pid) == pid  # a session of its own


async def test_failed_postinstall_leaves_nothing_behind(kernel: Kernel) -> None:
    from deeting_tui.kernel.plugins.loader import PluginError

    try:
        await kernel.loader.install(HOSTILE / "bad-postinstall", yes=True)
    except PluginError as exc:
        assert "postinstall failed on purpose" in str(exc)
    else:
        raise AssertionError("install should have failed")
    assert kernel.installed.get("bad-postinstall") is None
    assert not (kernel.paths.plugins_dir / "versions" / "bad-postinstall").exists()
    assert not kernel.paths.plugin_data("bad-postinstall").exists()


@pytest.mark.parametrize(
    ("params", "report"),
    [
        ({"fraction": 0.5, "message": "half"}, (0.5, "half")),
        ({"fraction": None}, (None, "")),
        ({"fraction": 1, "message": "  many\n  lines\tjoined "}, (1.0, "many lines joined")),
        ({"fraction": 0, "message": "x" * 500}, (0.0, "x" * MAX_PROGRESS_MESSAGE)),
        ({"fraction": 1.5}, None),
        ({"fraction": -0.1}, None),
        ({"fraction": float("nan")}, None),
        ({"fraction": True}, None),
        ({"fraction": "0.5"}, None),
        ({"fraction": 0.5, "message": 7}, None),
    ],
)
def test_progress_reports_from_the_pipe_are_checked(
    params: dict[str, Any], report: tuple[float | None, str] | None
) -> None:
    assert _progress_report(params) == report
