"""The guardrails on the proxy's hot path: what routing/pipeline.py calls.

- `guard_request` before forwarding: PII masked / blocked / flagged, injection scored; may
  refuse the request (GatewayError naming the policy) or send it to a restricted route.
- `guard_reply` on a complete answer: structured-output validation (retry, then fallback),
  output rules, PII in the answer; `client_body` puts masked values back for the client.
- `guard_stream` around a stream's events: the same, with a held-back window (core/stream.py).
- `guard_embeddings` before forwarding embedding inputs: PII masked or blocked.

A request no policy applies to costs one dictionary lookup. Each step returns its findings (or,
around a reply or a stream, which may fail half-way, hands them to the pipeline's `note` as
they are made); the pipeline puts them on the audit entry and the Prometheus counters. Raw PII
values never go there.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from routing.core.providers.base import ChatStream
from routing.core.strategy import RoutePlan
from routing.core.types import Reply, Target
from routing.errors import GatewayError
from routing.guardrails.core.checks import (
    JSON,
    Refusal,
    RequestCheck,
    check_request,
    check_response,
)
from routing.guardrails.core.images import check_images, has_images
from routing.guardrails.core.masking import Masker
from routing.guardrails.core.policy import NO_POLICY, Policy
from routing.guardrails.core.stream import OutputBlocked, StreamFilter
from routing.guardrails.core.structured import schema_problem, wanted_schema
from routing.guardrails.engines import Engines, engines_ready
from routing.guardrails.table import PolicyTable, policy_for

if TYPE_CHECKING:
    from routing.caller import Caller
    from routing.table import ResolvedModel

# Where a reply's or a stream's findings go as they are made (the pipeline's record).
Note = Callable[[Sequence[JSON]], None]
# Another try of the route for a reply that broke its schema (the pipeline's failover).
Retry = Callable[[RoutePlan], Awaitable[tuple[Reply, Target]]]

# Above this many characters of message text, PII and injection checks leave the event loop
# (a thread hop costs ~0.1 ms; a 100 kB prompt full of numbers costs tens of milliseconds).
OFFLOAD_CHARS = 32_000


@dataclass(slots=True)
class RequestGuard:
    """One request's guardrail state: its policy and its placeholder map (never stored)."""

    policy: Policy
    masker: Masker
    engines: Engines
    # The JSON schema the answer must follow (request or policy); streams check it at the end.
    schema: Any = None


@dataclass(frozen=True, slots=True)
class GuardDecision:
    """What the request guardrails decided: the payload to forward (masked), the plan (the
    restricted route's, for a suspected injection), the guard for the reply, the findings, and
    the refusal to answer with if the request may not go on."""

    payload: JSON
    plan: RoutePlan
    guard: RequestGuard | None = None
    findings: tuple[JSON, ...] = ()
    refusal: GatewayError | None = None
    restricted_route: str = ""
    masked_tool_results: list[JSON] | None = None  # the record's tool results, masked too
    # Held for review (injection action "quarantine"): the record keeps `payload` (masked)
    # for the review queue even when the request is refused.
    held: bool = False

    @property
    def changed(self) -> bool:
        return self.refusal is None and self.masked_tool_results is not None


@dataclass(frozen=True, slots=True)
class GuardedReply:
    """The reply to settle and send (masked as the record keeps it), or why it is withheld;
    `paid` says whether the withheld reply's usage is charged. `superseded`: the answers paid
    for before it (a schema retry's), each with the deployment that gave it, charged at its
    prices whatever happens to the last one."""

    reply: Reply
    target: Target
    refusal: GatewayError | None = None
    paid: bool = False
    superseded: tuple[tuple[Reply, Target], ...] = ()


def _text_size(payload: JSON) -> int:
    size = 0
    for message in payload.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        size += len(content) if isinstance(content, str) else len(str(content or ""))
    return size


def _refuse(refusal: Refusal, status: int = 400) -> GatewayError:
    return GatewayError(status, refusal.message, code=refusal.code, param="messages")


