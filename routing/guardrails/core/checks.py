"""Applying a policy to one request and to its answer (non-streamed; streams: stream.py).

Findings are plain JSON for the audit record: what was found, where, what was done, under which
policy, never the value itself.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from routing.guardrails.core.injection import DetectorSet, describe
from routing.guardrails.core.masking import Masker
from routing.guardrails.core.pii import PiiScanner
from routing.guardrails.core.policy import OutputRule, Policy

JSON = dict[str, Any]
# Injection is looked for where outsiders write: the user's turns, what tools brought back,
# and the arguments of the tool calls the model made (a poisoned document steers them).
_INJECTION_ROLES = frozenset({"user", "tool", "function", "tool_call"})


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request or an answer is refused; the message names the policy."""

    code: str
    message: str
    policy: str


@dataclass
class RequestCheck:
    payload: JSON
    masker: Masker
    findings: list[JSON] = field(default_factory=list)
    refusal: Refusal | None = None
    reroute: str = ""
    # Held for review (injection action "quarantine"): the finding carries the text's digest.
    quarantined: bool = False


def text_digest(text: str) -> str:
    """What a reviewer's release is keyed by: the same text sent again passes (never stored raw)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _texts(payload: JSON) -> Iterator[tuple[str, str, str, Any, Any]]:
    """(where, role, text, container, key) for every text a chat request carries: message
    contents (tool results included: Anthropic's tool_result blocks arrive as `tool` messages)
    and the arguments of the tool calls in the history (role "tool_call")."""
    for i, message in enumerate(payload.get("messages") or ()):
        if not isinstance(message, dict):
            continue
        role, content = str(message.get("role") or ""), message.get("content")
        if isinstance(content, str):
            yield f"messages[{i}].content", role, content, message, "content"
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    yield f"messages[{i}].content[{j}].text", role, part["text"], part, "text"
        yield from _tool_call_arguments(message.get("tool_calls"), f"messages[{i}].tool_calls")


def _tool_call_arguments(calls: Any, where: str) -> Iterator[tuple[str, str, str, Any, Any]]:
    # Arguments are a JSON string; placeholders (<EMAIL_1>) keep it valid JSON when masked.
    for k, call in enumerate(calls if isinstance(calls, list) else ()):
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            path = f"{where}[{k}].function.arguments"
            yield path, "tool_call", function["arguments"], function, "arguments"


def check_request(
    policy: Policy, payload: JSON, scanner: PiiScanner | None, detectors: DetectorSet
) -> RequestCheck:
    result = RequestCheck(payload=payload, masker=Masker())
    masked_payload: JSON | None = None
    injection = policy.injection
    worst_score = 0.0
    worst_finding: JSON | None = None
    for where, role, text, _, _ in list(_texts(payload)):
        if injection is not None and role in _INJECTION_ROLES:
            verdict = detectors.score(text, injection.detectors)
            if verdict.score >= injection.threshold and verdict.score > worst_score:
                worst_score = verdict.score
                worst_finding = {
                    "stage": "request",
                    "check": "injection",
                    "type": "prompt_injection",
                    "action": injection.action,
                    "policy": injection.policy,
                    "where": where,
                    **describe(verdict),
                }
                if injection.action == "quarantine":
                    worst_finding["digest"] = text_digest(text)
        if scanner is None or not policy.pii:
            continue
        spans = scanner.find(
            text, list(policy.pii), min_score=policy.pii_min_score, custom=policy.recognizers
        )
        to_mask = []
        for span in spans:
            decision = policy.pii[span.entity]
            finding: JSON = {
                "stage": "request",
                "check": "pii",
                "type": span.entity,
                "action": decision.action,
                "policy": decision.policy,
                "where": where,
                "start": span.start,
                "end": span.end,
                "score": round(span.score, 2),
            }
            if decision.action == "mask":
                to_mask.append(span)
            elif decision.action == "block" and result.refusal is None:
                result.refusal = Refusal(
                    "pii_blocked",
                    f"The request was blocked by guardrail policy '{decision.policy}': it "
                    f"contains {span.entity} ({where}, characters {span.start}-{span.end}).",
                    decision.policy,
                )
            result.findings.append(finding)
        if to_mask:
            masked_payload = masked_payload or copy.deepcopy(payload)
            masked, names = result.masker.mask(text, to_mask)
            _set_text(masked_payload, where, masked)
            at = len(result.findings) - len(spans)
            for finding in result.findings[at:]:
                if finding["action"] == "mask":
                    finding["placeholder"] = names.pop(0)
    worst = worst_finding
    if worst is not None and injection is not None:
        result.findings.append(worst)
        if injection.action == "block" and result.refusal is None:
            result.refusal = Refusal(
                "prompt_injection_blocked",
                f"The request was blocked by guardrail policy '{injection.policy}': "
                f"{worst['where']} looks like a prompt injection "
                f"({', '.join(worst['categories']) or 'combined score'}; score {worst['score']}).",
                injection.policy,
            )
        elif injection.action == "quarantine":
            result.quarantined = True
            if injection.route:
                result.reroute = injection.route
            elif result.refusal is None:
                result.refusal = Refusal(
                    "prompt_injection_quarantined",
                    f"The request was held for review by guardrail policy '{injection.policy}': "
                    f"{worst['where']} looks like a prompt injection (score {worst['score']}). "
                    "It was not sent to any model; a reviewer may release it, after which the "
                    "same request is accepted.",
                    injection.policy,
                )
        elif injection.action == "route":
            result.reroute = injection.route
    if masked_payload is not None:
        result.payload = masked_payload
    return result


def _set_text(payload: JSON, where: str, text: str) -> None:
    for found, _, _, container, key in _texts(payload):
        if found == where:
            container[key] = text
            return


def rule_findings(
    rules: tuple[OutputRule, ...], text: str, *, where: str, offset: int = 0
) -> list[JSON]:
    found = []
    for rule in rules:
        for match in rule.regex.finditer(text):
            found.append(
                {
                    "stage": "response",
                    "check": "output",
                    "type": rule.category,
                    "rule": rule.name,
                    "action": rule.action,
                    "policy": rule.policy,
                    "where": where,
                    "start": match.start() + offset,
                    "end": match.end() + offset,
                }
            )
    return found


def output_refusal(finding: JSON) -> Refusal:
    return Refusal(
        "output_blocked",
        f"The answer was withheld by guardrail policy '{finding['policy']}': it matched output "
        f"rule '{finding['rule']}' ({finding['type']}).",
        str(finding["policy"]),
    )


@dataclass
class ResponseCheck:
    audited: JSON  # the answer as the audit record keeps it (PII masked)
    changed: bool
    findings: list[JSON] = field(default_factory=list)
    refusal: Refusal | None = None


def _answer_texts(parsed: JSON) -> Iterator[tuple[str, str, tuple[Any, ...]]]:
    """(where, text, path) for a complete answer's message contents and the arguments of the
    tool calls it makes: the model's tool calls are as much its output as its prose."""
    choices = parsed.get("choices")
    for i, choice in enumerate(choices if isinstance(choices, list) else ()):
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str) and content:
            yield f"choices[{i}].message.content", content, ("choices", i, "message", "content")
        calls = message.get("tool_calls")
        for k, call in enumerate(calls if isinstance(calls, list) else ()):
            function = call.get("function") if isinstance(call, dict) else None
            arguments = function.get("arguments") if isinstance(function, dict) else None
            if isinstance(arguments, str) and arguments:
                where = f"choices[{i}].message.tool_calls[{k}].function.arguments"
                path = ("choices", i, "message", "tool_calls", k, "function", "arguments")
                yield where, arguments, path


