"""A stdio MCP server for the tests (`python mcp_stdio_server.py`): the operator's kind."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer("local", log_level="WARNING")


@server.tool(description="Say hello.")
def hello(name: str) -> str:
    return f"hello {name}"


if __name__ == "__main__":
    server.run("stdio")
