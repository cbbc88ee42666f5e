"""What a plugin name may be: the one rule the manifest, the loader, the registry's signed
index, ``deeting plugin new`` and ``deeting install NAME@VERSION`` all check.

Lower-case letters, digits and hyphens, not starting with a hyphen, at most 64 characters:
a name is a folder name, a URL path segment and a tool-name prefix, so nothing else is safe
in all three. The manifest's JSON schema (``schemas/kimai.schema.json``) spells the same
pattern; a test keeps the two equal.
"""

from __future__ import annotations

import re

__all__ = ["PLUGIN_NAME", "PLUGIN_NAME_RE"]

#: The pattern, unanchored, for embedding in a larger one (``name@version``).
PLUGIN_NAME = r"[a-z0-9][a-z0-9-]{0,63}"
#: Use with ``fullmatch``.
PLUGIN_NAME_RE = re.compile(PLUGIN_NAME)
