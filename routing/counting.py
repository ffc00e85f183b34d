"""Anthropic's `POST /v1/messages/count_tokens`: how many input tokens a Messages body would use.

Asked of the provider when the route starts with an Anthropic-format deployment (its count is the
one that will be billed); counted locally otherwise, or when no such deployment can answer. The
`x-gateway-token-count` header says which: `provider`, `exact` (the model's own tokenizer) or
`estimate`. Audited like any request, with no cost and no budget charge.

Request guardrails apply as to any request: a blocked body is refused, and a body in which PII was
masked is counted locally from its masked form, so the unmasked text never leaves the gateway.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse

from audit.models import AuditStatus
from routing.call import Call, parse_json_body
from routing.core.errors import UpstreamError
from routing.core.providers.anthropic import AnthropicAdapter
from routing.core.strategy import RoutePlan
from routing.core.types import JSON, Target
from routing.errors import GatewayError
from routing.guardrails.proxy import guard_request
from routing.pipeline import client_headers, messages_request, resolve_model
from routing.runtime import get_runtime
from routing.schemas import validate_count_tokens
from routing.table import ResolvedModel
from routing.wire import AnthropicWire
from tenants.auth import KeyIdentity
from tenants.quotas.tokens import count_chat_prompt_tokens

COUNT_HEADER = "x-gateway-token-count"


async def count_tokens(request: HttpRequest, identity: KeyIdentity) -> HttpResponse:
    call = Call(get_runtime(), request, identity, endpoint="messages.count_tokens")
    call.wire = AnthropicWire()
    try:
        raw = parse_json_body(request)
        call.entry.model_requested = str(raw.get("model") or "")[:200]
        body = validate_count_tokens(raw, betas=request.headers.get("anthropic-beta", ""))
        internal = messages_request(raw)
        call.attribute(internal)
        resolved, plan = await resolve_model(call.runtime, identity, body.model)
    except GatewayError as error:
        return await call.reject(error)
    call.entry.route_alias = resolved.route_alias
    # Run to its record even if the client leaves: the provider may be asked.
    return await call.run_to_record(_count_and_record(call, resolved, plan, internal, raw))


async def _count_and_record(
    call: Call, resolved: ResolvedModel, plan: RoutePlan, internal: JSON, raw: JSON
) -> HttpResponse:
    decision = await guard_request(call.caller, resolved, plan, internal)
    call.guard = decision.guard
    call.note_findings(decision.findings)
    if decision.refusal is not None:
        return await call.reject(decision.refusal)  # like any refused request: the body is not kept
    guarded, plan = decision.payload, decision.plan
    masked = guarded is not internal
    internal = guarded
    call.entry.request_body = guarded if masked else raw
    first = plan.targets[0]
    tokens, how = None, ""
    if first.kind == AnthropicAdapter.kind and not masked:
        try:
            tokens = await _ask_provider(call, plan, raw)
            how = "provider"
        except UpstreamError as error:
            if not error.retryable:
                return await call.fail_upstream(error)  # the provider refused the body itself
        except GatewayError as error:  # not recorded, so not forwarded
            return await call.reject(error)
    if tokens is None:
        count = count_chat_prompt_tokens(first.upstream_model, internal)
        tokens, how = count.tokens, "exact" if count.exact else "estimate"
        call.entry.usage_estimated = not count.exact
    answer = {"input_tokens": tokens}
    call.entry.status, call.entry.http_status = AuditStatus.SUCCESS, 200
    call.entry.prompt_tokens = tokens
    call.entry.response_body = answer
    call.finish()
    if failure := await call.commit():
        return call.error_response(failure)
    response = HttpResponse(orjson.dumps(answer), content_type="application/json")
    response["x-request-id"] = call.request_id
    response[COUNT_HEADER] = how
    return response


async def _ask_provider(call: Call, plan: RoutePlan, body: JSON) -> int:
    """The route's Anthropic-format deployments in turn (failover as for messages)."""
    headers = client_headers(call.headers)

    async def ask(adapter: Any, target: Target, payload: JSON) -> int:
        assert isinstance(adapter, AnthropicAdapter)
        return await adapter.count_tokens(target, payload, client_headers=headers)

    anthropic_only = plan.only(lambda target: target.kind == AnthropicAdapter.kind)
    tokens, _ = await call.call_targets(anthropic_only, body, ask, per_attempt_s=plan.timeout_s)
    assert isinstance(tokens, int)
    return tokens
