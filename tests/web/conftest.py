"""tests/web: the loopback server, the board of cards, and the host page in real Chromium."""

from __future__ import annotations

from browser_support import browser

__all__ = ["browser"]
