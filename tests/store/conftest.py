"""A CLI-style kernel (no plugin started) and a one-plugin registry folder, for client tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from registry_support import TestRegistry
from support import FAST_POLICY

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths


@pytest.fixture
async def cli_kernel(home: Path) -> AsyncIterator[Kernel]:
    """A kernel as the CLI builds it: no plugin started."""
    kernel = Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)
    try:
        yield kernel
    finally:
        await kernel.shutdown()


@pytest.fixture
def registry(tmp_path: Path) -> TestRegistry:
    """echo-fixture 1.0.0, published as registry version 1."""
    made = TestRegistry(tmp_path / "registry")
    made.add("1.0.0")
    made.publish()
    return made
