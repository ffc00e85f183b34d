"""Prometheus counters for what the guardrails find and do (registered in the default registry)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter

PII_DETECTIONS = Counter(
    "gateway_guardrail_pii_detections_total",
    "PII values found in requests and answers.",
    ["tenant", "entity", "action", "stage"],
)
INJECTIONS = Counter(
    "gateway_guardrail_injections_total",
    "Requests scored as prompt injections, by the action taken (block, route, flag).",
    ["tenant", "action"],
)
OUTPUT_RULE_HITS = Counter(
    "gateway_guardrail_output_rule_hits_total",
    "Answers that matched an output rule, by the action taken (block, flag).",
    ["tenant", "category", "action"],
)
STRUCTURED_OUTPUT_FAILURES = Counter(
    "gateway_guardrail_structured_output_failures_total",
    "Answers that did not follow the requested JSON schema, by what happened next.",
    ["tenant", "outcome"],
)


def count(tenant: str, findings: Iterable[dict[str, Any]]) -> None:
    for finding in findings:
        if finding.get("shadow"):
            continue  # what a policy in shadow mode would have done: the record has it
        check = finding.get("check")
        if check == "pii":
            PII_DETECTIONS.labels(
                tenant, finding["type"], finding["action"], finding["stage"]
            ).inc()
        elif check == "injection":
            INJECTIONS.labels(tenant, finding["action"]).inc()
        elif check == "output":
            OUTPUT_RULE_HITS.labels(tenant, finding["type"], finding["action"]).inc()
        elif check == "structured_output":
            STRUCTURED_OUTPUT_FAILURES.labels(tenant, finding["action"]).inc()
