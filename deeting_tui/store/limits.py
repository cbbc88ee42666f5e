"""What the registry client may download (its :class:`Limits`) and how it reports progress:
shared by the client (client.py) and its sync (sync.py), so neither imports the other for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Limits", "Progress"]

Progress = Callable[[str, int, int | None], None]
"""What is downloading (a label), bytes so far, bytes expected (None when unknown)."""


@dataclass(frozen=True)
class Limits:
    registry_max_bytes: int = 32 * 2**20
    root_max_bytes: int = 1 * 2**20
    max_rotations: int = 64
    index_deadline_s: float = 60.0
    artifact_deadline_s: float = 300.0
    artifact_max_bytes: int = 64 * 2**20
