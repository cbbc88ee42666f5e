"""SemVer precedence, shared by the kernel (upgrade or downgrade?) and the registry client.

It lives with the package format rather than in ``store`` because the kernel must decide whether an
upgrade lowers a version without importing the registry client (docs/architecture.md#the-arrows: the
kernel's arrows point to ``plugin`` and ``rpc`` only).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["SEMVER_RE", "version_key"]

SEMVER_RE = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)


def version_key(version: str) -> tuple[Any, ...]:
    """SemVer 2 precedence: a pre-release sorts before its release; build metadata is
    ignored. ``version`` must be valid SemVer (the manifest schema and the registry parser
    make sure); anything else is a ValueError."""
    match = SEMVER_RE.fullmatch(version)
    if match is None:
        raise ValueError(f"{version!r} is not a SemVer version")
    major, minor, patch, pre, _build = match.groups()
    release = (int(major), int(minor), int(patch))
    if pre is None:
        return (*release, 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (*release, 0, parts)
