"""Upgrades: the pointer swap, consent for added scopes, and the hot switch of a running
plugin under a steady stream of calls, with zero failed calls and the session intact.

The new version's code is put at versions/NAME/VERSION first, as the registry client does
after verifying a download. "Another process" (the CLI updater) is played by a second
Kernel, InstalledStore or GrantStore over the same files.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import DEETING, FAST_POLICY, FIXTURES, REPO, events_of

from deeting_tui.command_output import error_line
from deeting_tui.kernel.assistant import ToolOutcome
from deeting_tui.kernel.kernel import Kernel, Turn
from deeting_tui.kernel.permissions import GrantStore
from deeting_tui.kernel.plugins.installed import InstalledStore
from deeting_tui.kernel.plugins.loader import PluginError
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import Paths, resolve_paths
from deeting_tui.plugin.scopes import Scope, parse_scope

NAME = "upgrade-fixture"
V1 = FIXTURES / "upgrade_v1"
V2 = FIXTURES / "upgrade_v2"
V3 = FIXTURES / "upgrade_v3_more_scopes"
BROKEN = FIXTURES / "upgrade_broken"
PROC = parse_scope("filesystem:read:/proc")


def place(paths: Paths, source: Path, *, as_version: str | None = None) -> Path:
    """Put a plugin folder at versions/NAME/VERSION, as the registry client does after it
    verified and extracted a download (by default where its own manifest says)."""
    version = as_version or orjson.loads((source / "kimai.json").read_bytes())["version"]
    target = paths.plugin_code(NAME, version)
    shutil.copytree(source, target)
    return target


def variant(tmp_path: Path, source: Path, folder: str, extra_code: str) -> Path:
    """A copy of ``source`` whose src/index.py ends with ``extra_code`` (later definitions
    replace earlier ones)."""
    target = tmp_path / folder
    shutil.copytree(source, target)
    index = target / "src" / "index.py"
    index.write_text(index.read_text() + "\n\n" + extra_code + "\n")
    return target


async def install_v1(kernel: Kernel) -> None:
    place(kernel.paths, V1)
    report = await kernel.loader.install_prepared(NAME, "1.0.0", "registry test")
    assert report.enabled, report.problem


def running_version(kernel: Kernel) -> str | None:
    runtime = kernel.loader.runtimes.get(NAME)
    return runtime.spec.version if runtime else None


def versions_on_disk(paths: Paths) -> list[str]:
    folder = paths.plugins_dir / "versions" / NAME
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.005)


def _live_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state != "Z":  # a zombie has exited; only its parent's bookkeeping is left
            children.setdefault(int(ppid), []).append(int(entry.name))
    return children


def _descendants(root: int) -> set[int]:
    children = _live_children()
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def leftover_workers(kernel: Kernel) -> set[int]:
    """Processes under this test besides the forkserver and the workers of running plugins."""
    expected = {r.supervisor.pid for r in kernel.loader.runtimes.values()}
    launcher = getattr(kernel.launcher, "active", kernel.launcher)
    server = getattr(launcher, "server_pid", None)
    return _descendants(os.getpid()) - expected - {server}


async def assert_no_leftover_workers(kernel: Kernel) -> None:
    await wait_until(lambda: not leftover_workers(kernel), "no worker but the running ones")


def state_bytes(paths: Paths) -> bytes:
    return paths.plugin_state_file.read_bytes()


def served_by(seen: list[dict[str, Any]], version: str) -> list[dict[str, Any]]:
    """The data of every successful result the given version served, in order."""
    return [
        e["data"]
        for e in seen
        if e["type"] == "tool_result" and e["ok"] and e["data"]["version"] == version
    ]


def notices(seen: list[dict[str, Any]]) -> list[str]:
    return [e["message"] for e in seen if e["type"] == "plugin_notice"]


class CallStream:
    """Calls while something else happens: one after another through ``submit`` (``/count``
    and the ``how many?`` trigger, each answered with a reply), and bursts of three
    concurrent ``call_tool`` calls (no reply), until the block ends."""

    def __init__(self, kernel: Kernel, session_id: str) -> None:
        self.kernel = kernel
        self.session_id = session_id
        self.turns: list[Turn] = []
        self.bursts: list[list[ToolOutcome]] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> CallStream:
        self._tasks = [
            asyncio.create_task(self._back_to_back()),
            asyncio.create_task(self._in_bursts()),
        ]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _back_to_back(self) -> None:
        while not self._stop.is_set():
            text = "how many?" if len(self.turns) % 2 else "/count"
            self.turns.append(await self.kernel.submit(self.session_id, text))
            # A call that fails before reaching a worker never yields; without this a broken
            # switch would starve the loop (and hang the test) instead of failing it.
            await asyncio.sleep(0)

    async def _in_bursts(self) -> None:
        while not self._stop.is_set():
            calls = [self.kernel.call_tool(self.session_id, "count", {}) for _ in range(3)]
            self.bursts.append(list(await asyncio.gather(*calls)))
            await asyncio.sleep(0)  # as above

    @property
    def calls(self) -> int:
        return len(self.turns) + sum(len(b) for b in self.bursts)

    def failures(self) -> list[str]:
        failed = [e for t in self.turns for e in t.errors]
        failed += [o.error or "?" for b in self.bursts for o in b if not o.ok]
        return failed

    def burst_versions(self) -> list[list[str]]:
        return [[o.data["version"] for o in burst] for burst in self.bursts]


# -- upgrades of a plugin that is not running ----------------------------------------------


async def test_upgrade_of_a_stopped_plugin_swaps_the_pointer_keeps_previous_and_prunes(
    kernel: Kernel,
) -> None:
    await install_v1(kernel)
    await kernel.loader.disable(NAME)
    place(kernel.paths, V1, as_version="0.9.0")  # an older version left from before
    staging = kernel.paths.plugins_dir / "versions" / NAME / ".incoming"
    staging.mkdir()  # not a version: an updater's business, never pruned
    place(kernel.paths, V2)
    report = await kernel.loader.upgrade(NAME, "2.0.0")
    assert (report.old, report.new, report.hot) == ("1.0.0", "2.0.0", False)
    record = InstalledStore(kernel.paths.plugin_state_file).get(NAME)
    assert record is not None
    assert (record.version, record.previous, record.enabled) == ("2.0.0", "1.0.0", False)
    assert versions_on_disk(kernel.paths) == [".incoming", "1.0.0", "2.0.0"]
    assert NAME not in kernel.loader.runtimes
    await kernel.loader.enable(NAME)
    outcome = await kernel.call_tool(kernel.open_session().id, "count", {})
    assert outcome.data == {"version": "2.0.0", "count": 1, "inherited": None}


async def test_a_lower_version_needs_allow_downgrade(kernel: Kernel) -> None:
    place(kernel.paths, V2)
    assert (await kernel.loader.install_prepared(NAME, "2.0.0", "registry test")).enabled
    place(kernel.paths, V1)
    before = state_bytes(kernel.paths)
    with pytest.raises(PluginError) as refused:
        await kernel.loader.upgrade(NAME, "1.0.0")
    assert error_line(refused.value) == (
        "'upgrade-fixture' 1.0.0 is older than the installed 2.0.0 — pass --allow-downgrade "
        "to go back to it, or roll back — run: deeting plugin rollback upgrade-fixture"
    )
    assert state_bytes(kernel.paths) == before and running_version(kernel) == "2.0.0"
    with pytest.raises(PluginError, match=r"'upgrade-fixture' 2\.0\.0 is already the active"):
        await kernel.loader.upgrade(NAME, "2.0.0")
    report = await kernel.loader.upgrade(NAME, "1.0.0", allow_downgrade=True)
    assert (report.old, report.new, report.hot) == ("2.0.0", "1.0.0", True)
    assert running_version(kernel) == "1.0.0"


async def test_code_that_does_not_match_is_refused_and_nothing_changes(kernel: Kernel) -> None:
    await install_v1(kernel)
    place(kernel.paths, V2, as_version="2.0.1")
    before = state_bytes(kernel.paths)
    with pytest.raises(PluginError, match=r"manifest says 'upgrade-fixture' 2\.0\.0, not"):
        await kernel.loader.upgrade(NAME, "2.0.1")
    with pytest.raises(PluginError, match=r"no such folder"):
        await kernel.loader.upgrade(NAME, "3.1.0")
    with pytest.raises(PluginError, match="not a SemVer version"):
        await kernel.loader.upgrade(NAME, "../1.0.0")
    assert state_bytes(kernel.paths) == before and running_version(kernel) == "1.0.0"


# -- consent for added scopes --------------------------------------------------------------


async def _deny_all(name: str, scopes: list[Scope]) -> list[Scope]:
    return []


@pytest.mark.parametrize("ask_all", [None, _deny_all])
async def test_added_scopes_not_agreed_to_change_nothing(
    kernel: Kernel, ask_all: Callable[..., Any] | None
) -> None:
    await install_v1(kernel)
    supervisor = kernel.loader.runtimes[NAME].supervisor
    place(kernel.paths, V3)
    before = state_bytes(kernel.paths)
    with pytest.raises(PluginError) as refused:
        await kernel.loader.upgrade(NAME, "3.0.0", ask_all=ask_all)
    assert error_line(refused.value) == (
        "'upgrade-fixture' 3.0.0 needs permission 'filesystem:read:/proc', not granted; the old "
        "version (1.0.0) stays active — run: deeting plugin upgrade upgrade-fixture@3.0.0 "
        "--grant filesystem:read:/proc"
    )
    assert state_bytes(kernel.paths) == before
    assert kernel.grants.granted(NAME) == []
    assert not kernel.paths.grants_file.exists() or NAME not in orjson.loads(
        kernel.paths.grants_file.read_bytes()
    )
    assert kernel.loader.runtimes[NAME].supervisor is supervisor and supervisor.state == "ready"
    outcome = await kernel.call_tool(kernel.open_session().id, "count", {})
    assert outcome.ok and outcome.data["version"] == "1.0.0"
    await assert_no_leftover_workers(kernel)


@pytest.mark.parametrize("consent", ["grant", "yes", "ask_all"])
async def test_added_scopes_agreed_to_are_granted_and_the_upgrade_goes_on(
    kernel: Kernel, consent: str
) -> None:
    await install_v1(kernel)
    place(kernel.paths, V3)
    asked: list[list[Scope]] = []

    async def allow(name: str, scopes: list[Scope]) -> list[Scope]:
        asked.append(scopes)
        return scopes

    options: dict[str, Any] = {
        "grant": {"grant": ["filesystem:read:/proc"]},
        "yes": {"yes": True},
        "ask_all": {"ask_all": allow},
    }[consent]
    report = await kernel.loader.upgrade(NAME, "3.0.0", **options)
    assert report.hot
    assert asked == ([[PROC]] if consent == "ask_all" else [])
    assert GrantStore(kernel.paths.grants_file).granted(NAME) == [PROC]
    assert running_version(kernel) == "3.0.0"
    outcome = await kernel.call_tool(kernel.open_session().id, "count", {})
    assert outcome.data["inherited"] == {"count": 0, "from": "1.0.0"}


async def test_a_grant_for_a_scope_the_new_version_does_not_declare_is_refused(
    kernel: Kernel,
) -> None:
    await install_v1(kernel)
    place(kernel.paths, V3)
    with pytest.raises(PluginError, match="--grant network: 'upgrade-fixture' does not ask for"):
        await kernel.loader.upgrade(NAME, "3.0.0", grant=["network"])
    assert running_version(kernel) == "1.0.0" and kernel.grants.granted(NAME) == []


# -- the hot switch ------------------------------------------------------------------------


async def test_hot_upgrade_under_a_steady_stream_of_calls_drops_none(kernel: Kernel) -> None:
    await install_v1(kernel)
    place(kernel.paths, V2)
    session = kernel.open_session()
    seen = events_of(kernel)
    data_dir = kernel.paths.plugin_data(NAME)
    old = kernel.loader.runtimes[NAME].supervisor

    slow = asyncio.create_task(kernel.call_tool(session.id, "slow", {}))
    await wait_until(lambda: (data_dir / "slow-started").exists(), "the slow call to start")
    async with CallStream(kernel, session.id) as stream:
        await wait_until(lambda: len(served_by(seen, "1.0.0")) >= 30, "calls served by 1.0.0")
        served_before = max(r["count"] for r in served_by(seen, "1.0.0"))
        upgrade = asyncio.create_task(kernel.upgrade_plugin(NAME, "2.0.0"))
        await wait_until(lambda: running_version(kernel) == "2.0.0", "the switch")
        await wait_until(lambda: len(served_by(seen, "2.0.0")) >= 30, "calls served by 2.0.0")
        # The slow call is still running in the old worker, which waits for it.
        assert not slow.done() and not upgrade.done() and old.state == "ready"
        (data_dir / "slow-release").touch()
        report = await upgrade
        assert old.state == "stopped"
        bursts_before_return = len(stream.bursts)
        await wait_until(lambda: len(stream.bursts) > bursts_before_return + 10, "more bursts")

    assert (report.old, report.new, report.hot, report.drained) == ("1.0.0", "2.0.0", True, True)
    slow_outcome = await slow
    assert slow_outcome.ok and slow_outcome.data["version"] == "1.0.0"
    assert stream.failures() == []
    assert [e for e in seen if e["type"] == "error"] == []

    # One after another: 1.0.0 until the switch, 2.0.0 from then on, never back.
    replies = [e["text"].split()[0] for e in seen if e["type"] == "reply"]
    assert replies == sorted(replies) and {"1.0.0", "2.0.0"} <= set(replies)
    # Concurrent bursts: none after a burst that 2.0.0 served reaches 1.0.0 again.
    bursts = stream.burst_versions()
    assert all(max(a) <= min(b) for a, b in itertools.pairwise(bursts))
    assert all(v == ["2.0.0"] * 3 for v in bursts[bursts_before_return + 1 :])

    # preupgrade's count reached postupgrade, and 2.0.0 counts on from it.
    by_v1, by_v2 = served_by(seen, "1.0.0"), served_by(seen, "2.0.0")
    handed = by_v2[0]["inherited"]
    assert handed["from"] == "1.0.0"
    assert served_before <= handed["count"] <= max(r["count"] for r in by_v1)
    assert all(r["inherited"] == handed for r in by_v2)
    assert sorted(r["count"] for r in by_v2) == list(
        range(handed["count"] + 1, handed["count"] + 1 + len(by_v2))
    )

    # The session holds every event, in the store as well as in what listeners heard.
    kinds = Counter(e.kind for e in kernel.sessions.events(session.id))
    assert kinds["tool_call"] == kinds["tool_result"] == stream.calls + 1
    assert kinds["user"] == kinds["reply"] == len(stream.turns)
    assert kinds["error"] == 0
    stored = kernel.sessions.events(session.id)
    assert all(e.payload["ok"] for e in stored if e.kind == "tool_result")

    assert "upgraded upgrade-fixture 1.0.0 → 2.0.0" in notices(seen)
    assert (data_dir / "deactivated-1.0.0").exists()  # the old version was deactivated
    record = InstalledStore(kernel.paths.plugin_state_file).get(NAME)
    assert record is not None and (record.version, record.previous) == ("2.0.0", "1.0.0")
    await assert_no_leftover_workers(kernel)


async def test_a_call_that_reaches_a_replaced_worker_unsent_is_served_by_the_new_one(
    kernel: Kernel,
) -> None:
    """A call that picked the old worker just before the switch but was not sent yet (it was
    waiting for that worker to be ready) must not fail when the old worker stops."""
    await install_v1(kernel)
    old = kernel.loader.runtimes[NAME].supervisor
    place(kernel.paths, V2)
    await kernel.loader.upgrade(NAME, "2.0.0")
    assert old.state == "stopped"
    outcome = await kernel._invoke(old, "count", {})  # the call path after its routing step
    assert outcome.ok and outcome.data["version"] == "2.0.0"
    await kernel.loader.disable(NAME)
    outcome = await kernel._invoke(old, "count", {})  # no successor: the honest error
    assert not outcome.ok and "is not running" in (outcome.error or "")


async def _install_with_breaking_preupgrade(kernel: Kernel, tmp_path: Path) -> None:
    v1 = variant(
        tmp_path, V1, "v1", "def preupgrade(ctx):\n    raise RuntimeError('state will not pack')"
    )
    place(kernel.paths, v1)
    assert (await kernel.loader.install_prepared(NAME, "1.0.0", "registry test")).enabled
    place(kernel.paths, V2)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("start", r"starting it failed: .*broken on purpose"),
        ("postupgrade", r"postupgrade failed: .*cannot take this state"),
        ("preupgrade", r"preupgrade \(in the old version\) failed: .*state will not pack"),
    ],
)
async def test_a_new_version_that_fails_leaves_the_old_one_serving(
    kernel: Kernel, tmp_path: Path, breakage: str, message: str
) -> None:
    if breakage == "preupgrade":
        await _install_with_breaking_preupgrade(kernel, tmp_path)
    else:
        await install_v1(kernel)
        extra = "def postupgrade(ctx, state):\n    raise RuntimeError('cannot take this state')"
        place(kernel.paths, BROKEN if breakage == "start" else variant(tmp_path, V2, "v2", extra))
    supervisor = kernel.loader.runtimes[NAME].supervisor
    before = state_bytes(kernel.paths)
    session = kernel.open_session()
    seen = events_of(kernel)
    async with CallStream(kernel, session.id) as stream:
        await wait_until(lambda: len(served_by(seen, "1.0.0")) >= 10, "calls before")
        with pytest.raises(
            PluginError,
            match=rf"^could not upgrade 'upgrade-fixture' to 2\.0\.0: {message}.* — 1\.0\.0 "
            r"keeps running$",
        ):
            await kernel.upgrade_plugin(NAME, "2.0.0")
        after = len(served_by(seen, "1.0.0"))
        await wait_until(lambda: len(served_by(seen, "1.0.0")) >= after + 10, "calls after")
    assert stream.failures() == []
    assert served_by(seen, "2.0.0") == [] and notices(seen) == []
    assert kernel.loader.runtimes[NAME].supervisor is supervisor and supervisor.state == "ready"
    assert state_bytes(kernel.paths) == before
    assert versions_on_disk(kernel.paths) == ["1.0.0", "2.0.0"]  # the caller cleans up
    await assert_no_leftover_workers(kernel)


async def test_a_tool_name_taken_by_another_plugin_stops_the_switch(
    kernel: Kernel, tmp_path: Path
) -> None:
    await kernel.loader.install(FIXTURES / "good_plugin")  # brings the tool 'echo'
    await install_v1(kernel)
    v2 = tmp_path / "v2"
    shutil.copytree(V2, v2)
    with (v2 / "llm-tool.yaml").open("a") as tools:
        tools.write(
            "- name: echo\n  description: Also echo.\n"
            "  parameters: {type: object, properties: {}}\n"
        )
    place(kernel.paths, v2)
    with pytest.raises(PluginError, match=r"brings tool 'echo', which 'echo-fixture' already"):
        await kernel.loader.upgrade(NAME, "2.0.0")
    session = kernel.open_session()
    assert (await kernel.call_tool(session.id, "count", {})).data["version"] == "1.0.0"
    assert (await kernel.call_tool(session.id, "echo", {"text": "hi"})).data == {"text": "hi"}
    assert kernel.loader.record(NAME).version == "1.0.0"
    await assert_no_leftover_workers(kernel)


async def test_cancelling_an_upgrade_while_the_old_worker_drains_leaves_no_worker(
    kernel: Kernel,
) -> None:
    await install_v1(kernel)
    place(kernel.paths, V2)
    session = kernel.open_session()
    data_dir = kernel.paths.plugin_data(NAME)
    old = kernel.loader.runtimes[NAME].supervisor
    slow = asyncio.create_task(kernel.call_tool(session.id, "slow", {}))
    await wait_until(lambda: (data_dir / "slow-started").exists(), "the slow call to start")
    upgrade = asyncio.create_task(kernel.loader.upgrade(NAME, "2.0.0"))
    await wait_until(lambda: kernel.loader.retiring != [], "the old worker to be draining")
    upgrade.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upgrade
    assert old.state == "stopped" and kernel.loader.retiring == []
    assert not (await slow).ok  # its worker was stopped under it: that is what cancel means
    assert running_version(kernel) == "2.0.0" and kernel.loader.record(NAME).version == "2.0.0"
    await assert_no_leftover_workers(kernel)


# -- rollback ------------------------------------------------------------------------------


async def test_rollback_goes_back_to_the_kept_version_and_keeps_the_other(
    kernel: Kernel,
) -> None:
    await install_v1(kernel)
    with pytest.raises(
        PluginError, match=r"'upgrade-fixture' has no previous version to roll back to"
    ):
        await kernel.loader.rollback(NAME)
    place(kernel.paths, V2)
    await kernel.loader.upgrade(NAME, "2.0.0")
    session = kernel.open_session()
    assert (await kernel.call_tool(session.id, "count", {})).data["version"] == "2.0.0"

    seen = events_of(kernel)
    report = await kernel.rollback_plugin(NAME)
    assert (report.old, report.new, report.hot) == ("2.0.0", "1.0.0", True)
    assert notices(seen) == ["upgraded upgrade-fixture 2.0.0 → 1.0.0"]
    record = kernel.loader.record(NAME)
    assert (record.version, record.previous) == ("1.0.0", "2.0.0")
    assert versions_on_disk(kernel.paths) == ["1.0.0", "2.0.0"]
    assert (await kernel.call_tool(session.id, "count", {})).data["version"] == "1.0.0"

    report = await kernel.loader.rollback(NAME)  # and forth again
    assert (report.old, report.new) == ("1.0.0", "2.0.0")
    shutil.rmtree(kernel.paths.plugin_code(NAME, "1.0.0"))
    with pytest.raises(PluginError) as refused:
        await kernel.loader.rollback(NAME)
    assert re.search(r"no such folder .* deeting plugin install", error_line(refused.value))
    assert kernel.loader.record(NAME).version == "2.0.0" and running_version(kernel) == "2.0.0"


# -- a running kernel follows another process ----------------------------------------------


async def test_the_kernel_follows_an_upgrade_made_by_another_process(kernel: Kernel) -> None:
    await install_v1(kernel)
    place(kernel.paths, V2)
    session = kernel.open_session()
    seen = events_of(kernel)
    updater = Kernel(kernel.paths)  # what `deeting plugin upgrade` builds: starts nothing
    try:
        async with CallStream(kernel, session.id) as stream:
            await wait_until(lambda: len(served_by(seen, "1.0.0")) >= 10, "calls before")
            report = await updater.loader.upgrade(NAME, "2.0.0")
            assert not report.hot  # not running in the updater: only the pointer moved
            await wait_until(lambda: running_version(kernel) == "2.0.0", "the kernel to follow")
            await wait_until(lambda: len(served_by(seen, "2.0.0")) >= 10, "calls after")
    finally:
        await updater.shutdown()
    assert stream.failures() == []
    upgraded = "upgraded upgrade-fixture 1.0.0 → 2.0.0"  # told once the old worker stopped
    await wait_until(lambda: upgraded in notices(seen), "the notice")
    assert served_by(seen, "2.0.0")[0]["inherited"]["from"] == "1.0.0"
    kinds = Counter(e.kind for e in kernel.sessions.events(session.id))
    assert kinds["tool_result"] == stream.calls and kinds["error"] == 0
    await assert_no_leftover_workers(kernel)


async def test_a_followed_version_needing_more_scopes_waits_for_the_grant(
    kernel: Kernel,
) -> None:
    await install_v1(kernel)
    place(kernel.paths, V3)
    seen = events_of(kernel)
    InstalledStore(kernel.paths.plugin_state_file).set_version(NAME, "3.0.0", previous="1.0.0")
    expected = (
        "'upgrade-fixture' 3.0.0 needs permission 'filesystem:read:/proc', not granted; 1.0.0 "
        "keeps running"
    )
    await wait_until(lambda: expected in notices(seen), "the refusal to be told")
    assert running_version(kernel) == "1.0.0"
    assert (await kernel.call_tool(kernel.open_session().id, "count", {})).ok

    GrantStore(kernel.paths.grants_file).grant(NAME, [PROC])  # `deeting plugin grant`
    await wait_until(lambda: running_version(kernel) == "3.0.0", "the kernel to follow")
    assert kernel.grants.granted(NAME) == [PROC]
    assert notices(seen).count(expected) == 1  # told once, not at every look
    await assert_no_leftover_workers(kernel)


async def test_the_kernel_stops_and_starts_what_another_process_changed(
    kernel: Kernel,
) -> None:
    await install_v1(kernel)
    seen = events_of(kernel)
    other = InstalledStore(kernel.paths.plugin_state_file)
    other.set_enabled(NAME, False)
    stopped = "stopped upgrade-fixture: it was disabled elsewhere"
    await wait_until(lambda: stopped in notices(seen), "the plugin to stop")
    assert NAME not in kernel.loader.runtimes
    other.set_enabled(NAME, True)
    # Enabled as at a start: its worker waits for the plugin's first use.
    await wait_until(lambda: "enabled upgrade-fixture 1.0.0" in notices(seen), "an enable")
    assert kernel.loader.runtimes[NAME].waiting
    assert (await kernel.call_tool(kernel.open_session().id, "count", {})).ok
    assert not kernel.loader.runtimes[NAME].waiting
    other.remove(NAME)
    removed = "stopped upgrade-fixture: it was uninstalled elsewhere"
    await wait_until(lambda: removed in notices(seen), "the plugin to stop again")
    assert NAME not in kernel.loader.runtimes
    await assert_no_leftover_workers(kernel)


async def test_a_damaged_state_file_is_reported_and_the_plugins_keep_running(
    kernel: Kernel,
) -> None:
    await install_v1(kernel)
    seen = events_of(kernel)
    good = state_bytes(kernel.paths)
    kernel.paths.plugin_state_file.write_bytes(b'{"plugins": ')
    await wait_until(lambda: any("unreadable" in n for n in notices(seen)), "the notice")
    assert "(running plugins are left as they are)" in notices(seen)[-1]
    assert (await kernel.call_tool(kernel.open_session().id, "count", {})).ok
    kernel.paths.plugin_state_file.write_bytes(good + b"\n")  # repaired (and changed)
    place(kernel.paths, V2)
    InstalledStore(kernel.paths.plugin_state_file).set_version(NAME, "2.0.0", previous="1.0.0")
    await wait_until(lambda: running_version(kernel) == "2.0.0", "following to resume")


async def test_shutdown_ends_the_follower(home: Path) -> None:
    k = Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)
    await k.start(ticker=False)
    following = k._following
    assert following is not None and not following.done()
    await k.shutdown()
    assert following.done() and k._following is None
    other = Kernel(resolve_paths())
    await other.start(plugins=False, ticker=False)  # a kernel that runs no plugin follows none
    assert other._following is None
    await other.shutdown()


async def test_a_running_deeting_script_follows_an_upgrade_and_drops_no_call(
    home: Path,
) -> None:
    """The issue's demonstration: `deeting --script` runs; another process upgrades."""
    paths = resolve_paths()
    setup = Kernel(paths)
    await install_v1(setup)
    await setup.shutdown()
    place(paths, V2)
    env = {**os.environ, "DEETING_HOME": str(home)}
    env.pop("DEETING_DEBUG", None)
    script = await asyncio.create_subprocess_exec(
        *DEETING,
        "--script",
        "-",
        "--json",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    assert script.stdin is not None and script.stdout is not None
    events: list[dict[str, Any]] = []

    async def one_call(line: str) -> str:
        """Send a line, read its events up to the reply; the version that answered."""
        assert script.stdin is not None and script.stdout is not None
        script.stdin.write(line.encode() + b"\n")
        await script.stdin.drain()
        while True:
            raw = await asyncio.wait_for(script.stdout.readline(), 30)
            assert raw, "deeting --script ended early"
            events.append(orjson.loads(raw))
            if events[-1]["type"] in ("reply", "error"):
                return str(events[-1].get("text") or events[-1].get("message")).split()[0]

    answered = [await one_call("/count" if i % 2 else "how many?") for i in range(10)]
    updater = Kernel(paths)  # `deeting plugin upgrade`, after its download was verified
    try:
        assert not (await updater.loader.upgrade(NAME, "2.0.0")).hot
    finally:
        await updater.shutdown()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while answered[-1] != "2.0.0" and loop.time() < deadline:
        answered.append(await one_call("/count" if len(answered) % 2 else "how many?"))
    answered += [await one_call("/count") for _ in range(5)]
    script.stdin.close()
    _, stderr = await asyncio.wait_for(script.communicate(), 30)
    assert script.returncode == 0, stderr.decode()
    assert answered == sorted(answered) and answered[0] == "1.0.0" and answered[-1] == "2.0.0"
    assert [e for e in events if e["type"] == "error"] == []
    results = [e for e in events if e["type"] == "tool_result"]
    assert len(results) == len(answered) and all(e["ok"] for e in results)
    assert len({e["session_id"] for e in events}) == 1
    kernel = Kernel(paths)
    try:
        kinds = Counter(e.kind for e in kernel.sessions.events(events[0]["session_id"]))
    finally:
        await kernel.shutdown()
    assert kinds["user"] == kinds["tool_result"] == kinds["reply"] == len(answered)


async def test_a_new_version_missing_a_module_says_where_it_belongs(
    kernel: Kernel, tmp_path: Path
) -> None:
    await install_v1(kernel)
    place(kernel.paths, variant(tmp_path, V2, "v2", "import no_such_module_for_deeting"))
    with pytest.raises(PluginError) as refused:
        await kernel.upgrade_plugin(NAME, "2.0.0")
    message = str(refused.value)
    assert "starting it failed: " in message and "No module named" in message
    assert "vendor the module into src/" in message
    assert message.endswith("— 1.0.0 keeps running")
    assert kernel.loader.runtimes[NAME].spec.version == "1.0.0"
