"""Opening a card page in the system browser, without ever losing the terminal to it.

Both front ends open pages: ``deeting view`` and the chat (a key on a result card). Python's
``webbrowser`` is happy to pick a text browser (lynx, w3m, ``www-browser``) when no desktop
is around, and a text browser would take over the very terminal the chat draws on; its
generic controllers also wait for the browser to exit, and the launched browser inherits our
stdout, so its chatter ("Opening in existing browser session.") would land on the chat's
screen. So:

- :func:`why_not` decides, from the environment alone, whether to try at all: not over SSH
  (the browser would open on the remote machine, if anywhere), not on Linux without
  ``DISPLAY``/``WAYLAND_DISPLAY``, and not when ``BROWSER`` names a text browser;
- :func:`open_url` then asks ``webbrowser.get()`` for the controller and refuses a text
  browser it may still pick; a command-line controller is started by us, detached, its
  stdio on /dev/null; anything else (macOS, Windows, remote-capable browsers) through the
  controller, in a daemon thread with a timeout, since ``webbrowser`` may block.

When nothing is opened, the caller shows the URL and :func:`ssh_hint`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import subprocess
import sys
import threading
import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["TEXT_BROWSERS", "Opened", "open_url", "open_url_async", "ssh_hint", "why_not"]

#: Browsers that run in the terminal: never started by Deeting.
TEXT_BROWSERS = frozenset(
    {"lynx", "w3m", "links", "links2", "elinks", "www-browser", "browsh", "carbonyl", "netrik"}
)
#: How long a browser launch may take before the caller stops waiting and shows the URL.
OPEN_TIMEOUT_S = 5.0
#: A launcher (xdg-open) that fails does so at once; one still running after this is a start.
LAUNCH_SETTLE_S = 1.0


@dataclass(frozen=True, slots=True)
class Opened:
    """Whether a browser was started, and when not, why (a few words for a person)."""

    ok: bool
    reason: str = ""


def _text_browser(command: str) -> str | None:
    """The text browser a ``BROWSER`` entry or a controller's name names, if it is one."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    if not words:
        return None
    name = os.path.basename(words[0]).lower().removesuffix(".exe")
    return name if name in TEXT_BROWSERS else None


def why_not(env: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why no browser should be started here (None: try). Pure: the environment and the
    platform are arguments, so every combination is testable."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if env.get("SSH_CONNECTION") or env.get("SSH_TTY") or env.get("SSH_CLIENT"):
        return "this is an SSH session"
    unix_desktop = platform.startswith("linux") or "bsd" in platform
    if unix_desktop and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return "no graphical display (DISPLAY and WAYLAND_DISPLAY are unset)"
    for entry in env.get("BROWSER", "").split(os.pathsep):
        text = _text_browser(entry)
        if text:
            return f"BROWSER names a text browser ({text}), which would take the terminal"
    return None


def ssh_hint(port: int) -> str:
    """How to see a loopback page from another machine."""
    return (
        f"over SSH, forward the port first: ssh -L {port}:127.0.0.1:{port} HOST, "
        "then open the URL on your machine"
    )


def open_url(
    url: str, env: Mapping[str, str] | None = None, timeout: float = OPEN_TIMEOUT_S
) -> Opened:
    """Start the system browser on ``url``, or say why not. Blocks for at most ``timeout``
    seconds (the launch runs in a daemon thread, which cannot hold the process open)."""
    reason = why_not(env)
    if reason is not None:
        return Opened(False, reason)
    outcome: list[Opened] = []
    done = threading.Event()

    def finish(result: Opened) -> None:
        outcome.append(result)
        done.set()

    _start(url, finish)
    if not done.wait(timeout):
        return Opened(False, f"the browser did not start within {timeout:g} s")
    return outcome[0]


async def open_url_async(
    url: str, env: Mapping[str, str] | None = None, timeout: float = OPEN_TIMEOUT_S
) -> Opened:
    """:func:`open_url` from an event loop, which keeps running meanwhile."""
    reason = why_not(env)
    if reason is not None:
        return Opened(False, reason)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Opened] = loop.create_future()

    def settle(result: Opened) -> None:
        if not future.done():
            future.set_result(result)

    _start(url, lambda result: loop.call_soon_threadsafe(settle, result))
    try:
        async with asyncio.timeout(timeout):
            return await asyncio.shield(future)
    except TimeoutError:
        return Opened(False, f"the browser did not start within {timeout:g} s")


def _start(url: str, finish: Callable[[Opened], object]) -> None:
    """Launch in a daemon thread, not an executor's: an executor's threads are joined at
    exit, and a browser command that never returns would hold the process open."""

    def launch() -> None:
        try:
            result = _launch(url)
        except Exception as exc:  # webbrowser's own errors: said, never raised into a UI
            result = Opened(False, f"the browser did not start ({exc})")
        # RuntimeError: the caller's loop closed meanwhile, and nobody waits any more.
        with contextlib.suppress(RuntimeError):
            finish(result)

    threading.Thread(target=launch, name="deeting-open-browser", daemon=True).start()


def _launch(url: str) -> Opened:
    try:
        controller = webbrowser.get()
    except webbrowser.Error:
        return Opened(False, "no browser is configured on this machine")
    name = getattr(controller, "name", "") or ""
    text = _text_browser(name)
    if text:
        return Opened(False, f"the only browser found is a text browser ({text})")
    if isinstance(controller, webbrowser.GenericBrowser):
        return _run_detached([controller.name, *(a.replace("%s", url) for a in controller.args)])
    if controller.open(url, new=2):
        return Opened(True)
    return Opened(False, "the browser did not start")


def _run_detached(command: list[str]) -> Opened:
    """Start a browser command in its own session (Ctrl-C in our terminal is not for it),
    its stdio on /dev/null (the chat's screen is not for its messages), without waiting for
    it to exit (a browser runs for hours); a launcher that fails at once is a failure."""
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
        )
    except OSError as exc:
        return Opened(False, f"the browser did not start ({exc.strerror or exc})")
    try:
        code = process.wait(LAUNCH_SETTLE_S)
    except subprocess.TimeoutExpired:
        # Still running: a browser. Reap it when it ends, so it leaves no zombie behind.
        threading.Thread(target=process.wait, name="deeting-browser-reaper", daemon=True).start()
        return Opened(True)
    if code != 0:
        return Opened(False, f"{os.path.basename(command[0])} exited with status {code}")
    return Opened(True)
