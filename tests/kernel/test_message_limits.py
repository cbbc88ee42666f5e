"""One message's limits: over the cap or not valid text, it is refused with one short error
event, and nothing of it is stored or offered to a plugin; errors quote a prefix only."""

from __future__ import annotations

from support import FIXTURES

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.limits import MAX_MESSAGE_BYTES, message_problem


def _stored(kernel: Kernel, session_id: str) -> list[tuple[str, dict[str, object]]]:
    return [(e.kind, e.payload) for e in kernel.sessions.events(session_id)]


def test_the_cap_counts_utf8_bytes() -> None:
    assert message_problem("a" * MAX_MESSAGE_BYTES) is None
    over = message_problem("a" * (MAX_MESSAGE_BYTES + 1))
    assert over is not None and "1 MiB" in over and f"{MAX_MESSAGE_BYTES + 1:,}" in over
    # Within the cap in characters, over it in bytes (é is two bytes).
    assert message_problem("é" * (MAX_MESSAGE_BYTES // 2 + 1)) is not None
    assert message_problem("é" * (MAX_MESSAGE_BYTES // 2)) is None


def test_a_lone_surrogate_is_named_not_raised() -> None:
    problem = message_problem("bad \udcff byte")
    assert problem is not None
    assert "U+DCFF" in problem and "character 5" in problem


async def test_a_message_over_the_cap_is_refused_and_the_next_one_runs(kernel: Kernel) -> None:
    session = kernel.open_session(None)
    turn = await kernel.submit(session.id, "x" * (MAX_MESSAGE_BYTES + 10))
    assert turn.failed
    stored = _stored(kernel, session.id)
    assert [kind for kind, _ in stored] == ["error"]
    assert len(str(stored[0][1]["message"])) < 200
    turn = await kernel.submit(session.id, "hello")
    assert not turn.failed
    assert [kind for kind, _ in _stored(kernel, session.id)] == ["error", "user", "reply"]


async def test_text_that_is_not_utf8_is_refused_not_a_crash(kernel: Kernel) -> None:
    session = kernel.open_session(None)
    turn = await kernel.submit(session.id, "bad \udcff byte")  # surrogateescape'd stdin
    assert turn.failed
    assert [kind for kind, _ in _stored(kernel, session.id)] == ["error"]
    assert not (await kernel.submit(session.id, "after")).failed


async def test_errors_quote_a_short_prefix_of_a_huge_argument(kernel: Kernel) -> None:
    await kernel.loader.install(FIXTURES / "good_plugin")
    session = kernel.open_session(None)
    huge = "y" * 500_000
    lines = (f"/add {huge}=1 {huge}=2", f"/add a={huge} b=1", f"/image /{huge}")
    for line in lines:
        turn = await kernel.submit(session.id, line)
        assert turn.failed
        assert turn.errors and all(len(error) < 400 for error in turn.errors), turn.errors
        assert "more characters" in turn.errors[-1]
