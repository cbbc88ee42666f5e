"""An updater killed at each step of an upgrade: the previous version still loads and runs,
and the next updater cleans what the dead one left, then finishes the job.

The kill is real: an updater process runs with one step of the pipeline replaced by
``os._exit`` (no cleanup handler, no ``finally`` runs — as with SIGKILL or a power cut).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from registry_support import NOW, PLUGIN, TestRegistry, client_at, installed_of, plugins_with

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths

KILLED = 137

UPDATER = textwrap.dedent(
    """
    import asyncio, os, sys
    from datetime import datetime, UTC

    import deeting_tui.kernel.plugins.installed as installed
    import deeting_tui.store.staging as staging
    from deeting_tui.kernel.kernel import Kernel
    from deeting_tui.paths import resolve_paths
    from deeting_tui.store.client import RegistryClient

    step, now = sys.argv[1], datetime.fromtimestamp(float(sys.argv[2]), UTC)

    def killed(*args, **kwargs):
        os._exit(137)

    if step == "unpacking":          # the archive is in staging, half unpacked
        staging.extract_zip = killed
    elif step == "syncing-files":    # unpacked, not yet synced nor renamed into place
        staging._fsync_tree = killed
    elif step == "renamed":          # the new version is in place, the pointer not swapped
        staging.fsync_dir = killed
    elif step == "swapping":         # in the middle of writing the new pointer
        real_replace = os.replace
        def replace(src, dst, *args, **kwargs):
            if str(dst).endswith("state.json") and "plugins" in str(dst):
                os._exit(137)
            return real_replace(src, dst, *args, **kwargs)
        os.replace = replace

    async def main():
        kernel = Kernel(resolve_paths())
        try:
            kernel.plugins.registry = RegistryClient(kernel.paths, clock=lambda: now)
            await kernel.plugins.upgrade(sys.argv[3])
        finally:
            await kernel.shutdown()

    asyncio.run(main())
    """
)

STEPS = ["unpacking", "syncing-files", "renamed", "swapping"]


async def _echo_version(home: Path) -> str:
    """Start a fresh kernel on ``home`` (as deeting would) and ask the plugin for its version."""
    kernel = Kernel(resolve_paths(), assistant=OfflineAssistant())
    try:
        await kernel.start(ticker=False)
        record = kernel.installed.get(PLUGIN)
        assert record is not None and PLUGIN in kernel.loader.runtimes
        outcome = await kernel.call_tool(kernel.open_session().id, "echo", {"text": "hi"})
        assert outcome.ok, outcome.error
        return record.version
    finally:
        await kernel.shutdown()


@pytest.mark.parametrize("step", STEPS)
async def test_a_kill_at_each_step_of_an_upgrade(
    step: str, home: Path, cli_kernel: Kernel, registry: TestRegistry
) -> None:
    client = client_at(home)
    await client.sync(installed_of(cli_kernel), registry.url, registry.root_file)
    await plugins_with(cli_kernel, client).install(PLUGIN)
    registry.add("1.1.0")
    registry.publish()
    await client.sync(installed_of(cli_kernel))
    await cli_kernel.shutdown()

    env = {**os.environ, "DEETING_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", UPDATER, step, str(NOW.timestamp()), PLUGIN],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == KILLED, done.stderr

    # The previous version is still the active one, and it loads and answers.
    assert await _echo_version(home) == "1.0.0"

    # The next updater, some time later, removes the dead one's leftovers, then upgrades.
    plugins = resolve_paths().plugins_dir
    an_hour_ago = time.time() - 3600
    for temp in plugins.glob(".state.json.*"):
        os.utime(temp, (an_hour_ago, an_hour_ago))
    kernel = Kernel(resolve_paths(), assistant=OfflineAssistant())
    try:
        report = await plugins_with(kernel, client_at(home)).upgrade(PLUGIN)
    finally:
        await kernel.shutdown()
    assert (report.old, report.new) == ("1.0.0", "1.1.0")
    assert list((plugins / ".staging").iterdir()) == []
    assert sorted(p.name for p in (plugins / "versions" / PLUGIN).iterdir()) == ["1.0.0", "1.1.0"]
    assert [p.name for p in plugins.iterdir() if p.name.startswith(".state.json")] == []
    assert await _echo_version(home) == "1.1.0"
