"""Each installed plugin's state in one word, and a count of them for a status line.

The state is derived, never stored: from the loader's runtimes (and their supervisors), the
grant store and the installed record. Front ends ask here, so the chat's header and the
plugin manager cannot disagree about a plugin.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from .loader import PluginError
from .permissions import missing_scopes

if TYPE_CHECKING:
    from .kernel import Kernel


def plugin_state(kernel: Kernel, name: str) -> str:
    """One of enabled, restarting, needs consent, crashed, disabled (healthiest first).
    ``name`` must be installed; a damaged copy reads as crashed (it cannot run)."""
    runtime = kernel.loader.runtimes.get(name)
    if runtime is not None:
        return "enabled" if runtime.supervisor.state in ("ready", "cancelling") else "restarting"
    record = kernel.loader.record(name)
    try:
        declared = kernel.loader.spec(name).permissions
    except PluginError:  # a damaged install: the plugin manager shows why
        return "crashed"
    if missing_scopes(declared, kernel.grants.granted(name)):
        return "needs consent"
    if record.disabled_reason and " crashed " in record.disabled_reason:
        return "crashed"
    return "disabled"


def health_counts(kernel: Kernel) -> Counter[str]:
    return Counter(plugin_state(kernel, record.name) for record in kernel.installed.all())


def health_line(kernel: Kernel) -> str:
    """E.g. ``3 running · 1 crashed · 2 awaiting consent``; disabled ones go unsaid."""
    counts = health_counts(kernel)
    parts = [f"{counts['enabled']} running"]
    for state, said in (
        ("restarting", "restarting"),
        ("crashed", "crashed"),
        ("needs consent", "awaiting consent"),
    ):
        if counts[state]:
            parts.append(f"{counts[state]} {said}")
    return " · ".join(parts)
