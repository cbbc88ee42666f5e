"""Plugins: the microkernel's loader, and the one administration service front ends render.

The loader (``loader.py`` with ``install.py``, the vocabulary in ``lifecycle.py``) installs a
plugin package, starts its worker under supervision and wires it into the kernel; the record
of what is installed and active is ``installed.py``; hot upgrades and rollbacks are
``upgrade.py`` (reached through ``upgrading.py``), and ``follow.py`` follows a version another
process made active.

``deeting plugin …`` and the chat's plugin manager list, install, enable, disable, grant,
revoke, upgrade, roll back and uninstall through :class:`PluginService`, and read a plugin as
a :class:`PluginInfo`: one state (:class:`PluginState`), one origin (:class:`Origin`), the
cause the kernel stored when it disabled it (:class:`Cause`, never parsed out of a sentence).
So the CLI and the chat cannot disagree about a plugin, and wording lives here once.

The registry and the sandbox's description of a grant are reached through ports
(:class:`RegistryPort`, :data:`DescribeSandbox`), plugged in by the composition root
(``deeting_tui.compose``): the kernel imports neither httpx and PyNaCl nor the sandbox.
"""

from __future__ import annotations

from .info import COUNTED, READY_SAID, Origin, PluginInfo, PluginState, origin_of
from .installed import Cause
from .loader import AlreadyInstalled, InstallReport
from .ports import DescribeSandbox, RegistryPort, StagedPlugin, Update
from .service import PluginService

__all__ = [
    "COUNTED",
    "READY_SAID",
    "AlreadyInstalled",
    "Cause",
    "DescribeSandbox",
    "InstallReport",
    "Origin",
    "PluginInfo",
    "PluginService",
    "PluginState",
    "RegistryPort",
    "StagedPlugin",
    "Update",
    "origin_of",
]
