"""The MCP gateway: agents reach their tools through the same governance as models (docs/mcp.md)."""
