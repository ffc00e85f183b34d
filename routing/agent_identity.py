"""Which agent made a call: a first-class field of the audit record (`agent`), searchable and
usable as a limit scope (docs/api.md#agent-identity).

First match wins:
1. the `x-gateway-agent` header: set by the operator's or the developer's own code;
2. the body's `metadata.agent` (or `agent_name`, `agent_id`): where the Agents SDK's
   `ModelSettings(metadata=...)`, LangGraph and most frameworks let an agent name itself;
3. a known client's own signature: Claude Code (its `metadata.user_id` identity), Codex (its
   `client_metadata`, or its `originator` header), the OpenAI Agents SDK (its
   `User-Agent: Agents/Python …`). The Agents SDK's trace and group ids, when the caller puts
   them in `metadata` (`trace_id`, `group_id`), stay in the client context beside it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from routing.errors import GatewayError

AGENT_HEADER = "x-gateway-agent"
METADATA_KEYS = ("agent", "agent_name", "agent_id")
MAX_AGENT = 200  # the audit column's width
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _name(value: str, where: str) -> str:
    value = value.strip()
    if len(value) > MAX_AGENT or _CONTROL.search(value):
        # A key of limits and of the audit search: refused rather than cut or changed.
        raise GatewayError(
            400,
            f"'{where}' (the agent's name) must be at most {MAX_AGENT} characters, without "
            "control characters.",
            code="invalid_value",
            param=where,
        )
    return value


def agent_of(
    headers: Mapping[str, str], *, metadata: Any, context: Mapping[str, Any], client_metadata: Any
) -> str:
    """The calling agent's name, or "" when nothing says which agent it is."""
    if header := headers.get(AGENT_HEADER, "").strip():
        return _name(header, AGENT_HEADER)
    if isinstance(metadata, dict):
        for key in METADATA_KEYS:
            value = metadata.get(key)
            if isinstance(value, str) and value.strip():
                return _name(value, f"metadata.{key}")
    if context.get("client") == "claude-code":
        return "claude-code"
    if (isinstance(client_metadata, dict) and client_metadata) or headers.get(
        "originator", ""
    ).startswith("codex"):
        return "codex"
    if headers.get("user-agent", "").startswith("Agents/Python"):
        return "openai-agents"
    return ""