async def guard_request(
    caller: Caller, resolved: ResolvedModel, plan: RoutePlan, payload: JSON
) -> GuardDecision:
    identity = caller.identity
    table = await caller.runtime.guard_policies.get()

    def policies(shadow: bool) -> Policy:
        return table.for_request(
            tenant_id=identity.tenant_id,
            team_id=identity.team_id,
            key_id=identity.key_id,
            route=resolved.route_alias,
            shadow=shadow,
        )

    shadowed = await _shadow(policies(shadow=True), payload) if table.shadow else ()
    policy = policies(shadow=False) if table.scopes else NO_POLICY
    if not policy.active:
        return GuardDecision(payload, plan, findings=shadowed)
    engines = await engines_ready()
    check = await _check(policy, payload, engines)
    if check.quarantined and _released(table, identity.tenant_id, check.findings):
        # A reviewer released this text: the same request passes the injection check.
        check = await _check(dataclasses.replace(policy, injection=None), payload, engines)
    if policy.images is not None and has_images(check.payload):
        seen = await asyncio.to_thread(
            check_images, policy, check.payload, engines.scanner, engines.images
        )
        check.findings += seen.findings
        check.payload = seen.payload
        check.refusal = check.refusal or seen.refusal
    guard = RequestGuard(policy, check.masker, engines, wanted_schema(check.payload, policy))
    findings = shadowed + tuple(check.findings)
    held = check.quarantined
    if check.refusal is not None:
        kept = check.payload if held else payload
        refusal = _refuse(check.refusal)
        return GuardDecision(kept, plan, guard, findings, refusal=refusal, held=held)
    restricted = ""
    if check.reroute:
        try:
            plan = await _restricted_plan(caller, check.reroute, policy)
        except GatewayError as refusal:
            return GuardDecision(payload, plan, guard, findings, refusal=refusal)
        restricted = check.reroute
    tool_results = None
    if check.payload is not payload:
        # The record keeps tool results too: keep them masked as well.
        tool_results = [
            {"tool_call_id": m.get("tool_call_id"), "content": m.get("content")}
            for m in check.payload.get("messages") or ()
            if isinstance(m, dict) and m.get("role") == "tool"
        ]
    return GuardDecision(
        check.payload, plan, guard, findings, None, restricted, tool_results, held=held
    )


async def _check(policy: Policy, payload: JSON, engines: Engines) -> RequestCheck:
    scanner = engines.scanner if policy.pii else None
    if _text_size(payload) > OFFLOAD_CHARS:
        return await asyncio.to_thread(check_request, policy, payload, scanner, engines.detectors)
    return check_request(policy, payload, scanner, engines.detectors)


def _released(table: PolicyTable, tenant_id: int, findings: list[JSON]) -> bool:
    return any(
        (tenant_id, f.get("digest", "")) in table.released
        for f in findings
        if f["check"] == "injection"
    )


async def _shadow(policy: Policy, payload: JSON) -> tuple[JSON, ...]:
    """Policies in shadow mode: what they would have done, as findings; nothing applied."""
    if not policy.active:
        return ()
    engines = await engines_ready()
    check = await _check(policy, payload, engines)
    findings = check.findings
    if policy.images is not None and has_images(payload):
        seen = await asyncio.to_thread(
            check_images, policy, payload, engines.scanner, engines.images
        )
        findings = findings + seen.findings
    return tuple({**finding, "shadow": True} for finding in findings)


