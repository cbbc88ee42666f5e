// The host side of the MCP Apps tunnel (the page that holds the cards' iframes).
import "./zod-jitless.js";
export { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";
