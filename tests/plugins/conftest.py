"""Shared fixtures: load an official plugin fresh, and give it a real Context on a fake channel."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from deeting_tui.sandbox.plugin_import import PACKAGE_NAME, import_plugin_module
from deeting_tui.sdk import Context

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
OFFICIAL = ("calc", "notes", "clock")


class FakeChannel:
    """Collects what the plugin sends to the kernel."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.sent.append((method, params))

    def streams(self) -> list[dict[str, Any]]:
        return [params for method, params in self.sent if method == "stream"]


def _purge() -> None:
    for name in [m for m in sys.modules if m == PACKAGE_NAME or m.startswith(PACKAGE_NAME + ".")]:
        del sys.modules[name]


@pytest.fixture
def load_plugin() -> Iterator[Callable[[str], ModuleType]]:
    """``load_plugin("calc")`` → a freshly imported ``src/index.py`` (no state from other tests).

    Calling it again for the same plugin imports it anew, as a restarted worker would.
    """
    saved_path = list(sys.path)

    def load(name: str) -> ModuleType:
        _purge()
        return import_plugin_module(PLUGINS / name / "src")

    yield load
    _purge()
    sys.path[:] = saved_path


@pytest.fixture
def channel() -> FakeChannel:
    return FakeChannel()


@pytest.fixture
def make_ctx(tmp_path: Path, channel: FakeChannel) -> Callable[..., Context]:
    """A real Context; every call with the same name shares the same data folder."""

    def make(name: str = "plugin", chan: FakeChannel | None = None) -> Context:
        return Context(
            name=name,
            version="1.0.0",
            data_dir=tmp_path / "data",
            cache_dir=tmp_path / "cache",
            channel=chan or channel,
        )

    return make
