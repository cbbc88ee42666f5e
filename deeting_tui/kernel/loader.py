"""Plugin lifecycle: install → enable → disable → uninstall, on disk and as running workers.

Every step either completes or leaves things as they were: installs are staged and renamed
into place, a failing ``postinstall`` rolls the copy back, and the persisted state only
changes after the step it records has succeeded.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from deeting_tui.plugin.archive import ArchiveError, extract_zip
from deeting_tui.plugin.manifest import ManifestError, PluginSpec, check_plugin, load_plugin
from deeting_tui.plugin.scopes import Scope, ScopeError, parse_scope
from deeting_tui.rpc.errors import RpcError

from .installed import InstalledPlugin, InstalledStore
from .launcher import Launcher
from .paths import Paths
from .permissions import GrantStore, PermissionMissing, missing_scopes
from .supervisor import (
    SupervisionPolicy,
    Supervisor,
    SupervisorHooks,
    WorkerConfig,
    WorkerStartError,
)

log = logging.getLogger("deeting.loader")

HOOK_TIMEOUT = 30.0
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".git", ".DS_Store")


class PluginError(Exception):
    """A lifecycle step failed; the message is one line saying what to do."""


@dataclass
class PluginRuntime:
    """An enabled plugin: its spec and the supervisor of its worker."""

    spec: PluginSpec
    supervisor: Supervisor


class Wiring(Protocol):
    """The kernel's side of enable/disable: routes, tools and subscriptions."""

    def attach(self, runtime: PluginRuntime) -> None: ...

    def detach(self, runtime: PluginRuntime) -> None: ...


@dataclass
class InstallReport:
    spec: PluginSpec
    dev: bool
    granted: list[Scope]
    enabled: bool
    problem: str | None = None  # why it is installed but not enabled


AskGrant = Callable[[str, Scope], bool]


