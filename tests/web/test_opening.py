"""Opening a page in the system browser: when Deeting tries, and that a text browser, a
blocking controller or a failing launcher never takes the terminal or hangs the caller."""

from __future__ import annotations

import os
import sys
import threading
import time
import webbrowser
from pathlib import Path
from typing import Any

import pytest

from deeting_tui.web.opening import Opened, open_url, open_url_async, ssh_hint, why_not
from deeting_tui.web.terminal_theme import terminal_theme

DESKTOP = {"DISPLAY": ":0"}


@pytest.mark.parametrize(
    ("env", "platform", "reason"),
    [
        (DESKTOP, "linux", None),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", None),
        ({}, "linux", "no graphical display"),
        ({"DISPLAY": ""}, "linux", "no graphical display"),
        ({}, "freebsd14", "no graphical display"),
        ({}, "darwin", None),
        ({}, "win32", None),
        ({**DESKTOP, "SSH_CONNECTION": "10.0.0.2 5555 10.0.0.1 22"}, "linux", "SSH"),
        ({**DESKTOP, "SSH_TTY": "/dev/pts/3"}, "linux", "SSH"),
        ({"SSH_CLIENT": "10.0.0.2 5555 22"}, "darwin", "SSH"),
        ({**DESKTOP, "BROWSER": "lynx"}, "linux", "text browser (lynx)"),
        ({**DESKTOP, "BROWSER": "/usr/bin/w3m %s"}, "linux", "text browser (w3m)"),
        ({**DESKTOP, "BROWSER": f"firefox{os.pathsep}elinks"}, "linux", "text browser (elinks)"),
        ({**DESKTOP, "BROWSER": "www-browser"}, "linux", "text browser (www-browser)"),
        ({"BROWSER": "links"}, "darwin", "text browser (links)"),
        ({**DESKTOP, "BROWSER": "firefox"}, "linux", None),
        ({**DESKTOP, "BROWSER": "'unbalanced"}, "linux", None),
    ],
)
def test_when_a_browser_is_tried(env: dict[str, str], platform: str, reason: str | None) -> None:
    said = why_not(env, platform)
    if reason is None:
        assert said is None
    else:
        assert said is not None and reason in said


def test_ssh_hint_names_the_port_both_sides() -> None:
    assert "ssh -L 8123:127.0.0.1:8123 HOST" in ssh_hint(8123)


@pytest.mark.parametrize(
    ("value", "theme"),
    [
        ("15;0", "dark"),
        ("0;15", "light"),
        ("0;7", "light"),
        ("7;8", "dark"),
        ("12;default;0", "dark"),
        ("0;default;15", "light"),
        ("default;default", None),
        ("", None),
        ("15", None),
        ("0;231", None),
    ],
)
def test_theme_from_the_terminal_background(value: str, theme: str | None) -> None:
    assert terminal_theme({"COLORFGBG": value}) == theme


@pytest.fixture
def desktop(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSH_CONNECTION", "SSH_TTY", "SSH_CLIENT", "BROWSER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISPLAY", ":0")


def _controller(monkeypatch: pytest.MonkeyPatch, controller: Any) -> list[str]:
    asked: list[str] = []

    def get(using: str | None = None) -> Any:
        asked.append("get")
        if isinstance(controller, Exception):
            raise controller
        return controller

    monkeypatch.setattr(webbrowser, "get", get)
    return asked


def test_no_display_never_asks_webbrowser(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _controller(monkeypatch, webbrowser.GenericBrowser("true"))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    result = open_url("http://127.0.0.1:1/x/")
    assert not result.ok and "no graphical display" in result.reason
    assert asked == []


def test_a_text_browser_picked_by_webbrowser_is_refused(
    desktop: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    lynx = webbrowser.GenericBrowser(["/usr/bin/lynx", "%s"])
    lynx.open = lambda *a, **k: marker.touch() or True  # type: ignore[method-assign]
    _controller(monkeypatch, lynx)
    result = open_url("http://127.0.0.1:1/x/")
    assert result == Opened(False, "the only browser found is a text browser (lynx)")
    assert not marker.exists()


def test_a_command_browser_runs_detached_with_stdio_on_devnull(
    desktop: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A GenericBrowser would wait for the browser to exit, on our terminal; ours does not."""
    out = tmp_path / "out"
    script = tmp_path / "fake-browser"
    script.write_text(
        f'#!/bin/sh\n{{ echo "$1"; readlink /proc/$$/fd/2; ps -o sid= -p $$; }} > {out}\n'
        "echo chatter; echo noise >&2\n"
    )
    script.chmod(0o755)
    _controller(monkeypatch, webbrowser.GenericBrowser([str(script), "%s"]))
    assert open_url("http://127.0.0.1:1/x/?card=a b") == Opened(True)
    url, stderr, sid = out.read_text().splitlines()
    assert url == "http://127.0.0.1:1/x/?card=a b"
    assert stderr == "/dev/null"
    assert int(sid) != os.getsid(0)  # its own session: our Ctrl-C is not for it


def test_a_launcher_that_fails_is_said(desktop: None, monkeypatch: pytest.MonkeyPatch) -> None:
    _controller(monkeypatch, webbrowser.BackgroundBrowser(["sh", "-c", "exit 3", "%s"]))
    result = open_url("http://127.0.0.1:1/x/")
    assert not result.ok and "status 3" in result.reason


def test_a_missing_browser_is_said(desktop: None, monkeypatch: pytest.MonkeyPatch) -> None:
    _controller(monkeypatch, webbrowser.Error("could not locate runnable browser"))
    assert open_url("http://127.0.0.1:1/x/") == Opened(
        False, "no browser is configured on this machine"
    )


def test_a_blocking_controller_does_not_hold_the_caller(
    desktop: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    class Stuck(webbrowser.BaseBrowser):
        def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
            release.wait(30)
            return True

    _controller(monkeypatch, Stuck("stuck"))
    started = time.monotonic()
    try:
        result = open_url("http://127.0.0.1:1/x/", timeout=0.2)
    finally:
        release.set()
    assert time.monotonic() - started < 2
    assert not result.ok and "within 0.2 s" in result.reason


async def test_the_async_opener_keeps_the_loop_running(
    desktop: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    opened: list[str] = []

    class Slow(webbrowser.BaseBrowser):
        def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
            release.wait(30)
            opened.append(url)
            return True

    _controller(monkeypatch, Slow("slow"))
    import asyncio

    task = asyncio.ensure_future(open_url_async("http://127.0.0.1:1/x/"))
    await asyncio.sleep(0)  # the loop turns while the launch waits
    assert not task.done()
    release.set()
    assert await asyncio.wait_for(task, 5) == Opened(True)
    assert opened == ["http://127.0.0.1:1/x/"]


async def test_the_async_opener_refuses_over_ssh(
    desktop: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _controller(monkeypatch, webbrowser.GenericBrowser("true"))
    monkeypatch.setenv("SSH_TTY", "/dev/pts/1")
    result = await open_url_async("http://127.0.0.1:1/x/")
    assert not result.ok and "SSH" in result.reason and asked == []
