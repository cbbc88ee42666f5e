"""SVG snapshots of every screen and state, at a fixed terminal size.

Everything that could differ between two runs is pinned (see ``pinned``):

- session ids: the store's ``secrets`` gives c0ffee000001, c0ffee000002, … in order;
- the store's and the journal's clock (``time.time``), so "changed" in the session list and
  the events' timestamps are fixed; the time zone is UTC;
- tool-call durations: the conversation is fed to the chat as synthetic ``KernelEvent``s
  with a fixed ``duration_ms``, never timed by a real call;
- the header clock (``datetime.now`` in Textual's header), should a screen ever show it;
- paths: HOME is the test's folder, so the plugin manager's ``~/…`` paths (the Deeting home,
  the plugins' source folders, copied there) are the same on every machine and run;
- the sandbox level this machine offers (the Landlock ABI differs between kernels);
- animations: ``app.animation_level = "none"`` (LoadingIndicator, ProgressBar and friends
  draw a still frame), and every Input's cursor stops blinking (shown, steady) before the
  screenshot is taken.

The app is started by ``snap_compare`` in its own event loop, so these tests are sync: any
state that needs the kernel (installed plugins, stored sessions) is built first, in a loop of
its own, and the app then opens the same home with a fresh kernel, as ``deeting`` would.

Regenerate after a deliberate change of the look (then look at the SVGs before committing):

    .venv/bin/python -m pytest tests/ui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import FAST_POLICY, FIXTURES, OFFICIAL
from textual.pilot import Pilot
from textual.widgets import Input, TextArea
from ui_support import DEADLINE_S, until

import deeting_tui.kernel.sessions.encoding as session_events_module
import deeting_tui.kernel.sessions.store as session_module
import deeting_tui.sandbox.probe as probe_module
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.sessions.store import SessionStore
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.messages import KernelEvent
from deeting_tui.ui.screens.confirm import ConfirmDialog
from deeting_tui.ui.screens.grants import GrantsDialog
from deeting_tui.ui.screens.install import InstallDialog
from deeting_tui.ui.screens.permission import PermissionDialog
from deeting_tui.ui.screens.plugins import PluginManager
from deeting_tui.ui.screens.rename import RenameDialog
from deeting_tui.ui.screens.sessions import SessionList

SMALL = (80, 24)
LARGE = (120, 36)

#: The pinned "now": Saturday 2026-03-14 09:26 UTC.
NOW = float(calendar.timegm((2026, 3, 14, 9, 26, 0, 0, 0, 0)))
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0

#: A hang in a step fails the test after this long instead of stalling the run.

SnapCompare = Callable[..., bool]
Steps = Callable[[Pilot[Any]], Awaitable[None]]


# -- pins -------------------------------------------------------------------------------------


class _Clock:
    """Stands in for the ``time`` module where the store and the journal read the clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class _Ids:
    """Stands in for ``secrets`` in the session store: c0ffee000001, c0ffee000002, …"""

    def __init__(self) -> None:
        self.issued = 0

    def token_hex(self, nbytes: int = 6) -> str:
        self.issued += 1
        return f"c0ffee{self.issued:0{2 * nbytes - 6}x}"


class _FrozenDatetime(dt.datetime):
    @classmethod
    def now(cls, tz: dt.tzinfo | None = None) -> _FrozenDatetime:
        return cls.fromtimestamp(NOW, tz or dt.UTC)


#: What the plugin manager says of the sandbox, whatever this machine's kernel offers.
SANDBOX = probe_module.Capabilities(
    platform="linux-x86_64", landlock_abi=7, seccomp=True, no_new_privs=True, root=False
)


