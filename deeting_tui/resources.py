"""Where data files that ship with Deeting live, in a checkout and in an installed wheel.

The renderer schemas are kept at the repository's root (``renderers/NAME/``), where plugin
authors and the browser face find them; the wheel carries a copy inside the package
(``deeting_tui/renderers``, see pyproject's force-include). An installed copy wins, so a
wheel never reads a stray folder next to site-packages.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def core_renderers_dir() -> Path:
    packaged = _PACKAGE / "renderers"
    return packaged if packaged.is_dir() else _PACKAGE.parent / "renderers"
