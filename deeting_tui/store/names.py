"""What a registry SOURCE looks like on the command line and in the install dialog.

Kept apart from the client so that telling ``weather@1.2.0`` from a path costs a regular
expression, not the client's imports (httpx, PyNaCl): every ``deeting plugin`` command asks.
"""

from __future__ import annotations

import re

from deeting_tui.plugin.names import PLUGIN_NAME

__all__ = ["split_source"]

#: A registry name, with an optional version (a path never matches: no '/' and no '.zip').
_REQUIREMENT = re.compile(rf"(?P<name>{PLUGIN_NAME})(?:@(?P<version>[0-9][^\s/]*))?")


def split_source(text: str) -> tuple[str, str | None] | None:
    """``weather`` → (weather, None); ``weather@1.2.0`` → (weather, 1.2.0); else None."""
    match = _REQUIREMENT.fullmatch(text)
    return (match["name"], match["version"]) if match else None