@pytest.fixture
def pinned(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Clock]:
    """Fixed session ids, clock, time zone, home folder and sandbox level for the app under
    test; yields the clock."""
    import textual.widgets._header as header_module

    assert home.parent == tmp_path  # so the Deeting home shows as ~/home
    monkeypatch.setenv("HOME", str(tmp_path))
    # Only the UI's description: workers are separate processes that probe for themselves.
    monkeypatch.setattr(probe_module, "probe", lambda: SANDBOX)
    clock = _Clock(NOW)
    monkeypatch.setattr(session_module, "time", clock)
    monkeypatch.setattr(session_events_module, "time", clock)
    monkeypatch.setattr(session_module, "secrets", _Ids())
    monkeypatch.setattr(header_module, "datetime", _FrozenDatetime)
    tz = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        yield clock
    finally:
        if tz is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = tz
        time.tzset()


def _kernel() -> Kernel:
    return Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)


def make_app(prepare: Callable[[Kernel], Awaitable[None]] | None = None) -> DeetingApp:
    """The app on the test's home, with animations off; ``prepare`` first sets the home up
    with a kernel of its own (install plugins …), in a loop of its own."""
    if prepare is not None:

        async def setup() -> None:
            kernel = _kernel()
            await kernel.start(ticker=False)
            try:
                await prepare(kernel)
            finally:
                await kernel.shutdown()

        asyncio.run(setup())
    app = DeetingApp(_kernel())
    app.animation_level = "none"
    return app


# -- driving the app --------------------------------------------------------------------------


async def settle(pilot: Pilot[Any]) -> None:
    """Let the app run until the screen stops changing: two more rounds of messages that
    draw the same picture. ``pause`` alone waits only for the active screen's widgets, while
    a screen under a dialog may still be mounting (a README's Markdown blocks …). A screen
    that never settles (a spinner, a clock, a blinking cursor) fails the test here, by name."""
    app = pilot.app
    last = ""
    same = 0

    async def still() -> None:
        nonlocal last, same
        while same < 2:
            await pilot.pause()
            await pilot.wait_for_scheduled_animations()
            shot = app.export_screenshot()
            same = same + 1 if shot == last else 0
            last = shot

    try:
        await asyncio.wait_for(still(), DEADLINE_S)
    except TimeoutError:
        pytest.fail(
            "the screen kept changing: something animates or counts time — pin it "
            "(app.animation_level is 'none' here; see the module docstring)"
        )


def _stop_blinking(app: DeetingApp) -> None:
    """A blink is a 0.5 s timer: the cursor would be on or off by chance. Shown, steady."""
    for screen in app.screen_stack:
        for field in screen.query(Input):
            field.cursor_blink = False
        for area in screen.query(TextArea):
            area.cursor_blink = False


def steady(steps: Steps | None = None) -> Steps:
    """``steps``, then the app settled and still, ready for its picture."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, DeetingApp)
        await until(pilot, app.started.is_set, "the chat, its kernel started")
        if steps is not None:
            await steps(pilot)
        _stop_blinking(app)
        await settle(pilot)

    return run_before


async def type_line(pilot: Pilot[Any], text: str) -> None:
    """Type into the chat's prompt (focused at start) and press Enter; no mouse, no hover."""
    await pilot.press(*[" " if c == " " else c for c in text], "enter")


def feed(pilot: Pilot[Any], events: list[dict[str, Any]]) -> None:
    """Kernel events, as the kernel's listener would post them to the chat."""
    app = pilot.app
    assert isinstance(app, DeetingApp)
    for event in events:
        app.chat.post_message(KernelEvent({"session_id": app.session_id, **event}))


# -- scenes -----------------------------------------------------------------------------------

NOTES = {
    "title": "Notes",
    "columns": ["id", "created", "text"],
    "rows": [
        [1, "2026-03-12T14:03", "Buy oat milk"],
        [2, "2026-03-13T15:20", "Call the garage about the winter tyres"],
    ],
}

CONVERSATION: list[dict[str, Any]] = [
    {"type": "user", "text": "what did I note about the garage?"},
    {
        "type": "tool_call",
        "call_id": "c1",
        "tool": "search_notes",
        "plugin": "notes",
        "args": {"query": "garage"},
    },
    {
        "type": "tool_result",
        "call_id": "c1",
        "tool": "search_notes",
        "plugin": "notes",
        "ok": True,
        "data": NOTES,
        "text": "2 notes",
        "renderer": "table",
        "error": None,
        "duration_ms": 42.0,
    },
    {"type": "reply", "text": "One note: **call the garage** about the winter tyres."},
    {"type": "user", "text": "/add a=1"},
    {"type": "error", "message": "add: invalid arguments: 'b' is required"},
]


