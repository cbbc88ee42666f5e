"""The composition root: the one place that wires paths, config, provider and kernel.

Both front ends start from here: the CLI (``deeting``, ``deeting --script``) and the chat app
when it is started without a kernel (``textual run --dev deeting_tui.ui.app:DeetingApp``).
It lives apart from cli.py so the app can compose a kernel without importing the CLI that
imports the app. Its imports are deferred: ``deeting --help`` must not pay for the kernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deeting_tui.kernel.kernel import Kernel
    from deeting_tui.paths import Paths


def make_kernel(provider: str | None = None, model: str | None = None) -> Kernel:
    """Compose a kernel from the environment: paths, config, assistant."""
    from deeting_tui.kernel.kernel import Kernel
    from deeting_tui.llm.select import build_assistant, choose
    from deeting_tui.paths import load_config, resolve_paths

    paths = resolve_paths()
    config = load_config(paths)
    choice = choose(provider, model, config.provider, config.model)
    first_run = fresh_home(paths)  # before the kernel makes its first files there
    kernel = Kernel(paths, config=config, assistant=build_assistant(choice))
    return plug_ports(kernel, first_run=first_run)


def fresh_home(paths: Paths) -> bool:
    """Whether this start takes part in a fresh home's first run (store/first_run.py): only
    where deeting carries plugins to install. Call it before building the kernel."""
    from deeting_tui.store.first_run import bundle_folder, first_run_pending

    return bundle_folder() is not None and first_run_pending(paths)


def plug_ports(kernel: Kernel, *, first_run: bool = False) -> Kernel:
    """Give the kernel's plugin service what the kernel may not import: the registry (the
    store's client, loaded on first use), the plugins deeting carries (with ``first_run``,
    installed when the kernel starts, or by ``PluginService.first_run``) and the sandbox's words
    for what a grant allows. Ports already plugged (a test's fake registry) are kept."""
    from deeting_tui.sandbox.policy import describe_grants
    from deeting_tui.store.first_run import bundle_folder
    from deeting_tui.store.lazy import LazyBundle, LazyRegistry

    service = kernel.plugins
    folder = bundle_folder()
    if service.bundled is None and folder is not None:
        service.bundled = LazyBundle(kernel.paths, folder, first_run=first_run)
    if service.registry is None:
        bundle = service.bundled if isinstance(service.bundled, LazyBundle) else None
        service.registry = LazyRegistry(kernel.paths, bundle)
    if service.describe_sandbox is None:
        service.describe_sandbox = describe_grants
    return kernel
