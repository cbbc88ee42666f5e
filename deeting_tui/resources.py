"""Where data files that ship with Deeting live, in a checkout and in an installed wheel.

The renderer schemas are kept at the repository's root (``renderers/NAME/``), where plugin
authors find them; the wheel carries a copy inside the package
(``deeting_tui/renderers``, see pyproject's force-include). An installed copy wins, so a
wheel never reads a stray folder next to site-packages.
"""

from __future__ import annotations

import functools
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def core_renderers_dir() -> Path:
    packaged = _PACKAGE / "renderers"
    return packaged if packaged.is_dir() else _PACKAGE.parent / "renderers"


@functools.cache
def core_renderer_names() -> frozenset[str]:
    """The renderer names the core draws: one folder each (docs/plugins.md#results-and-renderers). A
    manifest's ``renderer`` must be one of them, checked by lint and at install."""
    folder = core_renderers_dir()
    return frozenset(p.name for p in folder.iterdir() if p.is_dir() and p.name[0] not in "._")
