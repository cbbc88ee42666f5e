"""Installing a plugin: from a folder or a zip (staged, validated, copied, fsynced and renamed
into place) or from code the registry client already staged; then postinstall, consent, the
record and a first start.

A mixin of the Loader (loader.py): the steps use its stores and its enable/uninstall, and
every step either completes or leaves things as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import zipfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from deeting_tui.errors import Fix, Hint
from deeting_tui.plugin.archive import ArchiveError, extract_zip
from deeting_tui.plugin.manifest import PluginSpec
from deeting_tui.plugin.scopes import Scope, ScopeError, parse_scope

from ...atomic import fsync_dir, fsync_tree
from ..permissions import missing_scopes
from .installed import InstalledPlugin
from .lifecycle import (
    AlreadyInstalled,
    AskGrant,
    AskGrants,
    InstallReport,
    OnStep,
    PluginError,
    _one_by_one,
    _progress,
    check_name_and_version,
)
from .specs import validate_plugin

if TYPE_CHECKING:
    from deeting_tui.plugin.checker import Layout

    from ...paths import Paths
    from ..permissions import GrantStore
    from .installed import InstalledStore
    from .lifecycle import PluginRuntime
    from .specs import SpecCache

COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".git", ".DS_Store")


async def _to_the_end(work: Awaitable[object]) -> None:
    """Await a thread's work; cancelled, still let it end (a thread cannot be stopped, and
    pip may still be writing into the stage) before the caller removes the stage."""
    job = asyncio.ensure_future(work)
    try:
        await asyncio.shield(job)
    except asyncio.CancelledError:
        await asyncio.wait([job])
        if not job.cancelled():
            job.exception()  # retrieved: the cancel is what the caller hears
        raise


class Installs:
    """The install steps of the Loader, which provides what is declared below."""

    if TYPE_CHECKING:
        paths: Paths
        installed: InstalledStore
        grants: GrantStore
        specs: SpecCache

        def code_spec(self, name: str, version: str) -> PluginSpec: ...
        async def enable(self, name: str, *, on_demand: bool = False) -> PluginRuntime: ...
        async def uninstall(self, name: str, *, keep_data: bool = False) -> InstalledPlugin: ...
        async def _run_hook(self, spec: PluginSpec, hook: str) -> None: ...
        def _remove_data(self, name: str) -> None: ...

    async def install(
        self,
        source: Path,
        *,
        grant: Sequence[str] = (),
        yes: bool = False,
        force: bool = False,
        ask: AskGrant | None = None,
        ask_all: AskGrants | None = None,
        on_step: OnStep | None = None,
        generated: str | None = None,
    ) -> InstallReport:
        """Install from a folder (a dev install) or a zip, grant, and start.

        ``generated``: ``source`` is a folder ``deeting mcp add`` wrote in the staging area
        (an MCP server's plugin, its installation inside), and this is the source recorded
        for it: validated as such, and moved into place rather than copied (a venv keeps its
        links to the machine's Python).

        Consent comes from ``--grant``/``yes``, then from ``ask`` (the CLI: one scope at a
        time) or ``ask_all`` (a dialog: every missing scope at once). ``on_step`` hears each
        step of :data:`INSTALL_STEPS` as it starts, then ``("done", 1.0)``.
        """
        steps = _progress(on_step)
        if ask_all is None and ask is not None:
            ask_all = _one_by_one(ask)
        staging_root = self.paths.plugins_dir / ".staging"
        staging_root.mkdir(parents=True, exist_ok=True)
        stage = staging_root / secrets.token_hex(6)
        try:
            steps("unpacking")
            root, dev = self._unpack(source, stage)
            dev = dev and not generated  # ours, not an author's work in progress
            steps("validating")
            layout: Layout = "generated" if generated else "source" if dev else "archive"
            spec = self._validated(root, source, layout)
            requested = self.requested_grants(spec, grant)
            report = await self._install_from(
                spec, source, dev, requested, (yes, ask_all), force, stage, steps, generated
            )
            steps("done")
            return report
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    async def install_prepared(
        self,
        name: str,
        version: str,
        source: str,
        *,
        grant: Sequence[str] = (),
        yes: bool = False,
        ask: AskGrant | None = None,
        ask_all: AskGrants | None = None,
        on_step: OnStep | None = None,
        start: bool = True,
    ) -> InstallReport:
        """Install code the registry client already verified, extracted and fsynced at
        ``versions/NAME/VERSION``: validate, postinstall, grants (as :meth:`install`), record,
        enable. On PluginError nothing is recorded and the folder is left to the caller;
        an installed ``name`` is refused (that is an upgrade). Without ``start`` a plugin
        that needs no grant is recorded enabled and starts with the next chat or script
        (a first run, before the kernel starts its plugins).
        """
        steps = _progress(on_step)
        if ask_all is None and ask is not None:
            ask_all = _one_by_one(ask)
        check_name_and_version(name, version)
        existing = self.installed.get(name)
        if existing is not None:
            raise AlreadyInstalled(
                f"'{name}' {existing.version} is already installed",
                Hint(Fix.UPGRADE, name),
                name,
                existing.version,
            )
        steps("validating")
        spec = self.code_spec(name, version)
        requested = self.requested_grants(spec, grant)
        report = await self._settle_install(
            spec,
            source,
            False,
            requested,
            (yes, ask_all),
            steps,
            undo=lambda: self._remove_data(name),
            start=start,
        )
        steps("done")
        return report

    def _unpack(self, source: Path, stage: Path) -> tuple[Path, bool]:
        if source.is_dir():
            return source, True
        if not source.exists():
            raise PluginError(
                f"{source}: no such folder or zip — pass a plugin folder, a .zip, or a "
                "registry name (NAME or NAME@VERSION, after a registry sync)",
                Hint(Fix.SYNC),
            )
        if not zipfile.is_zipfile(source):
            raise PluginError(f"{source}: not a plugin folder or a zip archive")
        try:
            return extract_zip(source, stage / "unpacked"), False
        except ArchiveError as exc:
            raise PluginError(f"{source}: refused: {exc}") from None

    def _validated(self, root: Path, source: Path, layout: Layout) -> PluginSpec:
        """``layout``: an author's folder may not carry wheels/ or deps/, a zip only wheels/."""
        from deeting_tui.plugin.checker import check_plugin  # jsonschema: when installing

        spec, problems = check_plugin(root, layout=layout)
        if problems or spec is None:
            lines = "; ".join(str(p) for p in problems[:5])
            more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
            raise PluginError(
                f"{source}: not a valid plugin: {lines}{more} — check it with: "
                f"python ci/lint.py {source}"
            )
        return spec

    def requested_grants(self, spec: PluginSpec, grant: Sequence[str]) -> list[Scope]:
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
        consent: tuple[bool, AskGrants | None],
        force: bool,
        stage: Path,
        steps: Callable[[str], None],
        generated: str | None = None,
    ) -> InstallReport:
        existing = self.installed.get(spec.name)
        if existing is not None and not force:
            same = existing.version == spec.version
            raise AlreadyInstalled(
                f"'{spec.name}' {existing.version} is already installed"
                + (" — pass --force to reinstall it" if same else " — uninstall it first"),
                None,
                spec.name,
                existing.version,
            )
        steps("copying")
        target = self.paths.plugin_code(spec.name, spec.version)
        copy = stage / "copy"
        if generated:
            stage.mkdir(parents=True, exist_ok=True)
            spec.root.rename(copy)  # ours, in the same staging area: nothing to copy or fetch
        else:
            shutil.copytree(spec.root, copy, ignore=COPY_IGNORE, symlinks=False)
        steps("dependencies")
        from deeting_tui.plugin.wheel_install import WheelInstallError, prepare_dependencies

        try:  # a folder's wheels are fetched now; a zip carries them: both into copy/deps
            if not generated:
                await _to_the_end(
                    asyncio.to_thread(
                        prepare_dependencies, copy, label=f"{spec.name} {spec.version}", fetch=dev
                    )
                )
        except WheelInstallError as exc:
            raise PluginError(exc.message) from None
        if existing is not None:  # only now: a refused dependency leaves the old copy installed
            await self.uninstall(spec.name, keep_data=True)
        # As durable as a registry install (store/staging.py): synced, then renamed in place.
        if generated:
            os.sync()  # thousands of files a package manager just wrote: one flush, not each
        else:
            fsync_tree(copy)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # debris of an interrupted earlier install
            shutil.rmtree(target)
        copy.rename(target)
        fsync_dir(target.parent)

        def undo() -> None:
            shutil.rmtree(target, ignore_errors=True)
            with contextlib.suppress(OSError):
                target.parent.rmdir()
            if existing is None:
                self._remove_data(spec.name)

        installed = validate_plugin(target)
        self.specs.validated(target, installed)  # its first start reads no manifest again
        return await self._settle_install(
            installed,
            generated or str(source.resolve()),
            dev,
            requested,
            consent,
            steps,
            undo,
            # A reinstall keeps its place: ties of priority go to the plugin installed first.
            installed_at=existing.installed_at if existing is not None else 0.0,
        )

    async def _settle_install(
        self,
        spec: PluginSpec,
        source: str,
        dev: bool,
        requested: list[Scope],
        consent: tuple[bool, AskGrants | None],
        steps: Callable[[str], None],
        undo: Callable[[], None],
        installed_at: float = 0.0,
        start: bool = True,
    ) -> InstallReport:
        """The steps after the code is in place: postinstall (``undo`` on failure), grants,
        the record (``installed_at`` 0: now), and a start whose failure is reported, not
        raised."""
        steps("postinstall")
        try:
            await self._run_hook(spec, "postinstall")
        except PluginError:
            undo()
            raise
        steps("permissions")
        granted = await self._settle_grants(spec, requested, consent)
        self.installed.put(
            InstalledPlugin(
                spec.name, spec.version, source, dev, enabled=False, installed_at=installed_at
            )
        )
        report = InstallReport(spec, dev, granted, enabled=False)
        report.awaiting = missing_scopes(spec.permissions, self.grants.granted(spec.name))
        if not start and not report.awaiting:
            self.installed.set_enabled(spec.name, True)
            report.enabled = True
            return report
        steps("starting")
        try:
            await self.enable(spec.name)
            report.enabled = True
        except PluginError as exc:
            report.problem, report.hint = exc.message, exc.hint
        return report

    async def consented(
        self, spec: PluginSpec, requested: list[Scope], consent: tuple[bool, AskGrants | None]
    ) -> list[Scope]:
        """The scopes to grant: all declared with ``yes``, else ``--grant``'s plus what the
        dialog allows of the rest. Asks only about scopes not granted yet; records nothing."""
        yes, ask_all = consent
        to_grant = list(spec.permissions) if yes else list(requested)
        missing = missing_scopes(spec.permissions, [*self.grants.granted(spec.name), *to_grant])
        if missing and not yes and ask_all is not None:
            allowed = await ask_all(spec.name, missing)
            to_grant += [scope for scope in missing if scope in allowed]  # never more than asked
        return to_grant

    async def _settle_grants(
        self, spec: PluginSpec, requested: list[Scope], consent: tuple[bool, AskGrants | None]
    ) -> list[Scope]:
        to_grant = await self.consented(spec, requested, consent)
        if to_grant:
            self.grants.grant(spec.name, to_grant)
        return to_grant
