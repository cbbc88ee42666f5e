"""MCP Apps on the worker side: which tools have an app, and the app's resource as card data.

A tool whose spec carries ``_meta.ui.resourceUri`` (MCP Apps, SEP-1865) has an interactive
view: a ``ui://`` resource of type ``text/html;profile=mcp-app``. After a successful call the
bridge reads it (``resources/read``) and the card's data becomes the ``mcp-app`` renderer's
payload: the HTML, its URI and digest, the call's own result (what the app is sent through
the MCP Apps protocol) and the CSP the resource declared. The browser face runs that HTML in
the card's sandbox (docs/browser.md#mcp-app-cards); the terminal face says it is an app.

A resource that cannot be used is never the call's failure: the result is drawn as without
an app, and the text (what the model and the user read) says in one line why not.

Plain dictionaries only (no SDK types), so the checks are tested without a server and this
module is imported before the sandbox with the bridge.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from deeting_tui.terminal_text import one_line

#: The renderer of a call whose tool has an app.
RENDERER = "mcp-app"
#: The resource type MCP Apps defines for an app's HTML.
APP_MIME = "text/html;profile=mcp-app"
#: The most an app's HTML may weigh (it is stored with the card in the session).
MAX_APP_BYTES = 512 * 1024
#: CSP lists copied from the resource's ``_meta.ui.csp`` (kept with the card; see the docs
#: for what is honoured), and the most origins kept per list.
CSP_KEYS = ("connectDomains", "resourceDomains", "frameDomains", "baseUriDomains")
MAX_CSP_ORIGINS = 32


class AppProblem(Exception):
    """Why an app's resource is not shown (one line, for the call's text)."""


def app_uri(tool: dict[str, Any]) -> str | None:
    """The ``ui://`` resource a tool spec names as its app, or None. Reads the current key
    (``_meta.ui.resourceUri``) and the older flat one (``_meta["ui/resourceUri"]``)."""
    meta = tool.get("_meta")
    if not isinstance(meta, dict):
        return None
    ui = meta.get("ui")
    uri = ui.get("resourceUri") if isinstance(ui, dict) else None
    if uri is None:
        uri = meta.get("ui/resourceUri")
    if isinstance(uri, str) and uri.startswith("ui://") and len(uri) <= 2048:
        return uri
    return None


def app_uris(tools: list[dict[str, Any]]) -> dict[str, str]:
    """Tool name to its app's URI, for the tools that have one."""
    found: dict[str, str] = {}
    for tool in tools:
        uri = app_uri(tool)
        if uri is not None and isinstance(tool.get("name"), str):
            found[tool["name"]] = uri
    return found


def is_app_mime(mime: object) -> bool:
    """``text/html`` with ``profile=mcp-app`` (case, spaces and quotes aside)."""
    if not isinstance(mime, str):
        return False
    kind, *params = [part.strip() for part in mime.split(";")]
    if kind.lower() != "text/html":
        return False
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "profile" and value.strip().strip('"').lower() == "mcp-app":
            return True
    return False


def app_html(uri: str, contents: list[dict[str, Any]]) -> tuple[str, dict[str, Any] | None]:
    """The HTML and the declared CSP of ``resources/read``'s ``contents`` for ``uri``;
    :class:`AppProblem` when it is missing, of another type, too big, or not UTF-8."""
    content = next((c for c in contents if c.get("uri") == uri), None)
    if content is None:
        content = contents[0] if len(contents) == 1 else None
    if content is None:
        raise AppProblem("the server returned no content for it")
    mime = content.get("mimeType")
    if not is_app_mime(mime):
        shown = one_line(str(mime))[:80] if mime else "no type"
        raise AppProblem(f"it is {shown}, not {APP_MIME}")
    if isinstance(content.get("text"), str):
        raw = content["text"].encode("utf-8", "surrogatepass")
    elif isinstance(content.get("blob"), str):
        if len(content["blob"]) > MAX_APP_BYTES * 4 // 3 + 4:
            raise AppProblem(f"it is larger than {MAX_APP_BYTES // 1024} KiB")
        try:
            raw = base64.b64decode(content["blob"], validate=True)
        except (binascii.Error, ValueError):
            raise AppProblem("its blob is not base64") from None
    else:
        raise AppProblem("it has neither text nor blob")
    if len(raw) > MAX_APP_BYTES:
        raise AppProblem(f"it is {len(raw) // 1024} KiB, more than {MAX_APP_BYTES // 1024} KiB")
    try:
        html = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AppProblem("it is not UTF-8 text") from None
    return html, _csp(content.get("_meta"))


def _csp(meta: object) -> dict[str, Any] | None:
    """The resource's declared ``_meta.ui.csp``: its known lists of strings, bounded."""
    ui = meta.get("ui") if isinstance(meta, dict) else None
    csp = ui.get("csp") if isinstance(ui, dict) else None
    if not isinstance(csp, dict):
        return None
    kept: dict[str, Any] = {}
    for key in CSP_KEYS:
        values = csp.get(key)
        if isinstance(values, list):
            kept[key] = [v[:300] for v in values if isinstance(v, str)][:MAX_CSP_ORIGINS]
    return kept or None


def app_payload(
    uri: str, html: str, csp: dict[str, Any] | None, result: dict[str, Any]
) -> dict[str, Any]:
    """The ``mcp-app`` renderer's data (renderers/mcp-app/schema.json)."""
    call: dict[str, Any] = {"content": list(result.get("content") or [])}
    if result.get("structuredContent") is not None:
        call["structuredContent"] = result["structuredContent"]
    payload: dict[str, Any] = {
        "uri": uri,
        "html": html,
        "sha256": hashlib.sha256(html.encode("utf-8", "surrogatepass")).hexdigest(),
        "result": call,
    }
    if csp is not None:
        payload["csp"] = csp
    return payload
