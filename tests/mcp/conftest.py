"""The stock MCP servers (tests/mcp_support.py) for every test under tests/mcp."""

from mcp_support import stock_everything, stock_fetch, stock_filesystem, stock_time

__all__ = ["stock_everything", "stock_fetch", "stock_filesystem", "stock_time"]
