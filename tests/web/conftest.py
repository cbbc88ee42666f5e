"""tests/web: the loopback server, the board of cards, the host page and the faces in real
Chromium — one Chromium for the session, and a server for the faces."""

from __future__ import annotations

from browser_support import browser
from web.faces_support import face_server, open_face

__all__ = ["browser", "face_server", "open_face"]
