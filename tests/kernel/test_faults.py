"""Every fault a plugin can commit costs that plugin, never the kernel or the session.

Each test commits one fault through the real kernel and a real worker process, then makes
a successful call in the same session and checks the session store holds every message.
"""

from __future__ import annotations

import pytest
from support import HOSTILE, OFFICIAL, events_of

from deeting_tui.command_output import event_line, with_cli_hint
from deeting_tui.errors import Fix, Hint
from deeting_tui.kernel.events import ErrorEvent, Event, PluginNotice
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.ui.hints import chat_event_line, with_chat_hint

FAULT_THEN_OK = [
    "user",
    "tool_call",
    "tool_result",
    "error",
    "user",
    "tool_call",
    "tool_result",
    "reply",
]


async def _install_faulty(kernel: Kernel) -> None:
    report = await kernel.loader.install(HOSTILE / "faulty", yes=True)
    assert report.enabled, report.problem


def _kinds(kernel: Kernel, session_id: str) -> list[str]:
    return [e.kind for e in kernel.sessions.events(session_id)]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("raise", "the plugin failed on purpose"),
        ("exit", "exited with code 7"),
        ("sysexit", "sys.exit(0)"),
        ("hang", "did not answer the tool call (invoke) within 1.5 s"),
        ("garbage", "wrote garbage on its RPC pipe"),
        ("hog", "ran out of memory"),
    ],
)
async def test_fault_then_next_call_succeeds_and_session_is_whole(
    kernel: Kernel, fault: str, expected: str
) -> None:
    await _install_faulty(kernel)
    session = kernel.open_session()
    seen = events_of(kernel)

    turn = await kernel.submit(session.id, f"fault {fault}")
    after = await kernel.submit(session.id, "/ok n=5")

    assert turn.failed and any(expected in e for e in turn.errors), turn.errors
    assert not after.failed, after.errors
    assert [e["text"] for e in seen if e["type"] == "reply"] == ["ok 5"]
    assert _kinds(kernel, session.id) == FAULT_THEN_OK
    stored = kernel.sessions.events(session.id)
    assert stored[0].payload == {"text": f"fault {fault}"}
    assert stored[-1].payload == {"text": "ok 5"}


async def test_garbage_on_the_pipe_replaces_the_worker(kernel: Kernel) -> None:
    await _install_faulty(kernel)
    session = kernel.open_session()
    first = await kernel.submit(session.id, "/ok n=1")
    pid_before = kernel.loader.runtimes["faulty"].supervisor.pid
    garbage = await kernel.submit(session.id, "fault garbage")
    after = await kernel.submit(session.id, "/ok n=2")
    assert not first.failed and garbage.failed and not after.failed, after.errors
    assert kernel.loader.runtimes["faulty"].supervisor.pid != pid_before


async def test_plugin_output_goes_to_its_log_not_the_protocol(kernel: Kernel) -> None:
    await _install_faulty(kernel)
    session = kernel.open_session()
    seen = events_of(kernel)
    turn = await kernel.submit(session.id, "fault shout")
    assert not turn.failed, turn.errors
    assert [e["text"] for e in seen if e["type"] == "reply"] == ["shouted"]
    await kernel.loader.disable("faulty")  # stop the worker so its log is flushed and closed
    log = kernel.paths.plugin_log("faulty").read_text()
    assert "this goes to stdout" in log and "and this to stderr" in log


async def test_progress_extends_the_deadline_and_reaches_listeners_unstored(
    kernel: Kernel,
) -> None:
    await _install_faulty(kernel)  # call_timeout 1.5 s; the slow tool takes 2 s with progress
    session = kernel.open_session()
    seen = events_of(kernel)
    turn = await kernel.submit(session.id, "fault slow")
    assert not turn.failed, turn.errors
    call = next(e for e in seen if e["type"] == "tool_call")
    progress = [e for e in seen if e["type"] == "progress"]
    assert [(e["fraction"], e["message"]) for e in progress] == [
        (0.0, "step 0"),
        (0.25, "step 1"),
        (0.5, "step 2"),
        (0.75, "step 3"),
    ]
    assert {e["call_id"] for e in progress} == {call["call_id"]}
    assert {(e["tool"], e["plugin"], e["session_id"]) for e in progress} == {
        ("fault", "faulty", session.id)
    }
    assert "progress" not in _kinds(kernel, session.id)  # a bar is only true while it runs


