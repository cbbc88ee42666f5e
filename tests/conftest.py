"""Fixtures: a fresh DEETING_HOME per test and a kernel with fast supervision timings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from support import FAST_POLICY

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths
from deeting_tui.quota.cgroup_hierarchies import Cgroups
from deeting_tui.quota.cgroups import sweep_stale

# The local package index for the plugin-dependency tests (wheel_index, bare_wheel_index, …).
pytest_plugins = ["wheel_index"]


@pytest.fixture(autouse=True)
def _no_model_provider_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys or base URLs in the developer's shell must not turn the offline default into a
    real API call; tests that want a provider set these themselves."""
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_PROFILE",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _no_bundled_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plugins deeting carries (deeting_tui/bundled, once ./dev.sh built it) would be
    installed into every fresh test home and listed everywhere: tests that want them point
    DEETING_BUNDLE at a bundle they build (tests/bundle_support.py)."""
    monkeypatch.setenv("DEETING_BUNDLE", "")
    # Never the real official registry from a test: a sync with no URL fails at once here.
    monkeypatch.setenv(
        "DEETING_OFFICIAL_REGISTRY_URL", "file:///nonexistent/deeting-official/registry.json"
    )


@pytest.fixture(autouse=True, scope="session")
def _no_cgroups_left_behind() -> Iterator[None]:
    """Tests that SIGKILL a kernel leave its cgroups to the next kernel's sweep; the last
    such test has no next kernel, so the session sweeps once at its end."""
    yield
    sweep_stale(Cgroups.detect())


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("DEETING_HOME", str(folder))
    return folder


@pytest.fixture
async def kernel(home: Path) -> AsyncIterator[Kernel]:
    k = Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)
    await k.start(ticker=False)
    try:
        yield k
    finally:
        await k.shutdown()
