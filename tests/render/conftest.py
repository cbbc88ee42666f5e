"""The renderer tests draw cards the way a reader sees them: plain text at a fixed width."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO

import pytest
from rich.console import Console, RenderableType

Draw = Callable[..., str]


def draw_text(renderable: RenderableType, width: int = 80) -> str:
    """Rich's recorded text for ``renderable``, without styles."""
    console = Console(record=True, width=width, file=StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


@pytest.fixture
def draw() -> Draw:
    """``draw(renderable, width=80) -> str``."""
    return draw_text
