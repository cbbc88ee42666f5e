"""The Loader's upgrade and rollback: a mixin of the Loader (loader.py) that hands each one to
an Upgrader (upgrade.py), built by the factory the composition root gave the loader."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, Self

from .lifecycle import AskGrant, AskGrants, UpgradeReport, _one_by_one


class Upgrades(Protocol):
    """What the loader needs of an ``upgrade.Upgrader`` (which builds on the loader)."""

    async def upgrade(
        self,
        name: str,
        version: str,
        *,
        grant: Sequence[str] = (),
        yes: bool = False,
        ask_all: AskGrants | None = None,
        allow_downgrade: bool = False,
    ) -> UpgradeReport: ...

    async def rollback(
        self,
        name: str,
        *,
        grant: Sequence[str] = (),
        yes: bool = False,
        ask_all: AskGrants | None = None,
    ) -> UpgradeReport: ...


class Upgrading:
    """The upgrade steps of the Loader, which sets the factory declared below."""

    _make_upgrader: Callable[[Self], Upgrades]

    # -- upgrade (see upgrade.py) ------------------------------------------------------------

    async def upgrade(
        self,
        name: str,
        version: str,
        *,
        grant: Sequence[str] = (),
        yes: bool = False,
        ask: AskGrant | None = None,
        ask_all: AskGrants | None = None,
        allow_downgrade: bool = False,
    ) -> UpgradeReport:
        """Make ``version`` (already at ``versions/NAME/VERSION``) the active one, hot when
        the plugin runs. Scopes it adds need consent; refused, nothing changes."""
        return await self._upgrader().upgrade(
            name,
            version,
            grant=grant,
            yes=yes,
            ask_all=_one_by_one(ask) if ask_all is None and ask is not None else ask_all,
            allow_downgrade=allow_downgrade,
        )

    async def rollback(
        self,
        name: str,
        *,
        grant: Sequence[str] = (),
        yes: bool = False,
        ask: AskGrant | None = None,
        ask_all: AskGrants | None = None,
    ) -> UpgradeReport:
        """Go back to the version the last upgrade kept; it becomes the kept one in turn."""
        return await self._upgrader().rollback(
            name,
            grant=grant,
            yes=yes,
            ask_all=_one_by_one(ask) if ask_all is None and ask is not None else ask_all,
        )

    def _upgrader(self: Self) -> Upgrades:
        return self._make_upgrader(self)
