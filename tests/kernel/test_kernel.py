"""Routing, lifecycle and sessions through the real kernel and real workers."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from support import FAST_POLICY, FIXTURES, HOSTILE, OFFICIAL, events_of

from deeting_tui.command_output import cli_hint
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.plugins.loader import PluginError
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths

GOOD = FIXTURES / "good_plugin"


def _copy_with(tmp_path: Path, source: Path, folder: str, **kimai_changes: object) -> Path:
    target = tmp_path / folder
    shutil.copytree(source, target)
    kimai = orjson.loads((target / "kimai.json").read_bytes())
    kimai.update(kimai_changes)
    (target / "kimai.json").write_bytes(orjson.dumps(kimai))
    return target


async def test_trigger_and_direct_call_reach_the_tool(kernel: Kernel) -> None:
    await kernel.loader.install(GOOD)
    session = kernel.open_session()
    seen = events_of(kernel)
    assert not (await kernel.submit(session.id, "echo hello there")).failed
    assert not (await kernel.submit(session.id, "/echo text=again")).failed
    assert not (await kernel.submit(session.id, "/add a=2 b=3.5")).failed
    replies = [e["text"] for e in seen if e["type"] == "reply"]
    assert replies[:2] == ["hello there", "again"]
    results = [e for e in seen if e["type"] == "tool_result"]
    assert results[0]["data"] == {"text": "hello there"} and results[0]["ok"]
    assert results[2]["data"] == {"sum": 5.5}
    assert all(e["session_id"] == session.id for e in seen)


async def test_free_text_gets_the_offline_help(kernel: Kernel) -> None:
    await kernel.loader.install(GOOD)
    session = kernel.open_session()
    seen = events_of(kernel)
    turn = await kernel.submit(session.id, "what can you do?")
    assert not turn.failed
    help_text = seen[-1]["text"]
    assert (
        "- `/echo text=…` — " in help_text
        and "matching the pattern `^echo (?P<text>.+)$`" in help_text
    )


async def test_bad_arguments_are_refused_before_the_plugin(kernel: Kernel) -> None:
    await kernel.loader.install(GOOD)
    session = kernel.open_session()
    turn = await kernel.submit(session.id, "/add a=1 b=two")
    assert turn.failed and "invalid arguments" in turn.errors[0] and "'two'" in turn.errors[0]
    turn = await kernel.submit(session.id, "/add a=1")
    assert turn.failed and "'b' is a required property" in turn.errors[0]


async def test_unknown_slash_command_fails_with_known_tools(kernel: Kernel) -> None:
    await kernel.loader.install(GOOD)
    session = kernel.open_session()
    turn = await kernel.submit(session.id, "/nope x=1")
    assert turn.failed and "unknown tool '/nope'" in turn.errors[0] and "/echo" in turn.errors[0]


async def test_higher_priority_trigger_wins(kernel: Kernel, tmp_path: Path) -> None:
    low = _copy_with(
        tmp_path, GOOD, "low", trigger={"regex": "^echo (?P<text>.+)$", "priority": 10}
    )
    await kernel.loader.install(low)
    calc = _copy_with(
        tmp_path,
        OFFICIAL / "calc",
        "calc",
        trigger={"regex": "^echo (?P<expr>.+)$", "priority": 90},
    )
    await kernel.loader.install(calc)
    session = kernel.open_session()
    seen = events_of(kernel)
    await kernel.submit(session.id, "echo 2*21")
    assert [e["plugin"] for e in seen if e["type"] == "tool_call"] == ["calc"]


async def test_tool_name_conflict_is_refused_at_enable(kernel: Kernel, tmp_path: Path) -> None:
    await kernel.loader.install(GOOD)
    twin = _copy_with(tmp_path, GOOD, "twin", name="echo-twin")
    package = orjson.loads((twin / "package.json").read_bytes())
    (twin / "package.json").write_bytes(orjson.dumps({**package, "name": "echo-twin"}))
    report = await kernel.loader.install(twin)
    assert not report.enabled and "already provides" in (report.problem or "")
    assert "echo-twin" not in kernel.loader.runtimes


async def test_missing_grant_installs_but_does_not_enable(kernel: Kernel) -> None:
    report = await kernel.loader.install(HOSTILE / "needs-net")
    assert not report.enabled
    assert report.problem and report.hint is not None
    assert cli_hint(report.hint) == "deeting plugin grant needs-net network:api.example.com"
    kernel.grants.grant("needs-net", kernel.loader.spec("needs-net").permissions)
    await kernel.loader.enable("needs-net")
    assert "needs-net" in kernel.loader.runtimes


async def test_reinstall_needs_force_and_uninstall_removes_everything(kernel: Kernel) -> None:
    await kernel.loader.install(OFFICIAL / "notes")
    session = kernel.open_session()
    assert not (await kernel.submit(session.id, "note: remember the milk")).failed
    data_dir = kernel.paths.plugin_data("notes")
    assert any(data_dir.iterdir())
    with pytest.raises(PluginError, match="already installed — pass --force"):
        await kernel.loader.install(OFFICIAL / "notes")
    await kernel.loader.install(OFFICIAL / "notes", force=True)
    await kernel.loader.uninstall("notes")
    assert not data_dir.exists()
    assert not (kernel.paths.plugins_dir / "versions" / "notes").exists()
    assert kernel.installed.get("notes") is None


async def test_state_is_restored_at_start(home: Path) -> None:
    paths = resolve_paths()
    first = Kernel(paths, assistant=OfflineAssistant(), policy=FAST_POLICY)
    await first.start(ticker=False)
    await first.loader.install(GOOD)
    await first.loader.install(OFFICIAL / "calc")
    await first.loader.disable("calc")
    session = first.open_session()
    await first.submit(session.id, "echo one")
    await first.shutdown()

    second = Kernel(paths, assistant=OfflineAssistant(), policy=FAST_POLICY)
    assert await second.start(ticker=False) == []
    try:
        assert set(second.loader.runtimes) == {"echo-fixture"}
        resumed = second.open_session(session.id)
        await second.submit(resumed.id, "echo two")
        texts = [e.payload.get("text") for e in second.sessions.events(session.id, ["reply"])]
        assert texts == ["one", "two"]
    finally:
        await second.shutdown()


async def test_clock_gets_ticks_and_streams_when_a_timer_fires(kernel: Kernel) -> None:
    await kernel.loader.install(OFFICIAL / "clock")
    session = kernel.open_session()
    seen = events_of(kernel)
    assert not (await kernel.submit(session.id, "/timer duration=1s label=tea")).failed
    due = next(e for e in seen if e["type"] == "tool_result")["data"]["due_epoch"]
    await kernel.bus.publish("system.tick", {"ts": due + 0.5})
    # The tick is a notification; the stream comes back on the worker's own time.
    await kernel.submit(session.id, "/now")
    streams = [e for e in seen if e["type"] == "stream"]
    assert streams and streams[0]["topic"] == "clock.timer" and "tea" in str(streams[0]["payload"])


async def test_image_without_a_handler_is_an_error(kernel: Kernel, tmp_path: Path) -> None:
    picture = tmp_path / "p.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n")
    session = kernel.open_session()
    turn = await kernel.submit(session.id, f"/image {picture}")
    assert turn.failed and "no plugin handles images" in turn.errors[0]
    turn = await kernel.submit(session.id, f"/image {tmp_path / 'missing.png'}")
    assert turn.failed and "No such file" in turn.errors[0]


async def test_a_turn_is_in_the_store_when_submit_returns(kernel: Kernel) -> None:
    from deeting_tui.kernel.sessions.store import SessionStore

    await kernel.loader.install(GOOD)
    session = kernel.open_session()
    await kernel.submit(session.id, "echo stored")
    with SessionStore(kernel.sessions.path) as other_process_view:
        kinds = [e.kind for e in other_process_view.events(session.id)]
    assert kinds == ["user", "tool_call", "tool_result", "reply"]


async def test_history_that_cannot_be_saved_fails_the_turn_visibly(
    kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deeting_tui.kernel.sessions.database import SessionStoreError

    await kernel.loader.install(GOOD)
    session = kernel.open_session()
    seen = events_of(kernel)

    def disk_full(events: object) -> list[int]:
        raise SessionStoreError("database or disk is full")

    monkeypatch.setattr(kernel.sessions, "append_encoded", disk_full)
    turn = await kernel.submit(session.id, "echo lost")
    assert turn.failed
    assert any("could not be saved" in message for message in turn.errors)
    errors = [e for e in seen if e["type"] == "error"]
    assert errors and "database or disk is full" in errors[0]["message"]
    replies = [e["text"] for e in seen if e["type"] == "reply"]
    assert replies == ["lost"]  # the work itself went on
