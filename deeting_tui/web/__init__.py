"""The browser face: a loopback server that shows a session's cards in the system browser.

Each card is a core renderer's browser face (``renderers/NAME/index.html``) in an
``<iframe sandbox="allow-scripts">``, fed by the host page over the MCP Apps protocol. This
package imports nothing from Textual, and the kernel never imports it: front ends (the chat,
``deeting view``) start a server and feed it events.
"""
