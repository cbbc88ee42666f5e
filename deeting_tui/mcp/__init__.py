"""Model Context Protocol, both ways.

Stock MCP servers become plugins (``deeting mcp add`` / ``import``): installed by their
package manager into the plugin's own folder, started by the plugin's sandboxed worker as its
child (so every OS layer the grants compute holds the server too), and spoken to with the
official ``mcp`` SDK. ``deeting mcp serve`` is the other direction: an MCP server on stdio
whose tools are the enabled plugins' tools, each call going through the kernel to the plugin's
sandboxed worker.

The plugin format's side (kimai.json's ``mcp`` object) is :mod:`deeting_tui.plugin.mcp_server`;
the kernel imports only :mod:`deeting_tui.mcp.launch` from here (plain data, no SDK). The SDK is
imported only by the worker's bridge, ``mcp add`` and ``mcp serve``.
"""
