"""The plugin service: every plugin operation of one kernel, for every front end.

Changes go through the kernel's loader (its locks, rollbacks and notices apply whichever
front end asked); upgrades and rollbacks through the kernel, which tells every listener.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from deeting_tui.errors import Fix, Hint
from deeting_tui.plugin.manifest import PluginSpec
from deeting_tui.plugin.names import split_source
from deeting_tui.plugin.scopes import Scope, ScopeError, parse_scope, reads_user_input

from ..permissions import GrantStore, missing_scopes
from .info import COUNTED, PluginInfo, PluginState, origin_of
from .installed import Cause, InstalledPlugin, InstalledStore
from .loader import (
    AlreadyInstalled,
    AskGrants,
    GrantReport,
    InstallReport,
    Loader,
    OnStep,
    PluginError,
    RevokeReport,
    UpgradeReport,
    check_name_and_version,
)
from .ports import AvailablePlugin, BundlePort, DescribeSandbox, RegistryPort, Update

__all__ = ["PluginHost", "PluginService"]


class PluginHost(Protocol):
    """What the service needs of its kernel (kernel.Kernel, which builds it): the stores and
    loader it reads and changes, and the upgrades the kernel tells every listener about."""

    @property
    def installed(self) -> InstalledStore: ...
    @property
    def grants(self) -> GrantStore: ...
    @property
    def loader(self) -> Loader: ...
    @property
    def runs_plugins(self) -> bool:
        """Whether this kernel starts plugins (a chat or a script), not only administers them."""
        ...

    async def upgrade_plugin(
        self,
        name: str,
        version: str,
        *,
        grant: Sequence[str] = (),
        yes: bool = False,
        ask_all: AskGrants | None = None,
        allow_downgrade: bool = False,
    ) -> UpgradeReport: ...

    async def rollback_plugin(
        self, name: str, *, ask_all: AskGrants | None = None
    ) -> UpgradeReport: ...


class PluginService:
    """Every plugin operation of one kernel; changes go through its loader, so its locks,
    rollbacks and notices apply whichever front end asked."""

    def __init__(self, kernel: PluginHost) -> None:
        self.kernel = kernel
        self.registry: RegistryPort | None = None
        self.describe_sandbox: DescribeSandbox | None = None
        #: The plugins deeting carries (store/bundle.py); None: no bundle here.
        self.bundled: BundlePort | None = None

    # -- reading -----------------------------------------------------------------------------

    def names(self) -> list[str]:
        return [record.name for record in self.kernel.installed.all()]

    def all(self) -> list[PluginInfo]:
        return [self._info(record) for record in self.kernel.installed.all()]

    def info(self, name: str) -> PluginInfo:
        return self._info(self.kernel.loader.record(name))

    def spec(self, name: str) -> PluginSpec:
        """The installed copy's manifest (PluginError for a damaged copy)."""
        return self.kernel.loader.spec(name)

    def running(self, name: str) -> bool:
        return name in self.kernel.loader.runtimes

    def granted(self, name: str) -> list[Scope]:
        return self.kernel.grants.granted(name)

    def fingerprint(self) -> object:
        """A cheap value that changes whenever a listing would (no manifest is read)."""
        running, grants = self.kernel.loader.runtimes, self.kernel.grants
        return [
            (
                r.name,
                r.version,
                r.enabled,
                r.disabled_reason,
                r.name in running,
                r.name in running and running[r.name].waiting,  # started on first use
                tuple(grants.granted(r.name)),
            )
            for r in self.kernel.installed.all()
        ]

    def available(self) -> list[AvailablePlugin]:
        """The bundled plugins that are not installed, for listings: none without a bundle
        or when it does not verify (installing one then says why)."""
        from deeting_tui.errors import DeetingError

        if self.bundled is None:
            return []
        try:
            bundled = self.bundled.available()
        except DeetingError:
            return []
        return [p for p in bundled if self.kernel.installed.get(p.name) is None]

    def available_one(self, name: str) -> AvailablePlugin | None:
        return next((p for p in self.available() if p.name == name), None)

    async def first_run(self) -> str | None:
        """A fresh home's first run: install and enable the bundled plugins that need no
        consent (no permission, no subscription to what the user types), once. Returns a
        warning line when it failed (deeting starts anyway; the next start tries again)."""
        from deeting_tui.errors import DeetingError

        port = self.bundled
        if port is None or not port.first_run:
            return None
        try:
            with port.first_run_lock():
                self.kernel.installed.reload()  # another process may have done it already
                if not port.still_pending():
                    return None
                for plugin in port.available():
                    if plugin.permissions or self.kernel.installed.get(plugin.name) is not None:
                        continue
                    await self._install_bundled(port, plugin.name)
                port.mark_done()
        except DeetingError as exc:
            return f"the plugins bundled with deeting were not installed: {exc.message}"
        return None

    async def _install_bundled(self, port: BundlePort, name: str) -> None:
        staged = await port.stage(name, None, kept=self._kept())
        try:
            spec = self.kernel.loader.code_spec(staged.name, staged.version)
            if any(reads_user_input(event.topic) for event in spec.events):
                staged.discard()  # reading what the user types needs their consent
                return
            await self.kernel.loader.install_prepared(
                staged.name, staged.version, staged.source, start=False
            )
        except BaseException:
            if self.kernel.installed.get(name) is None:
                staged.discard()
            raise

    def state(self, name: str) -> PluginState:
        return self.info(name).state

    def health(self) -> Counter[PluginState]:
        return Counter(info.state for info in self.all())

    def health_line(self) -> str:
        """E.g. ``3 running · 40 ready · 1 crashed``; disabled ones go unsaid, ready ones
        (they start when first used) only when there are some, and "0 running" beside them."""
        counts = self.health()
        running, ready = counts[PluginState.ENABLED], counts[PluginState.READY]
        parts = [f"{running} running"] if running or not ready else []
        if ready:
            parts.append(f"{ready} ready")
        parts += [f"{counts[state]} {said}" for state, said in COUNTED.items() if counts[state]]
        return " · ".join(parts)

    def _info(self, record: InstalledPlugin) -> PluginInfo:
        kernel = self.kernel
        runtime = kernel.loader.runtimes.get(record.name)
        info = PluginInfo(
            name=record.name,
            version=record.version,
            state=PluginState.DAMAGED,
            origin=origin_of(record),
            source=record.source,
            enabled=record.enabled,
            running=runtime is not None,
            reason=None if record.enabled else record.disabled_reason,
            cause=None if record.enabled else record.cause,
            previous=record.previous,
            spec=None,
        )
        try:
            spec = kernel.loader.spec(record.name)
        except PluginError as exc:  # a damaged copy: listed, so that it can be removed
            return replace(info, problem=exc.message)
        granted = kernel.grants.granted(record.name)
        missing = missing_scopes(spec.permissions, granted)
        if runtime is not None and runtime.waiting:
            state = PluginState.READY
        elif runtime is not None:
            ready = runtime.supervisor.state in ("ready", "cancelling")
            state = PluginState.ENABLED if ready else PluginState.RESTARTING
        elif missing:
            state = PluginState.NEEDS_CONSENT
        elif info.cause is Cause.CRASHED:
            state = PluginState.CRASHED
        elif record.enabled and not kernel.runs_plugins:
            # It starts with the next chat or script: at once, or when it is first used.
            waits = kernel.loader.waits_for_use(spec)
            state = PluginState.READY if waits else PluginState.ENABLED
        else:
            state = PluginState.DISABLED
        describe = self.describe_sandbox
        sandbox = describe(granted) if describe is not None else {}
        if spec.mcp is not None and "programs" in sandbox:
            shell = any(scope.kind == "shell" for scope in granted)
            sandbox = {**sandbox, "programs": spec.mcp.programs_words(shell)}
        return replace(
            info,
            state=state,
            spec=spec,
            permissions=tuple(spec.permissions),
            granted=tuple(granted),
            missing=tuple(missing),
            sandbox=sandbox,
        )

    # -- install -----------------------------------------------------------------------------

    async def install(
        self,
        source: str,
        *,
        grant: Sequence[str] = (),
        yes: bool = False,
        force: bool = False,
        ask_all: AskGrants | None = None,
        on_step: OnStep | None = None,
        on_progress: Callable[[str, int, int | None], None] | None = None,
    ) -> InstallReport:
        """Install from a folder, a zip or the registry: a path that exists is a path, else
        a NAME or NAME@VERSION is a registry name (decided here, for every front end)."""
        path = Path(source).expanduser()
        wanted = split_source(source)
        if wanted is None or path.exists():
            return await self.kernel.loader.install(
                path, grant=grant, yes=yes, force=force, ask_all=ask_all, on_step=on_step
            )
        name, version = wanted
        if force:
            raise PluginError(
                "--force is for folder and zip installs; a registry plugin changes version "
                "with an upgrade",
                Hint(Fix.UPGRADE, name),
            )
        if version is not None:
            check_name_and_version(name, version)
        existing = self.kernel.installed.get(name)
        if existing is not None:  # a registry copy changes by upgrade, a folder's by reinstall
            again = Hint(Fix.INSTALL, argument=existing.source, flags=("--force",))
            raise AlreadyInstalled(
                f"'{name}' {existing.version} is already installed",
                again if existing.dev else Hint(Fix.UPGRADE, name),
                name,
                existing.version,
            )
        registry = self._registry()
        with registry.updating():
            staged = await registry.stage(name, version, kept=self._kept(), on_progress=on_progress)
            assert staged is not None
            try:
                return await self.kernel.loader.install_prepared(
                    staged.name,
                    staged.version,
                    staged.source,
                    grant=grant,
                    yes=yes,
                    ask_all=ask_all,
                    on_step=on_step,
                )
            except BaseException:
                if self.kernel.installed.get(name) is None:
                    staged.discard()
                raise

    # -- enable / disable / uninstall --------------------------------------------------------

    async def enable(self, name: str, *, ask_all: AskGrants | None = None) -> PluginInfo:
        """Start it; with ``ask_all``, ask first for what it still needs (denied: it stays
        disabled, and PluginError says so)."""
        spec = self.kernel.loader.spec(name)
        missing = missing_scopes(spec.permissions, self.kernel.grants.granted(name))
        if missing and ask_all is not None:
            allowed = await ask_all(name, missing)
            agreed = [scope for scope in missing if scope in allowed]
            if agreed != missing:
                raise PluginError(
                    f"{name} stays disabled: permissions not granted",
                    Hint(Fix.GRANT, name, str(missing[0])),
                )
            self.kernel.grants.grant(name, agreed)
        await self.kernel.loader.enable(name)
        return self.info(name)

    async def disable(self, name: str) -> bool:
        """Stop it and record it disabled; False when it was already."""
        record = self.kernel.loader.record(name)
        if not record.enabled and name not in self.kernel.loader.runtimes:
            return False
        await self.kernel.loader.disable(name)
        return True

    async def uninstall(self, name: str) -> InstalledPlugin:
        return await self.kernel.loader.uninstall(name)

    # -- grants ------------------------------------------------------------------------------

    def declared(self, name: str, scope: str | Scope) -> Scope:
        """``scope`` parsed, and one that ``name`` declares (PluginError otherwise)."""
        spec = self.kernel.loader.spec(name)
        if isinstance(scope, str):
            try:
                scope = parse_scope(scope)
            except ScopeError as exc:
                raise PluginError(f"{scope}: {exc}") from None
        if scope not in spec.permissions and spec.mcp is not None:
            # A stock MCP server declares what its user granted: the user may grant more.
            self.kernel.loader.declare(name, scope)
            return scope
        if scope not in spec.permissions:
            declared = ", ".join(str(s) for s in spec.permissions) or "nothing"
            raise PluginError(f"'{name}' does not ask for '{scope}' (it declares: {declared})")
        return scope

    async def grant(self, name: str, scope: str | Scope) -> GrantReport:
        return await self.kernel.loader.grant(name, [self.declared(name, scope)])

    async def revoke(self, name: str, scope: str | Scope) -> RevokeReport:
        """Take a scope back (it may be one the plugin no longer declares)."""
        self.kernel.loader.record(name)
        if isinstance(scope, str):
            try:
                scope = parse_scope(scope)
            except ScopeError as exc:
                raise PluginError(f"{scope}: {exc}") from None
        if scope not in self.kernel.grants.granted(name):
            self.declared(name, scope)  # neither held nor declared: say what it declares
        return await self.kernel.loader.revoke(name, scope)

    # -- upgrade / rollback ------------------------------------------------------------------

    def updates(self) -> dict[str, str]:
        """Newer versions in the synced registry: none without one, or when it no longer
        verifies (nothing is then offered)."""
        from deeting_tui.errors import DeetingError

        if self.registry is None:
            return {}
        installed = [(r.name, r.version) for r in self.kernel.installed.all() if not r.dev]
        try:
            return {u.name: u.available for u in self.registry.updates(installed)}
        except DeetingError:
            return {}

    def update_list(self) -> Sequence[Update]:
        """The updates as the registry states them (its errors raise)."""
        installed = [(r.name, r.version) for r in self.kernel.installed.all() if not r.dev]
        return self._registry().updates(installed)

    async def upgrade(
        self,
        name: str,
        version: str | None = None,
        *,
        allow_downgrade: bool = False,
        grant: Sequence[str] = (),
        yes: bool = False,
        ask_all: AskGrants | None = None,
        on_progress: Callable[[str, int, int | None], None] | None = None,
    ) -> UpgradeReport | None:
        """Upgrade one registry plugin to ``version`` (default: the newest); None when it
        is already at it. Told to the front ends as a ``plugin_notice``."""
        if version is not None:
            check_name_and_version(name, version)
        record = self.kernel.loader.record(name)
        if record.dev:
            raise PluginError(
                f"'{name}' is a local dev install from {record.source}; reinstall it from "
                "there with --force, or uninstall it and install it from the registry",
                Hint(Fix.INSTALL, argument=record.source, flags=("--force",)),
            )
        registry = self._registry()
        with registry.updating():
            staged = await registry.stage(
                name,
                version,
                kept=self._kept(),
                current=record.version,
                previous=record.previous,
                allow_downgrade=allow_downgrade,
                on_progress=on_progress,
            )
            if staged is None:
                return None
            try:
                report = await self.kernel.upgrade_plugin(
                    name,
                    staged.version,
                    grant=grant,
                    yes=yes,
                    ask_all=ask_all,
                    allow_downgrade=allow_downgrade,
                )
                # A bundled plugin upgraded from the registry now comes from the registry; the
                # copy kept for rollback still came from where it did.
                self.kernel.installed.set_source(name, staged.source, previous_source=record.source)
                return report
            except BaseException:
                current = self.kernel.installed.get(name)
                if current is None or current.version != staged.version:
                    staged.discard()
                raise

    async def rollback(self, name: str, *, ask_all: AskGrants | None = None) -> UpgradeReport:
        """Back to the version the last upgrade kept; told as a ``plugin_notice``."""
        lock = self.registry.updating() if self.registry is not None else nullcontext()
        with lock:
            report = await self.kernel.rollback_plugin(name, ask_all=ask_all)
            self.kernel.installed.swap_sources(name)
            return report

    # -- helpers -----------------------------------------------------------------------------

    def _registry(self) -> RegistryPort:
        if self.registry is None:
            raise PluginError("no registry client is available here")
        return self.registry

    def _kept(self) -> list[tuple[str, str]]:
        kept = []
        for record in self.kernel.installed.all():
            kept.append((record.name, record.version))
            if record.previous:
                kept.append((record.name, record.previous))
        return kept
