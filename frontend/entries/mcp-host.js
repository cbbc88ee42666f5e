// The host side of the MCP Apps tunnel (the page that holds the cards' iframes).
export { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";
