#!/usr/bin/env bash
# Starts the bundled mock provider and the gateway, and says how to call them. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
GATEWAY_PORT=${GATEWAY_PORT:-8000}
MOCK_PORT=${MOCK_PORT:-9100}
MCP_MOCK_PORT=9101  # config/demo.yaml names it
source .env.demo
# The mock provider listens on 127.0.0.1, which the egress policy refuses unless allowed.
export GATEWAY_EGRESS_ALLOW_LOOPBACK=${GATEWAY_EGRESS_ALLOW_LOOPBACK:-true}

.venv/bin/python -m mock_provider --host 127.0.0.1 --port "$MOCK_PORT" > var/mock_provider.log 2>&1 &
mock_pid=$!
.venv/bin/python -m mock_provider.mcp_server --host 127.0.0.1 --port "$MCP_MOCK_PORT" \
  --token mock-mcp-credential > var/mock_mcp.log 2>&1 &
mcp_pid=$!
trap 'kill $mock_pid $mcp_pid 2>/dev/null || true' EXIT

cat <<TEXT

The gateway is starting on $GATEWAY_URL (mock provider on http://127.0.0.1:$MOCK_PORT).
The demo URL and key are in .env.demo. Try it from another terminal:

curl $GATEWAY_URL/chat/completions \\
  -H "Authorization: Bearer $GATEWAY_API_KEY" -H "Content-Type: application/json" \\
  -d '{"model": "demo", "messages": [{"role": "user", "content": "Hello, gateway"}]}'

.venv/bin/python -c '
from openai import OpenAI
client = OpenAI(base_url="$GATEWAY_URL", api_key="$GATEWAY_API_KEY")
reply = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "Hello"}])
print(reply.choices[0].message.content)'

Tools through the gateway (MCP, mock MCP server on http://127.0.0.1:$MCP_MOCK_PORT/mcp):

.venv/bin/python -c '
import asyncio, httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
async def main():
    http = httpx2.AsyncClient(headers={"Authorization": "Bearer $GATEWAY_API_KEY"})
    async with Client(streamable_http_client("${GATEWAY_URL%/v1}/mcp", http_client=http)) as mcp:
        print([tool.name for tool in (await mcp.list_tools()).tools])
        print((await mcp.call_tool("crm__lookup_customer", {"customer_id": "C-42"})).content[0].text)
asyncio.run(main())'

Console: $GATEWAY_CONSOLE_URL
  developer:    dev / $GATEWAY_DEMO_DEVELOPER_PASSWORD
  tenant admin: admin / $GATEWAY_DEMO_ADMIN_PASSWORD

API docs: $GATEWAY_URL/docs      Stop: Ctrl-C

TEXT
# The server's socket limits (timeouts, connection cap, trusted proxies) come from the
# environment: docs/operations.md.
exec .venv/bin/python -m gateway_site.server --host 127.0.0.1 --port "$GATEWAY_PORT"
