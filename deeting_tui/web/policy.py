"""The headers every response of the loopback server carries, and the two page policies.

Plugin data reaches a browser only inside a renderer's sandboxed iframe (an opaque origin),
so the policies are written for that: a renderer runs only the core's own scripts, may fetch
nothing (its data arrives by postMessage), may embed nothing, and may be framed only by the
host page. The host page may talk only to its own server and frame only its own renderers.
"""

from __future__ import annotations

#: A renderer document: scripts, styles, fonts and images from the server's own files only.
#: ``connect-src 'none'``: no fetch, XHR, WebSocket or EventSource to anywhere, this server
#: included. Inline ``<style>`` and ``style=""`` in markup are refused too (a face styles
#: through its own CSS file or the CSSOM).
_RENDERER = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'none'; frame-src 'none'; worker-src 'none'; "
    "object-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors {origin}"
)

#: The host page: its own scripts and styles, its server's event stream, its own renderers.
_HOST = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-src 'self'; worker-src 'none'; "
    "object-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)


#: An MCP server's app (its own HTML, served at ``/app/NONCE``): its inline scripts and
#: styles run, and images, fonts and media may be inline (``data:``/``blob:``), but it may
#: load nothing from anywhere, connect nowhere (this server included), embed nothing, submit
#: no form; the ``sandbox`` directive keeps it in an opaque origin even opened on its own,
#: and only the host page may frame it. The CSP a resource declares is not honoured (yet):
#: the browser is outside the plugin's sandbox, so a server with no network grant could
#: send what it read to anywhere through it (docs/browser.md#mcp-app-cards).
_APP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; media-src data: blob:; connect-src 'none'; "
    "frame-src 'none'; worker-src 'none'; object-src 'none'; form-action 'none'; "
    "base-uri 'none'; frame-ancestors {origin}; sandbox allow-scripts"
)


def app_policy(origin: str) -> str:
    """The CSP of an MCP server's app document, framed by the host page at ``origin``."""
    return _APP.format(origin=origin)


def renderer_policy(origin: str) -> str:
    """The CSP of a renderer document served from ``origin`` (``http://127.0.0.1:PORT``)."""
    return _RENDERER.format(origin=origin)


def host_policy() -> str:
    """The CSP of the host page."""
    return _HOST


#: On every response: no sniffing, no referrer (the token is in the path), no caching of
#: private data, and no cross-origin reads (no CORS header is ever sent).
COMMON_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)

#: A face's own files and the libraries (``renderers/``, ``vendor/``) are loaded by a sandboxed
#: iframe, whose opaque origin is cross-origin to everyone: ``same-origin`` there would block
#: every script and style of every card (net::ERR_BLOCKED_BY_RESPONSE.NotSameOrigin). They are
#: the core's own static code, no user data, so these responses say ``cross-origin`` instead;
#: the host page and the event stream (the data) keep ``same-origin``.
FACE_FILE_RESOURCE_POLICY = "cross-origin"
