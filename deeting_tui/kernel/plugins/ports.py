"""What the plugin service needs from outside the kernel, as ports the composition root plugs.

The registry client (``deeting_tui.store``, with httpx and PyNaCl) and the sandbox's words for
a grant (``deeting_tui.sandbox.policy``) are below no kernel module; ``deeting_tui.compose``
plugs them into ``kernel.plugins`` (as kernel/assistant.py is the port to the LLM).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from deeting_tui.plugin.scopes import Scope

__all__ = [
    "AvailablePlugin",
    "BundlePort",
    "DescribeSandbox",
    "RegistryPort",
    "StagedPlugin",
    "Update",
]


DescribeSandbox = Callable[[Sequence[Scope]], dict[str, str]]
"""What the OS sandbox allows a plugin holding these scopes (sandbox.policy.describe_grants)."""


class Update(Protocol):
    """A newer version of an installed plugin in the synced registry."""

    @property
    def name(self) -> str: ...
    @property
    def installed(self) -> str: ...
    @property
    def available(self) -> str: ...


class StagedPlugin(Protocol):
    """Registry code verified, unpacked and fsynced at ``versions/NAME/VERSION`` (``code``),
    ready for the loader; ``discard`` removes it if it was put there for this install."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def code(self) -> Path: ...
    def discard(self) -> None: ...


class RegistryPort(Protocol):
    """The registry as the kernel needs it; the store implements it (store/port.py)."""

    def updating(self) -> AbstractContextManager[None]:
        """Hold the updater lock: one install, upgrade or rollback at a time."""
        ...

    def updates(self, installed: Sequence[tuple[str, str]]) -> Sequence[Update]:
        """Of these (name, version), those with a newer version in the synced registry."""
        ...

    async def stage(
        self,
        name: str,
        version: str | None,
        *,
        kept: Sequence[tuple[str, str]],
        current: str | None = None,
        previous: str | None = None,
        allow_downgrade: bool = False,
        on_progress: Callable[[str, int, int | None], None] | None = None,
    ) -> StagedPlugin | None:
        """Download, verify and stage ``name`` (``version``, or the newest) after removing
        leftovers no (name, version) in ``kept`` points to. For an upgrade from ``current``
        (``previous`` kept on disk): None when it is that version already."""
        ...


class AvailablePlugin(Protocol):
    """A plugin that ships with deeting and is not installed: what it is and would need."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def permissions(self) -> tuple[str, ...]: ...
    @property
    def origin(self) -> str: ...


class BundlePort(Protocol):
    """The official plugins deeting carries (store/bundle.py), and a fresh home's first run."""

    @property
    def first_run(self) -> bool:
        """Whether this start takes part in a fresh home's first run (decided, and marked,
        before the kernel was built)."""
        ...

    def available(self) -> Sequence[AvailablePlugin]:
        """Every bundled plugin (its newest version); a DeetingError when it is damaged."""
        ...

    def first_run_lock(self) -> AbstractContextManager[None]:
        """The updater lock, waiting for another process's first run rather than failing."""
        ...

    def still_pending(self) -> bool:
        """Under the lock: whether the first run is still to do (another process may have)."""
        ...

    def mark_done(self) -> None: ...

    async def stage(
        self, name: str, version: str | None, *, kept: Sequence[tuple[str, str]]
    ) -> StagedPlugin:
        """Verify the bundled ``name`` and stage it, as a registry download (under the lock)."""
        ...
