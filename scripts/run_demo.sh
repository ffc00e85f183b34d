#!/usr/bin/env bash
# Starts the bundled mock provider, the periodic jobs and the gateway, sends some demo traffic,
# and says how to call it and who can sign in. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
GATEWAY_PORT=${GATEWAY_PORT:-8000}
MOCK_PORT=${MOCK_PORT:-9100}
# Another file and log folder let a test run a second demo beside yours (tests/e2e/test_demo_run.py).
ENV_FILE=${GATEWAY_DEMO_ENV_FILE:-.env.demo}
LOGS=${GATEWAY_DEMO_LOG_DIR:-var}
mkdir -p "$LOGS"
source "$ENV_FILE"
# The mock provider listens on 127.0.0.1, which the egress policy refuses unless allowed.
export GATEWAY_EGRESS_ALLOW_LOOPBACK=${GATEWAY_EGRESS_ALLOW_LOOPBACK:-true}

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

.venv/bin/python -m mock_provider --host 127.0.0.1 --port "$MOCK_PORT" > "$LOGS/mock_provider.log" 2>&1 &
pids+=($!)
# The mock MCP server with the demo team's tools (config/demo.yaml names its port and token).
MCP_MOCK_PORT=9101
.venv/bin/python -m mock_provider.mcp_server --host 127.0.0.1 --port "$MCP_MOCK_PORT" \
  --token mock-mcp-credential > "$LOGS/mock_mcp.log" 2>&1 &
pids+=($!)

# Rollups, audit sealing and alerts: Celery (worker with an embedded beat) when Redis is
# configured, otherwise the same schedule run in one process (audit/observability/periodic.py).
if [[ -n "${REDIS_URL:-}" ]]; then
  scheduler="Celery worker and beat ($LOGS/celery.log)"
  .venv/bin/celery -A gateway_site worker --beat --loglevel warning > "$LOGS/celery.log" 2>&1 &
else
  scheduler="in-process periodic jobs ($LOGS/periodic.log)"
  .venv/bin/python manage.py run_periodic > "$LOGS/periodic.log" 2>&1 &
fi
pids+=($!)

# Once the gateway answers: a few dozen varied requests, then rollups and a signed checkpoint
# at once, so the finance and compliance pages show them on first visit.
if [[ "${GATEWAY_DEMO_TRAFFIC:-1}" != "0" ]]; then
  {
    .venv/bin/python scripts/demo_traffic.py \
      && .venv/bin/python manage.py billing_rollup > /dev/null \
      && .venv/bin/python manage.py audit_seal > /dev/null \
      && echo "Demo traffic sent, rolled up and sealed: every console page has data (log: $LOGS/demo_traffic.log)."
  } 2>> "$LOGS/demo_traffic.log" &
  pids+=($!)
fi

cat <<TEXT

The gateway is starting on $GATEWAY_URL (mock provider on $GATEWAY_MOCK_URL; $scheduler).
The URL and keys are in $ENV_FILE. Try it from another terminal:

source $ENV_FILE
curl \$GATEWAY_URL/chat/completions \\
  -H "Authorization: Bearer \$GATEWAY_API_KEY" -H "Content-Type: application/json" \\
  -d '{"model": "demo", "messages": [{"role": "user", "content": "Hello, gateway"}]}'

source $ENV_FILE
.venv/bin/python - <<'PY'
import os
from openai import OpenAI
client = OpenAI(base_url=os.environ["GATEWAY_URL"], api_key=os.environ["GATEWAY_API_KEY"])
reply = client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "Hello"}])
print(reply.choices[0].message.content)
PY

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
  developer:      dev / $GATEWAY_DEMO_DEVELOPER_PASSWORD
  compliance:     compliance / $GATEWAY_DEMO_COMPLIANCE_PASSWORD
  finance:        finance / $GATEWAY_DEMO_FINANCE_PASSWORD
  tenant admin:   admin / $GATEWAY_DEMO_ADMIN_PASSWORD
  platform admin: platform / $GATEWAY_DEMO_PLATFORM_PASSWORD

Run now what the scheduler does: .venv/bin/python manage.py billing_rollup (cost rollups),
.venv/bin/python manage.py audit_seal (chain and sign the audit trail).
API docs: ${GATEWAY_URL}/docs      Stop: Ctrl-C

TEXT
# The server's socket limits (timeouts, connection cap, trusted proxies) come from the
# environment: docs/operations.md. Not exec: the trap stops the others when it ends.
.venv/bin/python -m gateway_site.server --host 127.0.0.1 --port "$GATEWAY_PORT"
