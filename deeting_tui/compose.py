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


def make_kernel(provider: str | None = None, model: str | None = None) -> Kernel:
    """Compose a kernel from the environment: paths, config, assistant."""
    from deeting_tui.kernel.kernel import Kernel
    from deeting_tui.llm.select import build_assistant, choose
    from deeting_tui.paths import load_config, resolve_paths

    paths = resolve_paths()
    config = load_config(paths)
    choice = choose(provider, model, config.provider, config.model)
    return plug_ports(Kernel(paths, config=config, assistant=build_assistant(choice)))


def plug_ports(kernel: Kernel) -> Kernel:
    """Give the kernel's plugin service what the kernel may not import: the registry (the
    store's client, loaded on first use) and the sandbox's words for what a grant allows.
    Ports already plugged (a test's fake registry) are kept."""
    from deeting_tui.sandbox.policy import describe_grants
    from deeting_tui.store.lazy import LazyRegistry

    service = kernel.plugins
    if service.registry is None:
        service.registry = LazyRegistry(kernel.paths)
    if service.describe_sandbox is None:
        service.describe_sandbox = describe_grants
    return kernel
