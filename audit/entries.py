"""The audit record of one request, as the proxy builds it before it is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

JSON = dict[str, Any]


@dataclass(slots=True)
class AuditEntry:
    request_id: str
    tenant_id: int
    team_id: int
    api_key_id: int
    endpoint: str
    started_at: datetime
    status: str
    end_user: str = ""
    feature: str = ""
    agent: str = ""  # the calling agent (routing/agent_identity.py)
    client_context: JSON = field(default_factory=dict)
    model_requested: str = ""
    route_alias: str = ""
    deployment_name: str = ""
    provider_name: str = ""
    upstream_model: str = ""
    stream: bool = False
    attempts: list[JSON] = field(default_factory=list)
    # How the deployments were ordered: {"strategy", "category", "reason"}.
    routing: JSON = field(default_factory=dict)
    request_body: JSON | None = None
    response_body: JSON | None = None
    tool_calls: list[JSON] = field(default_factory=list)
    tool_results: list[JSON] = field(default_factory=list)
    guardrail_findings: list[JSON] = field(default_factory=list)
    prompt_name: str = ""
    prompt_version: int | None = None
    prompt_label: str = ""
    prompt_fingerprint: str = ""
    quota: JSON = field(default_factory=dict)
    usage_estimated: bool = False
    http_status: int | None = None
    error_type: str = ""
    error_message: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    latency_ms: float | None = None
    ttft_ms: float | None = None
    completed_at: datetime | None = None
    # The columns stored escaped because they held characters PostgreSQL refuses (audit/storable.py).
    stored_escaped: list[str] = field(default_factory=list)


# What a stream's start record, committed while its first deployment is being asked (ADR 0014),
# may not know yet: the deployment that answers (after a failover, another one), what it was
# sent, the attempts and why they were made in that order.
START_FIELDS = ("deployment_name", "provider_name", "request_body", "attempts", "routing")

# What completing a stream may change on its in-progress record; everything else is fixed
# when the record is first written.
COMPLETION_FIELDS = (
    "status",
    "http_status",
    "error_type",
    "error_message",
    "upstream_model",
    "response_body",
    "tool_calls",
    "guardrail_findings",
    "quota",
    "usage_estimated",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "completed_at",
    # A stream's answer may be the first part to hold a character stored escaped.
    "stored_escaped",
    *START_FIELDS,
)

# What a recovery that completes a stream as `interrupted` writes: not the START_FIELDS, which the
# start record holds and the write-ahead line (written before any deployment was asked) does not.
INTERRUPTION_FIELDS = tuple(name for name in COMPLETION_FIELDS if name not in START_FIELDS)
