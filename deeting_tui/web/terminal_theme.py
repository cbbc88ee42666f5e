"""Which theme a card page starts in when a terminal launched it: the terminal's own.

The chat keeps no theme of its own on disk (Textual's default is dark whatever the
terminal), so the page follows what the terminal says of its background: ``COLORFGBG``
(``fg;bg`` or ``fg;default;bg``, set by rxvt, Konsole, iTerm2 and others). Where nothing
says, None: the page follows the browser's ``prefers-color-scheme``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

__all__ = ["Theme", "terminal_theme"]

Theme = Literal["light", "dark"]

#: The 16 ANSI colours with a light background: white (7) and the bright ones but grey (8).
_LIGHT_BACKGROUNDS = frozenset({7, *range(9, 16)})


def terminal_theme(env: Mapping[str, str] | None = None) -> Theme | None:
    """ "light" or "dark" as the terminal's background colour says, or None if unknown."""
    env = os.environ if env is None else env
    value = env.get("COLORFGBG", "")
    background = value.rsplit(";", 1)[-1].strip() if ";" in value else ""
    if not background.isdigit():
        return None
    colour = int(background)
    if colour > 15:
        return None
    return "light" if colour in _LIGHT_BACKGROUNDS else "dark"