def _set_path(tree: Any, path: tuple[Any, ...], value: str) -> None:
    for key in path[:-1]:
        tree = tree[key]
    tree[path[-1]] = value


def check_response(
    policy: Policy, parsed: JSON, masker: Masker, scanner: PiiScanner | None
) -> ResponseCheck:
    """Output rules and PII in a complete answer's message contents and tool-call arguments."""
    result = ResponseCheck(audited=parsed, changed=False)
    for where, content, path in list(_answer_texts(parsed)):
        for finding in rule_findings(policy.output_rules, content, where=where):
            result.findings.append(finding)
            if finding["action"] == "block" and result.refusal is None:
                result.refusal = output_refusal(finding)
        if policy.pii_in_responses and scanner is not None and policy.pii:
            spans = scanner.find(
                content, list(policy.pii), min_score=policy.pii_min_score, custom=policy.recognizers
            )
            if spans:
                masked, names = masker.mask(content, spans, restorable=False)
                if not result.changed:
                    result.audited, result.changed = copy.deepcopy(parsed), True
                _set_path(result.audited, path, masked)
                result.findings += [
                    {
                        "stage": "response",
                        "check": "pii",
                        "type": span.entity,
                        "action": "mask",
                        "policy": policy.pii[span.entity].policy,
                        "where": where,
                        "start": span.start,
                        "end": span.end,
                        "placeholder": name,
                    }
                    for span, name in zip(spans, names, strict=True)
                ]
    return result
