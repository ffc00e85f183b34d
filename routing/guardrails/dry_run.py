"""The console's dry run: paste a prompt, see what each policy would do with it (nothing sent)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from routing.guardrails.core.checks import check_request, rule_findings
from routing.guardrails.core.policy import PolicySpec, compile_policy
from routing.guardrails.engines import engines
from routing.guardrails.models import GuardrailPolicy


@dataclass(frozen=True)
class DryRun:
    policy: str
    shadow: bool
    outcome: str  # what the gateway would do, in a sentence
    forwarded: str  # the prompt as the provider would see it ("" when refused)
    findings: list[dict[str, Any]] = field(default_factory=list)


def _outcome(check: Any, answer_findings: list[dict[str, Any]]) -> str:
    if check.refusal is not None:
        return f"refuse ({check.refusal.code}): {check.refusal.message}"
    if check.quarantined and check.reroute:
        return f"hold for review and send to the restricted route '{check.reroute}'"
    if check.reroute:
        return f"send to the restricted route '{check.reroute}'"
    blocked = [f for f in answer_findings if f["action"] == "block"]
    if blocked:
        return f"forward; an answer saying this would be withheld (rule '{blocked[0]['rule']}')"
    if any(f["action"] == "mask" for f in check.findings):
        return "forward with the values masked"
    if check.findings or answer_findings:
        return "forward and record the findings"
    return "forward unchanged"


def dry_run(*, policies: list[GuardrailPolicy], prompt: str) -> list[DryRun]:
    built = engines()
    payload = {"messages": [{"role": "user", "content": prompt}]}
    results = []
    for row in policies:
        policy = compile_policy(row.name, PolicySpec.model_validate(row.spec))
        scanner = built.scanner if policy.pii else None
        check = check_request(policy, payload, scanner, built.detectors)
        answer = rule_findings(policy.output_rules, prompt, where="the answer")
        findings = [
            {k: v for k, v in f.items() if k not in ("digest",)} for f in check.findings + answer
        ]
        results.append(
            DryRun(
                policy=row.name,
                shadow=row.shadow,
                outcome=_outcome(check, answer),
                forwarded="" if check.refusal else str(check.payload["messages"][0]["content"]),
                findings=findings,
            )
        )
    return results