async def guard_embeddings(
    caller: Caller, resolved: ResolvedModel, plan: RoutePlan, payload: JSON
) -> GuardDecision:
    """Embedding inputs with PII masked (or the request refused), under the same policies."""
    identity = caller.identity
    policy = await policy_for(
        caller.runtime.guard_policies,
        tenant_id=identity.tenant_id,
        team_id=identity.team_id,
        key_id=identity.key_id,
        route=resolved.route_alias,
    )
    inputs = payload.get("input")
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not policy.pii or not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        return GuardDecision(payload, plan)  # token arrays carry no text to check
    engines = await engines_ready()
    as_chat = {"messages": [{"role": "user", "content": text} for text in texts]}
    check = check_request(
        dataclasses.replace(policy, injection=None), as_chat, engines.scanner, engines.detectors
    )
    for finding in check.findings:
        finding["where"] = finding["where"].replace("messages", "input").replace(".content", "")
    findings = tuple(check.findings)
    if check.refusal is not None:
        return GuardDecision(payload, plan, findings=findings, refusal=_refuse(check.refusal))
    masked = [m["content"] for m in check.payload["messages"]]
    masked_payload = {**payload, "input": masked[0] if isinstance(inputs, str) else masked}
    return GuardDecision(masked_payload, plan, findings=findings)


async def _restricted_plan(caller: Caller, alias: str, policy: Policy) -> RoutePlan:
    table = await caller.runtime.routes.get()
    resolved = table.resolve(alias)
    plan = resolved.plan if resolved is not None else None
    region = caller.identity.residency_region
    if plan is not None and region:
        plan = plan.only(lambda target: target.region == region)
    if plan is None or not plan.targets:
        # Fail closed: a suspected injection never goes to the unrestricted route instead.
        name = policy.injection.policy if policy.injection else ""
        raise GatewayError(
            400,
            f"The request was blocked by guardrail policy '{name}': it looks like a prompt "
            f"injection and its restricted route '{alias}' is not available.",
            code="prompt_injection_blocked",
            param="messages",
        )
    return plan


def _retry_plan(plan: RoutePlan, targets: tuple[Target, ...]) -> RoutePlan:
    return dataclasses.replace(
        plan, targets=targets, weights=(1,) * len(targets), strategy="ordered", sticky=False
    )


@dataclass(slots=True)
class _Checked:
    reply: Reply
    target: Target
    superseded: list[tuple[Reply, Target]]
    refusal: GatewayError | None = None


async def _until_valid(
    note: Note,
    retry: Retry,
    guard: RequestGuard,
    plan: RoutePlan,
    reply: Reply,
    target: Target,
    schema: Any,
) -> _Checked:
    settings = guard.policy.structured
    assert settings is not None
    tried = [target.deployment_id]
    retries = 0
    # Every answer was paid for, valid or not: each is charged, at its own deployment's prices.
    checked = _Checked(reply, target, [])
    while (problem := schema_problem(reply.parsed, schema, guard.engines.schemas)) is not None:
        others = tuple(t for t in plan.targets if t.deployment_id not in tried)
        if retries < settings.retries:
            action, retries, next_plan = "retry", retries + 1, _retry_plan(plan, (target,))
        elif settings.fallback and others:
            action, next_plan = "fallback", _retry_plan(plan, others)
        else:
            action, next_plan = "reject", None
        note(
            [
                {
                    "stage": "response",
                    "check": "structured_output",
                    "type": "schema_mismatch",
                    "action": action,
                    "policy": settings.policy,
                    "deployment": target.deployment_name,
                    "error": problem[:300],
                }
            ],
        )
        if next_plan is None:
            checked.refusal = GatewayError(
                502,
                f"The model's answer did not follow the requested JSON schema after "
                f"{retries} retr{'y' if retries == 1 else 'ies'} (policy '{settings.policy}'): "
                f"{problem}",
                type="upstream_error",
                code="invalid_structured_output",
            )
            return checked
        checked.superseded.append((reply, target))
        reply, target = await retry(next_plan)
        tried.append(target.deployment_id)
        checked.reply, checked.target = reply, target
    return checked


