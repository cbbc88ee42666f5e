"""A kernel started a second time (install with it, stop its plugins, start it for the chat,
as the chat's tests and a user's CLI-then-chat do) keeps one follower and one watchdog."""

from __future__ import annotations

from support import FIXTURES

from deeting_tui.kernel.kernel import Kernel


async def test_a_second_start_ends_the_first_follower_and_watchdog(kernel: Kernel) -> None:
    # The first follower's picture of state.json was taken before the install: left running,
    # it saw echo-fixture "newly enabled elsewhere" while the second start was starting it,
    # started it again and the duplicate worker was killed (a crash notice mid-test).
    follower, following, watchdog = kernel.follower, kernel._following, kernel._watchdog
    assert follower is not None and following is not None and watchdog is not None
    await kernel.loader.install(FIXTURES / "good_plugin")
    await kernel.loader.shutdown()
    await kernel.start(ticker=False)
    assert following.done() and watchdog.done()
    assert kernel.follower is not follower and kernel._following is not following
    assert "echo-fixture" in kernel.loader.runtimes
