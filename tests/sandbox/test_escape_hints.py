"""Lying about a refusal: the worker's guard reports what it refused with the scope that
would allow it, and the kernel turns that scope into a grant hint (``Hint(Fix.GRANT, plugin,
scope)``) that each front end phrases. A hostile plugin writes ``denied`` reports of its own
on its worker's pipe: a scope that is no scope, a refusal in another plugin's name, a huge
scope, control characters, a scope that is not text. None of them gets a hint naming anything
but this plugin and a real scope, and the kernel serves on.

Run as root by .ci/run, and again as an unprivileged user by test_unprivileged.py."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from support import HOSTILE

from deeting_tui.command_output import event_line
from deeting_tui.errors import Fix, Hint
from deeting_tui.kernel.events import Event, PluginNotice
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.sandbox.probe import probe

LIAR = HOSTILE / "liar"
NEVER = 30.0

enforced = pytest.mark.skipif(
    not (probe().landlock_abi and probe().seccomp),
    reason=f"this machine cannot enforce the sandbox ({probe().level})",
)


class Heard:
    """The liar's notices as they come, with a way to wait for one."""

    def __init__(self, kernel: Kernel) -> None:
        self.notices: list[PluginNotice] = []
        self._changed = asyncio.Event()
        kernel.add_listener(self._hear)

    def _hear(self, event: Event) -> None:
        if isinstance(event, PluginNotice) and event.plugin == "liar":
            self.notices.append(event)
            self._changed.set()

    async def first(self) -> PluginNotice:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + NEVER
        while not self.notices:
            self._changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                pytest.fail("no notice from liar")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return self.notices[0]


async def _call(kernel: Kernel, session_id: str, line: str) -> None:
    turn = await asyncio.wait_for(kernel.submit(session_id, line), NEVER)
    assert not turn.failed, turn.errors


@enforced
async def test_a_real_refusal_reaches_the_user_with_the_grant_as_a_hint(kernel: Kernel) -> None:
    await kernel.loader.install(LIAR, yes=True)
    heard = Heard(kernel)
    session = kernel.open_session()
    await _call(kernel, session.id, "/connect")
    notice = await heard.first()
    assert notice.hint == Hint(Fix.GRANT, "liar", "network")
    assert "deeting plugin" not in notice.message  # the fix is data, not words
    assert notice.message.startswith("plugin 'liar' has no 'network' permission")
    assert event_line(notice).endswith(" — run: deeting plugin grant liar network")
    await _call(kernel, session.id, "/ok")


@pytest.mark.parametrize(
    ("kind", "hint"),
    [
        ("not-a-scope", None),
        ("other-plugin", Hint(Fix.GRANT, "liar", "network")),  # its own name, never 'notes'
        ("huge", None),
        ("control", None),
        ("spaces", None),
    ],
)
async def test_a_lying_refusal_gets_no_hint_or_one_for_itself(
    kernel: Kernel, kind: str, hint: Hint | None
) -> None:
    await kernel.loader.install(LIAR, yes=True)
    heard = Heard(kernel)
    session = kernel.open_session()
    await _call(kernel, session.id, f"/lie kind={kind}")
    notice = await heard.first()
    assert notice.hint == hint
    assert notice.message.startswith("plugin 'liar' ")
    line = event_line(notice)
    assert "\x1b" not in line and "\x07" not in line and len(line) < 2_000
    assert "grant notes" not in line.partition(" — run: ")[2]
    await _call(kernel, session.id, "/ok")  # and the kernel serves on


async def test_a_scope_that_is_not_text_drops_the_report(kernel: Kernel) -> None:
    await kernel.loader.install(LIAR, yes=True)
    heard = Heard(kernel)
    session = kernel.open_session()
    await _call(kernel, session.id, "/lie kind=not-text")
    await _call(kernel, session.id, "/ok")  # a round trip after it: the report was read
    assert heard.notices == []