async def test_stream_events_are_stored_in_the_session(kernel: Kernel) -> None:
    await _install_faulty(kernel)
    session = kernel.open_session()
    seen = events_of(kernel)
    await kernel.submit(session.id, "fault stream")
    await kernel.submit(session.id, "/ok")  # the stream notification precedes this reply
    streams = [e for e in seen if e["type"] == "stream"]
    assert streams and streams[0]["topic"] == "faulty.tick" and streams[0]["plugin"] == "faulty"
    assert "stream" in _kinds(kernel, session.id)


async def test_crash_loop_disables_plugin_with_reenable_hint(kernel: Kernel) -> None:
    await _install_faulty(kernel)
    session = kernel.open_session()
    for _ in range(3):
        await kernel.submit(session.id, "fault exit")
    turn = await kernel.submit(session.id, "/ok")
    record = kernel.installed.get("faulty")
    assert record is not None and not record.enabled
    assert record.disabled_reason and "enable it again" in record.disabled_reason
    assert turn.failed  # the tool is gone with its plugin
    assert "faulty" not in kernel.loader.runtimes
    # Re-enabling works and the plugin serves again.
    await kernel.loader.enable("faulty")
    assert not (await kernel.submit(session.id, "/ok n=3")).failed


async def test_activate_raising_leaves_plugin_installed_but_disabled(kernel: Kernel) -> None:
    report = await kernel.loader.install(HOSTILE / "bad-activate", yes=True)
    assert not report.enabled
    assert report.problem and "activate failed on purpose" in report.problem
    record = kernel.installed.get("bad-activate")
    assert record is not None and not record.enabled
    # The kernel keeps serving other plugins in the same session.
    assert (await kernel.loader.install(OFFICIAL / "calc")).enabled
    session = kernel.open_session()
    seen = events_of(kernel)
    assert not (await kernel.submit(session.id, "calc 6*7")).failed
    assert seen[-1]["text"].endswith("42")


async def test_a_fault_in_one_plugin_leaves_others_alone(kernel: Kernel) -> None:
    await _install_faulty(kernel)
    assert (await kernel.loader.install(OFFICIAL / "calc")).enabled
    calc_pid = kernel.loader.runtimes["calc"].supervisor.pid
    session = kernel.open_session()
    await kernel.submit(session.id, "fault exit")
    assert not (await kernel.submit(session.id, "calc 1+1")).failed
    assert kernel.loader.runtimes["calc"].supervisor.pid == calc_pid


async def test_a_crash_loop_carries_the_enable_as_a_hint_each_front_end_phrases(
    kernel: Kernel,
) -> None:
    """No command in the message the chat shows too: the kernel's error and notice carry
    Hint(ENABLE), the CLI says the command and the chat the key."""
    await _install_faulty(kernel)
    heard: list[ErrorEvent | PluginNotice] = []

    def hear(event: Event) -> None:
        if isinstance(event, ErrorEvent | PluginNotice) and "disabled" in event.message:
            heard.append(event)

    kernel.add_listener(hear)
    session = kernel.open_session()
    for _ in range(3):
        await kernel.submit(session.id, "fault exit")
    assert {type(e) for e in heard} == {ErrorEvent, PluginNotice}
    for event in heard:
        assert event.hint == Hint(Fix.ENABLE, "faulty")
        assert "deeting plugin" not in event.message
        assert event_line(event).endswith(
            "fix it, then enable it again — run: deeting plugin enable faulty"
        )
        assert chat_event_line(event).endswith(
            "fix it, then enable it again — press F2, select faulty, press e"
        )


async def test_a_crashed_plugins_info_carries_the_enable_as_its_fix(kernel: Kernel) -> None:
    """The stored reason is words; `deeting plugin info` and the chat's details phrase the
    fix beside it, each its own way."""
    await _install_faulty(kernel)
    session = kernel.open_session()
    for _ in range(3):
        await kernel.submit(session.id, "fault exit")
    info = kernel.plugins.info("faulty")
    assert info.reason is not None and "deeting plugin" not in info.reason
    assert info.fix == Hint(Fix.ENABLE, "faulty")
    assert with_cli_hint(info.reason, info.fix).endswith(" — run: deeting plugin enable faulty")
    assert with_chat_hint(info.reason, info.fix, on_plugin_screen=True).endswith(
        " — select faulty, press e"
    )
    await kernel.loader.enable("faulty")
    assert kernel.plugins.info("faulty").fix is None  # enabled: nothing to fix
