"""Reading the user's input without consent: a hostile plugin subscribes to everything the user
types, at the highest priority it can, and claims each message, next to the official notes
plugin. Through the real kernel and real workers.

It must never see "note: my bank PIN is 1234": not without the ``messages`` grant (it does not
even run), not with it (notes' trigger takes the message first: a plugin allowed to read your
messages sees only what no trigger took), and never again once the grant is revoked. A
manifest that asks for more (a priority out of range, a subscription without the scope) is
refused at install. Run as root by .ci/run, and again unprivileged by test_unprivileged.py."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import HOSTILE, OFFICIAL, events_of

from deeting_tui.command_output import cli_hint
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.plugins.loader import PluginError
from deeting_tui.plugin.scopes import MESSAGES

EAVESDROP = HOSTILE / "eavesdrop"
PIN = "note: my bank PIN is 1234"


def _heard(kernel: Kernel) -> list[str]:
    """What the hostile plugin recorded in its data folder."""
    heard = kernel.paths.plugin_data("eavesdrop") / "heard.txt"
    return heard.read_text().splitlines() if heard.exists() else []


async def _say(kernel: Kernel, text: str) -> list[dict[str, Any]]:
    session = kernel.active_session or kernel.open_session().id
    seen = events_of(kernel)
    turn = await asyncio.wait_for(kernel.submit(session, text), 10.0)
    assert not turn.failed, turn.errors
    return seen


async def _notes_took_the_pin(kernel: Kernel) -> None:
    seen = await _say(kernel, PIN)
    calls = [(e["plugin"], e["tool"], e["args"]) for e in seen if e["type"] == "tool_call"]
    assert calls == [("notes", "note_add", {"text": "my bank PIN is 1234"})]
    assert [e["ok"] for e in seen if e["type"] == "tool_result"] == [True]


def _edited(tmp_path: Path, **changes: Any) -> Path:
    source = tmp_path / "eavesdrop"
    shutil.copytree(EAVESDROP, source)
    kimai = orjson.loads((source / "kimai.json").read_bytes())
    kimai.update(changes)
    (source / "kimai.json").write_bytes(orjson.dumps(kimai))
    return source


async def test_without_the_grant_it_never_sees_a_message(kernel: Kernel) -> None:
    assert (await kernel.loader.install(OFFICIAL / "notes")).enabled
    report = await kernel.loader.install(EAVESDROP)  # no --yes, no --grant, no prompt
    assert not report.enabled
    assert report.problem == "permission 'messages' not granted to 'eavesdrop'"
    assert report.hint is not None
    assert cli_hint(report.hint) == "deeting plugin grant eavesdrop messages"
    await _notes_took_the_pin(kernel)
    seen = await _say(kernel, "hello there")
    assert [e["provider"] for e in seen if e["type"] == "reply"] == ["offline"]
    assert _heard(kernel) == []


async def test_with_consent_it_reads_only_what_no_trigger_took(kernel: Kernel) -> None:
    assert (await kernel.loader.install(OFFICIAL / "notes")).enabled
    report = await kernel.loader.install(EAVESDROP, grant=["messages"])
    assert report.enabled and report.granted == [MESSAGES]
    await _notes_took_the_pin(kernel)
    # What it was allowed: the rest, before the assistant (it claims it, so no reply).
    seen = await _say(kernel, "good morning")
    assert not [e for e in seen if e["type"] in ("reply", "tool_call")]
    assert _heard(kernel) == ["good morning"]

    # Revoked: the plugin stops at once, and hears nothing more.
    revoke = await kernel.loader.revoke("eavesdrop", MESSAGES)
    assert revoke.disabled and "eavesdrop" not in kernel.loader.runtimes
    seen = await _say(kernel, "good night")
    assert [e["provider"] for e in seen if e["type"] == "reply"] == ["offline"]
    await _notes_took_the_pin(kernel)
    assert _heard(kernel) == ["good morning"]
    with pytest.raises(PluginError, match="permission 'messages' not granted"):
        await kernel.loader.enable("eavesdrop")


async def test_a_priority_out_of_range_is_refused_at_install(
    kernel: Kernel, tmp_path: Path
) -> None:
    source = _edited(tmp_path, events=[{"topic": "user.message", "priority": 1_000_000}])
    with pytest.raises(PluginError) as refused:
        await kernel.loader.install(source, yes=True)
    assert "events[0].priority: 1000000 is out of range" in str(refused.value)
    assert kernel.installed.get("eavesdrop") is None
    assert (await kernel.loader.install(OFFICIAL / "notes")).enabled
    await _notes_took_the_pin(kernel)


@pytest.mark.parametrize("topic", ["user.message", "user.*", "*"])
async def test_a_subscription_without_the_scope_is_refused_at_install(
    kernel: Kernel, tmp_path: Path, topic: str
) -> None:
    source = _edited(tmp_path, permissions=[], events=[{"topic": topic, "priority": 100}])
    with pytest.raises(PluginError) as refused:
        await kernel.loader.install(source, yes=True)
    assert f"events[0].topic: '{topic}' delivers what the user types: add \"messages\"" in str(
        refused.value
    )
    assert kernel.installed.get("eavesdrop") is None


async def test_a_copy_changed_behind_the_installers_back_does_not_start(
    kernel: Kernel,
) -> None:
    """Granted for an innocent version; then its manifest on disk drops the scope but keeps
    the subscription: the kernel checks the copy again and refuses it."""
    assert (await kernel.loader.install(EAVESDROP, yes=True)).enabled
    await kernel.loader.disable("eavesdrop")
    code = kernel.paths.plugin_code("eavesdrop", "1.0.0")
    kimai = orjson.loads((code / "kimai.json").read_bytes())
    kimai["permissions"] = []
    (code / "kimai.json").write_bytes(orjson.dumps(kimai))
    with pytest.raises(PluginError, match="installed copy of 'eavesdrop' is damaged"):
        await kernel.loader.enable("eavesdrop")
    assert (await kernel.loader.install(OFFICIAL / "notes")).enabled
    await _notes_took_the_pin(kernel)
    assert _heard(kernel) == []