async def _conversation(pilot: Pilot[Any]) -> None:
    feed(pilot, CONVERSATION)
    app = pilot.app
    await until(pilot, lambda: len(app.screen.query("ToolCallBlock Collapsible")) == 1, "the card")


async def _install_two_plugins(kernel: Kernel) -> None:
    """echo-fixture: no permissions, enabled; weather: asks for network, needs consent. Both
    from copies under HOME, so their source folder reads the same everywhere."""
    sources = Path.home() / "plugins"
    for folder in (FIXTURES / "good_plugin", OFFICIAL / "weather"):
        shutil.copytree(folder, sources / folder.name, ignore=shutil.ignore_patterns("__pycache__"))
    await kernel.loader.install(sources / "good_plugin")
    report = await kernel.loader.install(sources / "weather")
    assert not report.enabled


async def _plugin_manager(pilot: Pilot[Any]) -> None:
    await type_line(pilot, "/plugins")
    await until(pilot, lambda: isinstance(pilot.app.screen, PluginManager), "the plugin manager")
    await settle(pilot)


async def _permission_dialog(pilot: Pilot[Any]) -> None:
    await _plugin_manager(pilot)
    await pilot.press("down")  # weather
    await settle(pilot)  # its details, before the dialog covers them
    await pilot.press("e")
    await until(pilot, lambda: isinstance(pilot.app.screen, PermissionDialog), "the dialog")


async def _grants_dialog(pilot: Pilot[Any]) -> None:
    await _plugin_manager(pilot)
    await pilot.press("down")  # weather: its one scope, not granted
    await settle(pilot)
    await pilot.press("g")
    await until(pilot, lambda: isinstance(pilot.app.screen, GrantsDialog), "the grants dialog")


async def _install_dialog(pilot: Pilot[Any]) -> None:
    await _plugin_manager(pilot)
    await pilot.press("i")
    await until(pilot, lambda: isinstance(pilot.app.screen, InstallDialog), "the install dialog")
    await pilot.press(*"~/plugins/weat")  # the completion shows greyed out


def _seed_sessions(clock: _Clock) -> None:
    """Four stored conversations of different ages; the newest is resumed (and marked ●)."""
    with SessionStore(resolve_paths().sessions_db) as store:

        def session(age: float, texts: list[str], title: str | None = None) -> None:
            clock.now = NOW - age
            info = store.create(title)
            for i, text in enumerate(texts):
                kind = "user" if i % 2 == 0 else "reply"
                store.append(info.id, kind, {"text": text})

        session(2 * DAY, ["weather in Lisbon tomorrow", "Sunny, 19 °C."])
        session(DAY, ["list my notes", "You have two notes.", "add one", "Done."], "Garage")
        session(
            HOUR,
            [
                "Summarise this thread for me:\n"
                + "the garage called back about the winter tyres and the appointment " * 3,
                "The garage can change the tyres on Tuesday at 9.",
            ],
        )
        session(5 * MINUTE, ["echo hello", "hello"])
    clock.now = NOW


async def _session_list(pilot: Pilot[Any]) -> None:
    await type_line(pilot, "/sessions")
    await until(pilot, lambda: isinstance(pilot.app.screen, SessionList), "the session list")
    await settle(pilot)


async def _confirm_delete(pilot: Pilot[Any]) -> None:
    await _session_list(pilot)
    await pilot.press("down")
    await settle(pilot)
    await pilot.press("x")
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), "the question")


async def _rename(pilot: Pilot[Any]) -> None:
    await _session_list(pilot)
    await pilot.press("down", "down")  # "Garage": the field starts with its title
    await settle(pilot)
    await pilot.press("r")
    await until(pilot, lambda: isinstance(pilot.app.screen, RenameDialog), "the rename dialog")


