"""The declarative form (YAML) of a tenant's MCP servers and of who may call their tools.

```yaml
tenants:
  - slug: acme
    mcp_servers:
      - name: crm
        url: https://mcp.crm.example/mcp
        credential: env:CRM_MCP_TOKEN
        tool_prices: {lookup_customer: 0.002, "*": 0.0005}   # USD per call
        token_exchange:                      # on behalf of the caller (RFC 8693)
          token_url: https://idp.example/oauth2/token
          client_id: ai-gateway
          client_secret: env:CRM_EXCHANGE_SECRET
          audience: https://mcp.crm.example
      - name: tickets
        url: https://mcp.tickets.example/mcp
        client_credentials:                  # as the gateway itself (RFC 6749 §4.4)
          token_url: https://idp.example/oauth2/token
          client_id: ai-gateway
          client_secret: env:TICKETS_CLIENT_SECRET
          scope: tickets.read
    teams:
      - slug: advisors
        mcp_tools:
          - server: crm
            tools: [lookup_customer]
            calls_per_minute: 10
```

There is no field for a command, arguments or a transport: an upstream is a URL, and the file is
refused if it names anything else.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from routing.mcp_gateway.models import ACCESS_TOKEN_TYPE, SERVER_NAME


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenExchangeSpec(_Strict):
    token_url: str = Field(pattern=r"^https?://", max_length=500)
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str  # a secret, or env:NAME; encrypted at rest
    audience: str = Field(default="", max_length=500)
    scope: str = Field(default="", max_length=500)
    subject_token_type: str = ACCESS_TOKEN_TYPE


class ClientCredentialsSpec(_Strict):
    token_url: str = Field(pattern=r"^https?://", max_length=500)
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str  # a secret, or env:NAME; encrypted at rest
    scope: str = Field(default="", max_length=500)
    audience: str = Field(default="", max_length=500)


class McpServerSpec(_Strict):
    name: str = Field(pattern=SERVER_NAME, max_length=64)
    url: str = Field(pattern=r"^https?://", max_length=500)
    credential: str | None = None  # a token, or env:NAME
    credential_header: str = Field(default="authorization", pattern=r"^[A-Za-z0-9-]{1,64}$")
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    max_result_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 1024 * 1024)
    result_injection: Literal["block", "flag"] = "block"
    tool_prices: dict[str, Decimal] = {}  # {tool or "*": USD per call}
    token_exchange: TokenExchangeSpec | None = None
    client_credentials: ClientCredentialsSpec | None = None


class McpToolsSpec(_Strict):
    server: str
    tools: list[str] = Field(min_length=1)  # upstream tool names, or ["*"]
    calls_per_minute: int | None = Field(default=None, ge=1)
    # {tool: {argument: [allowed values]}}
    argument_constraints: dict[str, dict[str, list[Any]]] = {}
