// The guest side of the MCP Apps tunnel (every renderer's document).
import "./zod-jitless.js";
export { App, PostMessageTransport, applyDocumentTheme } from "@modelcontextprotocol/ext-apps";