# -- the snapshots ----------------------------------------------------------------------------


def test_chat_first_start(pinned: _Clock, snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=SMALL, run_before=steady())


async def _install_official_plugins(kernel: Kernel) -> None:
    """calc, clock, notes enabled; sysinfo, weather waiting for consent (as ./dev.sh run)."""
    sources = Path.home() / "plugins"
    for folder in sorted(OFFICIAL.iterdir()):
        if (folder / "kimai.json").is_file():
            shutil.copytree(
                folder, sources / folder.name, ignore=shutil.ignore_patterns("__pycache__")
            )
            await kernel.loader.install(sources / folder.name)


def test_chat_first_start_official_plugins(pinned: _Clock, snap_compare: SnapCompare) -> None:
    """A new session's first screen: an example per enabled plugin, consent, keys, provider."""
    app = make_app(_install_official_plugins)
    assert snap_compare(app, terminal_size=SMALL, run_before=steady())


def test_chat_conversation(pinned: _Clock, snap_compare: SnapCompare) -> None:
    """A user line, a tool call with its result card, the reply, an error line."""
    assert snap_compare(make_app(), terminal_size=SMALL, run_before=steady(_conversation))


def test_chat_conversation_large(pinned: _Clock, snap_compare: SnapCompare) -> None:
    assert snap_compare(make_app(), terminal_size=LARGE, run_before=steady(_conversation))


def test_chat_help(pinned: _Clock, snap_compare: SnapCompare) -> None:
    async def help_reply(pilot: Pilot[Any]) -> None:
        await type_line(pilot, "/help")
        await until(pilot, lambda: "/sessions" in _text(pilot), "the help reply")

    assert snap_compare(make_app(), terminal_size=SMALL, run_before=steady(help_reply))


def test_plugin_manager(pinned: _Clock, snap_compare: SnapCompare) -> None:
    """echo-fixture enabled, weather needing consent."""
    app = make_app(_install_two_plugins)
    assert snap_compare(app, terminal_size=SMALL, run_before=steady(_plugin_manager))


def test_permission_dialog(pinned: _Clock, snap_compare: SnapCompare) -> None:
    app = make_app(_install_two_plugins)
    assert snap_compare(app, terminal_size=SMALL, run_before=steady(_permission_dialog))


def test_grants_dialog(pinned: _Clock, snap_compare: SnapCompare) -> None:
    app = make_app(_install_two_plugins)
    assert snap_compare(app, terminal_size=SMALL, run_before=steady(_grants_dialog))


def test_install_dialog(pinned: _Clock, snap_compare: SnapCompare) -> None:
    app = make_app(_install_two_plugins)
    assert snap_compare(app, terminal_size=SMALL, run_before=steady(_install_dialog))


def test_session_list(pinned: _Clock, snap_compare: SnapCompare) -> None:
    _seed_sessions(pinned)
    assert snap_compare(make_app(), terminal_size=SMALL, run_before=steady(_session_list))


def test_session_list_large(pinned: _Clock, snap_compare: SnapCompare) -> None:
    _seed_sessions(pinned)
    assert snap_compare(make_app(), terminal_size=LARGE, run_before=steady(_session_list))


def test_confirm_dialog_delete_session(pinned: _Clock, snap_compare: SnapCompare) -> None:
    _seed_sessions(pinned)
    assert snap_compare(make_app(), terminal_size=SMALL, run_before=steady(_confirm_delete))


def test_rename_dialog(pinned: _Clock, snap_compare: SnapCompare) -> None:
    _seed_sessions(pinned)
    assert snap_compare(make_app(), terminal_size=SMALL, run_before=steady(_rename))


def _text(pilot: Pilot[Any]) -> str:
    """What the chat shows, roughly: the replies' Markdown sources."""
    from deeting_tui.ui.widgets.transcript import AssistantReply

    return "\n".join(reply.source for reply in pilot.app.screen.query(AssistantReply))