async def guard_reply(
    guard: RequestGuard | None,
    plan: RoutePlan,
    payload: JSON,
    reply: Reply,
    target: Target,
    *,
    note: Note,
    retry: Retry,
) -> GuardedReply:
    """The answer to settle and send; a schema mismatch is retried through `retry`."""
    if guard is None:
        return GuardedReply(reply, target)
    policy = guard.policy
    schema = wanted_schema(payload, policy)
    superseded: tuple[tuple[Reply, Target], ...] = ()
    if schema is not None:
        checked = await _until_valid(note, retry, guard, plan, reply, target, schema)
        reply, target, superseded = checked.reply, checked.target, tuple(checked.superseded)
        if checked.refusal is not None:  # every answer was paid for: all are charged
            return GuardedReply(reply, target, checked.refusal, paid=True, superseded=superseded)
    if not policy.filters_responses:
        return GuardedReply(reply, target, superseded=superseded)
    check = check_response(policy, reply.parsed, guard.masker, guard.engines.scanner)
    note(check.findings)
    if check.refusal is not None:
        # Paid for, so settled; but the client gets the refusal, and the record not the text.
        refusal = _refuse(check.refusal)
        return GuardedReply(reply, target, refusal, paid=True, superseded=superseded)
    if check.changed:
        reply = dataclasses.replace(reply, body=orjson.dumps(check.audited), parsed=check.audited)
    return GuardedReply(reply, target, superseded=superseded)


def client_body(guard: RequestGuard | None, body: bytes) -> bytes:
    """The answer's bytes with this request's placeholders restored, if its policy says so."""
    if guard is None or not guard.policy.pii_restore or not guard.masker.restores:
        return body
    return guard.masker.restore_json(body)


def stream_error(request_id: str, blocked: OutputBlocked) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "message": f"{blocked.refusal.message} The stream was cut here. "
                f"Request id: {request_id}.",
                "type": "invalid_request_error",
                "param": None,
                "code": blocked.refusal.code,
            }
        }
    )


async def guard_stream(
    guard: RequestGuard | None, first: bytes, stream: ChatStream, *, note: Note
) -> AsyncIterator[bytes]:
    """The stream's events as the client may see them; raises OutputBlocked to cut it.

    With a JSON schema to follow, the last event (`[DONE]`, Anthropic's `message_stop`) is held
    until the whole answer is validated: an answer that does not follow it ends with an error
    event instead, and the record says so (the text already sent cannot be taken back)."""
    events = _guarded_events(guard, first, stream, note=note)
    if guard is None or guard.schema is None:
        async for event in events:
            yield event
        return
    held: bytes | None = None
    async for event in events:
        if held is not None:
            yield held
        held = event
    problem = schema_problem(stream.tap.assembled_response(), guard.schema, guard.engines.schemas)
    if problem is not None:
        name = guard.policy.structured.policy if guard.policy.structured else ""
        finding = {
            "stage": "response",
            "check": "structured_output",
            "type": "schema_mismatch",
            "action": "reject",
            "policy": name,
            "error": problem[:300],
            "stream": True,
        }
        note([finding])
        message = (
            f"The streamed answer did not follow the requested JSON schema (policy '{name}'): "
            f"{problem}"
        )
        raise OutputBlocked(Refusal("invalid_structured_output", message, name))
    if held is not None:
        yield held


async def _guarded_events(
    guard: RequestGuard | None, first: bytes, stream: ChatStream, *, note: Note
) -> AsyncIterator[bytes]:
    if guard is None or not guard.policy.filters_responses:
        yield first
        async for event in stream.events:
            yield event
        return
    policy = guard.policy
    scanner = guard.engines.scanner if policy.pii_in_responses else None
    restoring = policy.pii_restore and guard.masker.restores
    filtered = StreamFilter(policy, guard.masker, scanner, restore=restoring)
    seen = 0
    try:
        for out in filtered.feed(first):
            yield out
        async for event in stream.events:
            outs = filtered.feed(event)
            # The record keeps what was released, masked, never text the client did not get.
            stream.tap.content[:] = [filtered.audited_text()]
            note(filtered.findings[seen:])
            seen = len(filtered.findings)
            for out in outs:
                yield out
        for out in filtered.flush():
            yield out
    finally:
        stream.tap.content[:] = [filtered.audited_text()]
        note(filtered.findings[seen:])
