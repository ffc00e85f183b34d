"""The declarative form (YAML) of a tenant's MCP servers and of who may call their tools.

```yaml
tenants:
  - slug: acme
    mcp_servers:
      - name: crm
        url: https://mcp.crm.example/mcp
        credential: env:CRM_MCP_TOKEN
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

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from routing.mcp_gateway.models import SERVER_NAME


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class McpServerSpec(_Strict):
    name: str = Field(pattern=SERVER_NAME, max_length=64)
    url: str = Field(pattern=r"^https?://", max_length=500)
    credential: str | None = None  # a token, or env:NAME
    credential_header: str = Field(default="authorization", pattern=r"^[A-Za-z0-9-]{1,64}$")
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    max_result_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 1024 * 1024)
    result_injection: Literal["block", "flag"] = "block"


class McpToolsSpec(_Strict):
    server: str
    tools: list[str] = Field(min_length=1)  # upstream tool names, or ["*"]
    calls_per_minute: int | None = Field(default=None, ge=1)
    # {tool: {argument: [allowed values]}}
    argument_constraints: dict[str, dict[str, list[Any]]] = {}
