"""What a plugin name may be: the one rule the manifest, the loader, the registry's signed
index, ``deeting plugin new`` and ``deeting install NAME@VERSION`` all check.

Lower-case letters, digits and hyphens, not starting with a hyphen, at most 64 characters:
a name is a folder name, a URL path segment and a tool-name prefix, so nothing else is safe
in all three. The manifest's JSON schema (``schemas/kimai.schema.json``) spells the same
pattern; a test keeps the two equal.
"""

from __future__ import annotations

import re

__all__ = ["PLUGIN_NAME", "PLUGIN_NAME_RE", "split_source"]

#: The pattern, unanchored, for embedding in a larger one (``name@version``).
PLUGIN_NAME = r"[a-z0-9][a-z0-9-]{0,63}"
#: Use with ``fullmatch``.
PLUGIN_NAME_RE = re.compile(PLUGIN_NAME)

#: A registry name, with an optional version (a path never matches: no '/' and no '.zip').
_REQUIREMENT = re.compile(rf"(?P<name>{PLUGIN_NAME})(?:@(?P<version>[0-9][^\s/]*))?")


def split_source(text: str) -> tuple[str, str | None] | None:
    """``weather`` → (weather, None); ``weather@1.2.0`` → (weather, 1.2.0); else None."""
    match = _REQUIREMENT.fullmatch(text)
    return (match["name"], match["version"]) if match else None
