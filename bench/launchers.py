"""Which worker launchers exist, and how to make each.

``ExecLauncher`` always exists. ``ForkserverLauncher`` and ``default_launcher()`` are picked
up from ``deeting_tui.workers.launcher`` when that module defines them; this is the one hook
to adjust should their constructors ever need arguments.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from deeting_tui.workers import launcher as launcher_module
from deeting_tui.workers.launcher import ExecLauncher, Launcher


def available_launchers() -> dict[str, Callable[[], Launcher]]:
    """name -> factory, for every launcher this checkout has (exec first)."""
    found: dict[str, Callable[[], Launcher]] = {"exec": ExecLauncher}
    from deeting_tui.workers.forkserver_client import ForkserverLauncher

    found["forkserver"] = ForkserverLauncher
    return found


def default_launcher() -> tuple[str, Launcher]:
    """The launcher the kernel would use: ``default_launcher()`` if defined, else exec."""
    factory: Any = getattr(launcher_module, "default_launcher", None)
    if factory is None:
        return "exec", ExecLauncher()
    chosen = factory()
    return launcher_name(chosen), chosen


def default_launcher_name() -> str:
    """The name of the launcher the kernel would use (nothing is started to find out)."""
    name, launcher = default_launcher()
    launcher.close()
    return name


def launcher_name(launcher: Any) -> str:
    launcher = getattr(launcher, "active", launcher)  # a FallbackLauncher: the one in use
    for name, factory in available_launchers().items():
        if inspect.isclass(factory) and isinstance(launcher, factory):
            return name
    return type(launcher).__name__


async def close_launcher(launcher: Any) -> None:
    """``close()`` may be sync (the protocol) or async (a forkserver might need it)."""
    outcome = launcher.close()
    if inspect.isawaitable(outcome):
        await outcome
