"""Prometheus metrics of the MCP endpoint, named after the OpenTelemetry MCP semantic
conventions: the histogram `mcp.server.operation.duration` (seconds) with the attributes
`mcp.method.name`, `gen_ai.tool.name` and `error.type` (dots become underscores in Prometheus)."""

from __future__ import annotations

from prometheus_client import Histogram

DURATION = Histogram(
    "mcp_server_operation_duration_seconds",
    "Operations of the gateway's MCP endpoint (tools/list, tools/call), from arrival to answer.",
    ["mcp_method_name", "gen_ai_tool_name", "outcome", "error_type"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)


def observe(tool: str, outcome: str, seconds: float, error_type: str = "") -> None:
    """One tools/call; `error_type` is the audit record's (empty when it succeeded)."""
    DURATION.labels("tools/call", tool[:128], outcome, error_type[:64]).observe(seconds)


def observe_list(seconds: float) -> None:
    DURATION.labels("tools/list", "", "ok", "").observe(seconds)
