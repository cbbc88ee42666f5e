"""Publisher-side tools for a Deeting plugin registry: keys, a signed index, a test server.

``keys`` makes Ed25519 keys and the ``root.json`` that names them, ``gen_registry`` turns a
folder of plugin sources into reproducible zips and a signed ``registry.json``, and ``serve``
hands such a folder to clients over loopback HTTP. The formats are
``deeting_tui.store.signing``'s and every check ``deeting_tui.store.trust``'s, so what these
tools write is exactly what the client verifies.

Only the error type the CLIs turn into one line on stderr lives here; the atomic write that
keeps a half-written file from ever being published is ``deeting_tui.atomic``'s, shared with
the client.
"""

from __future__ import annotations

__all__ = ["ToolError"]


class ToolError(Exception):
    """A refusal with one line saying what is wrong and what to do; nothing was written."""
