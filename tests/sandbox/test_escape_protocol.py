"""Forging the wire protocol: a hostile plugin writes JSON-RPC on its worker's pipe past the
SDK — an answer to its call that is not an invoke result, reports of the wrong shape. Each
forged answer fails that call with one clear error (rpc/protocol.py says what was wrong), and
the kernel keeps serving: the next call is answered.

Run as root by .ci/run, and again as an unprivileged user by test_unprivileged.py."""

from __future__ import annotations

import asyncio

import pytest
from support import HOSTILE, events_of

from deeting_tui.kernel.kernel import Kernel

FORGER = HOSTILE / "forger"
NEVER = 30.0


async def _answers_next(kernel: Kernel, session_id: str) -> None:
    turn = await asyncio.wait_for(kernel.submit(session_id, "/ok"), NEVER)
    assert not turn.failed, turn.errors


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("list", "the invoke result must be an object, not an array"),
        ("text-number", "the invoke result's 'text' must be a string or null, not a number"),
        ("renderer-object", "the invoke result's 'renderer' must be a string or null, not an"),
        ("extra-key", "the invoke result has keys it may not have: admin"),
    ],
)
async def test_a_forged_answer_fails_its_call_with_a_clear_error(
    kernel: Kernel, kind: str, why: str
) -> None:
    await kernel.loader.install(FORGER, yes=True)
    session = kernel.open_session()
    events = events_of(kernel)
    turn = await asyncio.wait_for(kernel.submit(session.id, f"/forge kind={kind}"), NEVER)
    assert turn.failed
    assert len(turn.errors) == 1, turn.errors
    assert turn.errors[0].startswith("forge: plugin 'forger' answered the call wrongly: ")
    assert why in turn.errors[0]
    results = [e for e in events if e["type"] == "tool_result"]
    assert len(results) == 1 and results[0]["ok"] is False and results[0]["text"] is None
    await _answers_next(kernel, session.id)


@pytest.mark.parametrize("kind", ["progress", "stream", "denied", "unknown"])
async def test_malformed_reports_are_dropped_and_the_call_goes_on(
    kernel: Kernel, kind: str
) -> None:
    await kernel.loader.install(FORGER, yes=True)
    session = kernel.open_session()
    events = events_of(kernel)
    turn = await asyncio.wait_for(kernel.submit(session.id, f"/forge kind={kind}"), NEVER)
    assert not turn.failed, turn.errors
    assert [e["text"] for e in events if e["type"] == "reply"] == ["sent"]
    assert not [e for e in events if e["type"] in ("stream", "progress")]
    await _answers_next(kernel, session.id)
