"""tests/web: the loopback server, the board of cards, the host page and the faces in Chromium.

The fixtures every browser test here shares: ``browser`` (browser_support's, which lives for
one module, not the session: sync Playwright keeps its own event loop running in the main
thread while it is open, and pytest-asyncio cannot start a test's loop under it
("Runner.run() cannot be called from a running event loop"), so a session-wide browser would
break every async test collected after the first browser test), and ``face_server`` and
``open_face`` from faces_support (one face opened top-level, recording its trouble).
"""

from __future__ import annotations

from browser_support import browser  # noqa: F401 (a fixture)
from web.faces_support import face_server_fixture, open_face_fixture  # noqa: F401 (fixtures)
