"""The plugin lifecycle's vocabulary: its error, a running plugin, the reports of each step,
the consent callbacks, and the checks every step shares.

The loader (loader.py), its install steps (install.py) and upgrades (upgrade.py) speak it;
kept below all three so none has to import another for a name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from deeting_tui.errors import DeetingError, Hint
from deeting_tui.plugin.manifest import PluginSpec
from deeting_tui.plugin.names import PLUGIN_NAME_RE
from deeting_tui.plugin.scopes import Scope
from deeting_tui.plugin.versions import SEMVER_RE

from ...workers.supervisor import Supervisor


class PluginError(DeetingError):
    """A lifecycle step failed: one line saying what, and the fix as a hint."""


class AlreadyInstalled(PluginError):
    """An install found a plugin of that name installed (any version): the same one line
    as any refusal, and the name and installed version as data, so that
    ``deeting plugin install --missing`` can leave it alone instead of failing."""

    def __init__(self, message: str, hint: Hint | None, name: str, version: str) -> None:
        super().__init__(message, hint)
        self.name = name
        self.version = version


@dataclass(eq=False)
class PluginRuntime:
    """An enabled plugin: its spec and the supervisor of its worker.

    ``on_demand``: its worker starts at its first use (a trigger, a tool call, a subscribed
    event) rather than with the kernel, and stops again after a while unused (the loader's
    ``awake`` and ``stop_idle``); until then the supervisor is ``stopped`` while the plugin's
    tools, trigger and subscriptions are wired all the same."""

    spec: PluginSpec
    supervisor: Supervisor
    on_demand: bool = False
    #: When it was last used (the loader's clock): a call, an event, a stream frame.
    last_active: float = 0.0
    #: The start under way for its first use, which every caller waiting for it shares.
    waking: asyncio.Future[None] | None = field(default=None, repr=False)

    @property
    def waiting(self) -> bool:
        """Enabled, and its worker not started: it starts when it is first used."""
        return self.on_demand and self.supervisor.state == "stopped"


class Wiring(Protocol):
    """The kernel's side of enable/disable: routes, tools and subscriptions."""

    def attach(self, runtime: PluginRuntime) -> None: ...

    def attach_all(
        self, runtimes: Sequence[PluginRuntime]
    ) -> list[tuple[PluginRuntime, PluginError | None]]:
        """Attach many at once (a kernel's start): the trigger table is built once, not once
        per plugin. Each runtime comes back with the refusal that left it out, if any."""
        ...

    def detach(self, runtime: PluginRuntime) -> None: ...

    def detach_all(self, runtimes: Sequence[PluginRuntime]) -> None:
        """Detach many at once (a shutdown): the trigger table is rebuilt once."""
        ...

    def swap(self, old: PluginRuntime, new: PluginRuntime) -> None:
        """Move routes and subscriptions from ``old`` to ``new`` in one synchronous step
        (a hot upgrade); raises PluginError, with ``old`` still wired, if ``new`` cannot be."""
        ...


@dataclass
class InstallReport:
    spec: PluginSpec
    dev: bool
    granted: list[Scope]
    enabled: bool
    problem: str | None = None  # why it is installed but not enabled
    hint: Hint | None = None  # and what would enable it
    #: Declared scopes still not granted: installed fine, waiting for the user's consent.
    awaiting: list[Scope] = field(default_factory=list)


@dataclass
class UpgradeReport:
    """What an upgrade, rollback or follow did."""

    name: str
    old: str
    new: str
    hot: bool  # a running worker was replaced without a pause
    drained: bool = True  # False: calls on the old worker outlived the drain timeout


AskGrant = Callable[[str, Scope], bool]
"""The CLI's prompt: one question per missing scope, answered synchronously."""
AskGrants = Callable[[str, list[Scope]], Awaitable[Collection[Scope]]]
"""A consent dialog: every missing scope at once; answers with the ones the user allows."""
OnStep = Callable[[str, float], None]
"""Install progress: what is happening now and the fraction done (0.0 … 1.0)."""

INSTALL_STEPS = (
    "unpacking",
    "validating",
    "copying",
    "dependencies",
    "postinstall",
    "permissions",
    "starting",
)


@dataclass
class GrantReport:
    """What granting changed: scopes newly added, what is still missing, whether it started."""

    added: list[Scope]
    missing: list[Scope]
    enabled: bool = False


@dataclass
class RevokeReport:
    """What revoking changed; ``disabled`` when the plugin was running and had to stop."""

    revoked: bool
    disabled: bool = False
    reason: str | None = None


def start_hint(message: str) -> str:
    """What to do when the plugin's code cannot even be imported for a missing module."""
    if "No module named" in message:
        # What is true today (docs/plugins.md#dependencies): nothing installs a plugin's
        # own third-party dependencies yet, so naming requirements.txt would mislead.
        return (
            " — a plugin can rely on the standard library, deeting_tui.sdk and its own src/ "
            "(docs/plugins.md#dependencies): fix the import, or vendor the module into src/"
        )
    return ""


def check_name_and_version(name: str, version: str) -> None:
    """Both become folder names under versions/: refuse anything but a plugin name and a
    SemVer version before any path is built from them."""
    if not isinstance(name, str) or not PLUGIN_NAME_RE.fullmatch(name):
        raise PluginError(
            f"{name!r} is not a plugin name (lowercase letters, digits and '-', at most 64)"
        )
    if not isinstance(version, str) or not SEMVER_RE.fullmatch(version):
        raise PluginError(f"{version!r} is not a SemVer version (like 1.2.3)")


def _progress(on_step: OnStep | None) -> Callable[[str], None]:
    """Turn step names into fractions of INSTALL_STEPS for ``on_step`` (a no-op without one)."""

    def step(label: str) -> None:
        if on_step is not None:
            done = INSTALL_STEPS.index(label) if label in INSTALL_STEPS else len(INSTALL_STEPS)
            on_step(label, done / len(INSTALL_STEPS))

    return step


def _one_by_one(ask: AskGrant) -> AskGrants:
    """The CLI's per-scope prompt, seen as a dialog that is shown every scope at once."""

    async def ask_all(name: str, scopes: list[Scope]) -> list[Scope]:
        return [scope for scope in scopes if ask(name, scope)]

    return ask_all
