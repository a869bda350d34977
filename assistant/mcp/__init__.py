"""The assistant as an MCP server (Model Context Protocol, the official `mcp` SDK).

tools.py holds what each tool does, whatever the transport; server.py builds the server (tools with
their schemas, a resource per indexed unit, who may call what). web/mcp_endpoint.py serves it on
the web app at `/mcp` behind the same API keys as `/v1`; `assistant mcp` (cli/mcp.py) over stdio.
Below `web`: it uses `chat` (the answer shape `/v1` also returns), `runs` and `knowledge`, never `web`.
"""
