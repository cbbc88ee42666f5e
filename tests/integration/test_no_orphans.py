"""No worker survives the kernel, even when the kernel is SIGKILLed mid-call."""

from __future__ import annotations

import os
import select
import signal
import subprocess
from pathlib import Path

import orjson
from support import DEETING, HOSTILE, REPO, run_deeting


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(fd)


def test_worker_dies_with_a_sigkilled_kernel_even_while_busy(home: Path) -> None:
    assert run_deeting("plugin", "install", str(HOSTILE / "faulty"), home=home).returncode == 0
    kernel = subprocess.Popen(
        [*DEETING, "--script", "-", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DEETING_HOME": str(home)},
        cwd=REPO,
    )
    assert kernel.stdin is not None and kernel.stdout is not None
    try:
        kernel.stdin.write(b"/fault kind=pid\n/fault kind=hang\n")
        kernel.stdin.flush()
        worker_pid = None
        for line in kernel.stdout:
            event = orjson.loads(line)
            if event["type"] == "tool_result" and event["ok"]:
                worker_pid = event["data"]["pid"]
            if event["type"] == "tool_call" and event["args"] == {"kind": "hang"}:
                break
        assert worker_pid is not None
        os.kill(kernel.pid, signal.SIGKILL)
        kernel.wait(timeout=10)
        assert _wait_gone(worker_pid), f"worker {worker_pid} outlived its kernel"
    finally:
        if kernel.poll() is None:
            kernel.kill()
            kernel.wait()
