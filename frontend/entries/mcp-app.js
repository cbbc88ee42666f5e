// The guest side of the MCP Apps tunnel (every renderer's document).
export { App, PostMessageTransport, applyDocumentTheme } from "@modelcontextprotocol/ext-apps";