class Loader:
    def __init__(
        self,
        paths: Paths,
        installed: InstalledStore,
        grants: GrantStore,
        launcher: Launcher,
        hooks_for: Callable[[str], SupervisorHooks],
        wiring: Wiring,
        policy: SupervisionPolicy | None = None,
    ) -> None:
        self.paths = paths
        self.installed = installed
        self.grants = grants
        self.launcher = launcher
        self.hooks_for = hooks_for
        self.wiring = wiring
        self.policy = policy
        self.runtimes: dict[str, PluginRuntime] = {}

    # -- queries -----------------------------------------------------------------------------

    def record(self, name: str) -> InstalledPlugin:
        plugin = self.installed.get(name)
        if plugin is None:
            raise PluginError(f"no plugin '{name}' is installed — see: deeting plugin list")
        return plugin

    def spec(self, name: str) -> PluginSpec:
        plugin = self.record(name)
        try:
            return load_plugin(self.paths.plugin_code(name, plugin.version))
        except ManifestError as exc:
            first = exc.problems[0] if exc.problems else "unknown problem"
            raise PluginError(
                f"installed copy of '{name}' is damaged ({first}) — reinstall it with --force"
            ) from None

    # -- install -----------------------------------------------------------------------------

    async def install(
        self,
        source: Path,
        *,
        grant: Sequence[str] = (),
        yes: bool = False,
        force: bool = False,
        ask: AskGrant | None = None,
    ) -> InstallReport:
        staging_root = self.paths.plugins_dir / ".staging"
        staging_root.mkdir(parents=True, exist_ok=True)
        stage = staging_root / secrets.token_hex(6)
        try:
            root, dev = self._unpack(source, stage)
            spec = self._validated(root, source)
            requested = self._requested_grants(spec, grant)
            return await self._install_from(spec, source, dev, requested, yes, force, ask, stage)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def _unpack(self, source: Path, stage: Path) -> tuple[Path, bool]:
        if source.is_dir():
            return source, True
        if not source.exists():
            raise PluginError(
                f"{source}: no such folder or zip — installing by registry name comes with "
                "`deeting registry sync`; pass a plugin folder or a .zip"
            )
        if not zipfile.is_zipfile(source):
            raise PluginError(f"{source}: not a plugin folder or a zip archive")
        try:
            return extract_zip(source, stage / "unpacked"), False
        except ArchiveError as exc:
            raise PluginError(f"{source}: refused: {exc}") from None

    def _validated(self, root: Path, source: Path) -> PluginSpec:
        spec, problems = check_plugin(root)
        if problems or spec is None:
            lines = "; ".join(str(p) for p in problems[:5])
            more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
            raise PluginError(
                f"{source}: not a valid plugin: {lines}{more} — check it with: "
                f"python ci/lint.py {source}"
            )
        return spec

    def _requested_grants(self, spec: PluginSpec, grant: Sequence[str]) -> list[Scope]:
        requested = []
        for text in grant:
            try:
                scope = parse_scope(text)
            except ScopeError as exc:
                raise PluginError(f"--grant {text}: {exc}") from None
            if scope not in spec.permissions:
                declared = ", ".join(str(s) for s in spec.permissions) or "none"
                raise PluginError(
                    f"--grant {text}: '{spec.name}' does not ask for it (it declares: {declared})"
                )
            requested.append(scope)
        return requested

    async def _install_from(
        self,
        spec: PluginSpec,
        source: Path,
        dev: bool,
        requested: list[Scope],
        yes: bool,
        force: bool,
        ask: AskGrant | None,
        stage: Path,
    ) -> InstallReport:
        existing = self.installed.get(spec.name)
        if existing is not None and not force:
            same = existing.version == spec.version
            raise PluginError(
                f"'{spec.name}' {existing.version} is already installed"
                + (" — pass --force to reinstall it" if same else " — uninstall it first")
            )
        if existing is not None:
            await self.uninstall(spec.name, keep_data=True)
        target = self.paths.plugin_code(spec.name, spec.version)
        copy = stage / "copy"
        shutil.copytree(spec.root, copy, ignore=COPY_IGNORE, symlinks=False)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # debris of an interrupted earlier install
            shutil.rmtree(target)
        copy.rename(target)
        installed_spec = load_plugin(target)
        try:
            await self._run_hook(installed_spec, "postinstall")
        except PluginError:
            shutil.rmtree(target, ignore_errors=True)
            with contextlib.suppress(OSError):
                target.parent.rmdir()
            if existing is None:
                self._remove_data(spec.name)
            raise
        granted = self._settle_grants(installed_spec, requested, yes, ask)
        self.installed.put(
            InstalledPlugin(spec.name, spec.version, str(source.resolve()), dev, enabled=False)
        )
        report = InstallReport(installed_spec, dev, granted, enabled=False)
        try:
            await self.enable(spec.name)
            report.enabled = True
        except PluginError as exc:
            report.problem = str(exc)
        return report

    def _settle_grants(
        self, spec: PluginSpec, requested: list[Scope], yes: bool, ask: AskGrant | None
    ) -> list[Scope]:
        to_grant = list(spec.permissions) if yes else list(requested)
        if not yes and ask is not None:
            for scope in missing_scopes(
                spec.permissions, [*self.grants.granted(spec.name), *to_grant]
            ):
                if ask(spec.name, scope):
                    to_grant.append(scope)
        if to_grant:
            self.grants.grant(spec.name, to_grant)
        return to_grant

    # -- enable / disable --------------------------------------------------------------------

    async def enable(self, name: str) -> PluginRuntime:
        if name in self.runtimes:
            return self.runtimes[name]
        spec = self.spec(name)
        try:
            self.grants.check(name, spec.permissions)
        except PermissionMissing as exc:
            self.installed.set_enabled(name, False, str(exc))
            raise PluginError(str(exc)) from None
        supervisor = self._supervisor(spec)
        try:
            await supervisor.start()
            if "activate" in supervisor.hooks_defined:
                await supervisor.request("activate", timeout=HOOK_TIMEOUT)
        except (WorkerStartError, RpcError) as exc:
            await supervisor.stop()
            message = exc.message if isinstance(exc, RpcError) else str(exc)
            raise PluginError(f"could not enable '{name}': {_one_line(message)}") from None
        runtime = PluginRuntime(spec, supervisor)
        try:
            self.wiring.attach(runtime)
        except PluginError:
            await self._deactivate(runtime)
            raise
        self.runtimes[name] = runtime
        self.installed.set_enabled(name, True)
        return runtime

    async def disable(self, name: str, *, reason: str | None = None, persist: bool = True) -> None:
        record = self.record(name)
        runtime = self.runtimes.pop(name, None)
        if runtime is not None:
            self.wiring.detach(runtime)
            await self._deactivate(runtime)
        if persist and (record.enabled or reason):
            self.installed.set_enabled(name, False, reason)

    async def _deactivate(self, runtime: PluginRuntime) -> None:
        supervisor = runtime.supervisor
        if supervisor.state == "ready" and "deactivate" in supervisor.hooks_defined:
            try:
                await supervisor.request("deactivate", timeout=5.0)
            except RpcError as exc:
                log.warning("plugin %s: deactivate failed: %s", runtime.spec.name, exc.message)
        await supervisor.stop()

    def forget_runtime(self, name: str) -> PluginRuntime | None:
        """Drop a runtime whose worker the supervisor already gave up on (crash loop)."""
        runtime = self.runtimes.pop(name, None)
        if runtime is not None:
            self.wiring.detach(runtime)
        return runtime

    # -- uninstall ---------------------------------------------------------------------------

    async def uninstall(self, name: str, *, keep_data: bool = False) -> InstalledPlugin:
        record = self.record(name)
        await self.disable(name, persist=False)
        with contextlib.suppress(PluginError):
            spec = self.spec(name)
            try:
                await self._run_hook(spec, "preuninstall")
            except PluginError as exc:
                log.warning("%s (uninstalling anyway)", exc)
        shutil.rmtree(self.paths.plugins_dir / "versions" / name, ignore_errors=True)
        if not keep_data:
            self._remove_data(name)
            self.grants.forget(name)
        self.installed.remove(name)
        return record

    def _remove_data(self, name: str) -> None:
        for folder in (
            self.paths.plugin_data(name),
            self.paths.plugin_cache(name),
            self.paths.plugin_tmp(name),
        ):
            shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.paths.plugin_log(name).unlink()

    # -- start-up and shutdown ---------------------------------------------------------------

    async def start_enabled(self) -> list[str]:
        """Start every plugin recorded as enabled; returns one message per failure."""
        problems = []
        for record in self.installed.all():
            if not record.enabled:
                continue
            try:
                await self.enable(record.name)
            except PluginError as exc:
                problems.append(str(exc))
        return problems

    async def shutdown(self) -> None:
        """Stop every worker; the persisted enabled state is kept for the next start."""
        for name in list(self.runtimes):
            runtime = self.runtimes.pop(name)
            self.wiring.detach(runtime)
            await self._deactivate(runtime)

    # -- helpers -----------------------------------------------------------------------------

    def _supervisor(self, spec: PluginSpec) -> Supervisor:
        p = self.paths
        config = WorkerConfig(
            name=spec.name,
            version=spec.version,
            root=spec.root,
            data_dir=p.plugin_data(spec.name),
            cache_dir=p.plugin_cache(spec.name),
            tmp_dir=p.plugin_tmp(spec.name),
            log_path=p.plugin_log(spec.name),
            scopes=[str(s) for s in self.grants.granted(spec.name)],
            call_timeout=spec.limits.call_timeout,
            memory_mb=spec.limits.memory_mb,
        )
        return Supervisor(config, self.launcher, self.hooks_for(spec.name), self.policy)

    async def _run_hook(self, spec: PluginSpec, hook: str) -> None:
        """Run a one-off lifecycle hook in a short-lived worker, if the plugin defines it."""
        supervisor = self._supervisor(spec)
        try:
            await supervisor.start()
            if hook in supervisor.hooks_defined:
                await supervisor.request(hook, timeout=HOOK_TIMEOUT)
        except (WorkerStartError, RpcError) as exc:
            message = exc.message if isinstance(exc, RpcError) else str(exc)
            raise PluginError(f"'{spec.name}' {hook} failed: {_one_line(message)}") from None
        finally:
            await supervisor.stop()


def _one_line(text: str) -> str:
    return " ".join(text.split())
