"""Prometheus metrics of tool calls, labelled with the OpenTelemetry MCP attribute names
(`mcp.method.name`, `gen_ai.tool.name`; dots become underscores in Prometheus)."""

from __future__ import annotations

from prometheus_client import Histogram

DURATION = Histogram(
    "mcp_server_operation_duration_seconds",
    "Tool calls through the gateway's MCP endpoint, from arrival to answer.",
    ["mcp_method_name", "gen_ai_tool_name", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)


def observe(tool: str, outcome: str, seconds: float) -> None:
    DURATION.labels("tools/call", tool[:128], outcome).observe(seconds)
