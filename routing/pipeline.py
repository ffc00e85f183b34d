"""The proxy's request flows, as typed steps (docs/architecture.md#the-request-path):

key → body → prompt → attribution → model → task category → guardrails in → cache → admission
→ failover → guardrails out → settle → record.

Each step takes what it needs (the `Caller`, the payload, the plan) and returns an immutable
result (`RenderedPrompt`, `CategoryRoute`, `GuardDecision`, `CacheLookup`, `Admitted`, `Tried`,
`GuardedReply`); only this module writes what they say onto the call's audit record (`Call`).
Each flow answers only after that record is committed (a stream: its start, inserted while its
first deployment is asked, after the call is on the write-ahead journal: docs/adr/0014).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja.errors import AuthenticationError, HttpError, ValidationError

from audit.models import AuditStatus
from audit.writer import AuditWriteError
from routing import responses_native
from routing.cache import proxy as response_cache
from routing.cache.core.answers import CachedAnswer, replay_body, replay_events
from routing.call import Call, parse_json_body
from routing.core.errors import UpstreamError, public_reason
from routing.core.providers.anthropic import AnthropicAdapter
from routing.core.providers.base import ChatStream, ProviderAdapter
from routing.core.providers.openai_responses import RESPONSES_KIND, OpenAIResponsesAdapter
from routing.core.strategy import RoutePlan, in_region
from routing.core.translate import (
    ResponseContext,
    UnsupportedRequest,
    anthropic_request_to_openai,
)
from routing.core.types import JSON, Target, Usage
from routing.errors import GatewayError
from routing.guardrails.core.stream import OutputBlocked
from routing.guardrails.proxy import (
    GuardDecision,
    client_body,
    guard_embeddings,
    guard_reply,
    guard_request,
    guard_stream,
    stream_error,
)
from routing.prompts.proxy import PromptRef, PromptRefused, prompt_apply
from routing.runtime import GatewayRuntime, get_runtime
from routing.schemas import (
    validate_chat,
    validate_embeddings,
    validate_messages,
    validate_responses,
)
from routing.table import ResolvedModel
from routing.task_category import route_by_category
from routing.wire import ResponsesWire
from tenants.auth import KeyIdentity
from tenants.quotas import gate as quota_gate
from tenants.quotas.gate import Admitted
from tenants.quotas.tokens import count_text_tokens

# Fields the gateway reads for itself and does not forward (attribution only).
GATEWAY_FIELDS = frozenset({"metadata"})
# "x-gateway-dry-run: 1": answer which limit or budget would stop the request and what it could
# cost, without counting it or calling a provider.
DRY_RUN_HEADER = "x-gateway-dry-run"
# Sent on to Anthropic-format providers only (see docs/api.md#anthropic-headers).
CLIENT_HEADERS = ("anthropic-version", "anthropic-beta")
# Adapters that take a client's own body (`native`) when the deployment speaks its format.
NATIVE_ADAPTERS = (AnthropicAdapter, OpenAIResponsesAdapter)


async def resolve_model(
    runtime: GatewayRuntime, identity: KeyIdentity, name: str, notes: list[str] | None = None
) -> tuple[ResolvedModel, RoutePlan]:
    """The route for `name` as this key may use it; `notes` collects why deployments were left out."""
    table = await runtime.routes.get()
    resolved = table.resolve(name)
    if resolved is None or not identity.may_use(name, resolved.route_alias):
        # The same answer for "unknown" and "not yours", so keys cannot probe other models.
        raise GatewayError(
            404,
            f"The model '{name}' does not exist or your key cannot use it.",
            code="model_not_found",
            param="model",
        )
    plan = resolved.plan
    if pin := identity.pin(name, resolved.route_alias):
        plan = pinned_plan(plan, name, pin)
        if notes is not None:
            notes.append(f"pinned to {pin}")
    if identity.residency_region:
        before = len(plan.targets)
        plan = in_region(plan, identity.residency_region)
        if notes is not None and len(plan.targets) < before:
            notes.append(
                f"residency '{identity.residency_region}': {before - len(plan.targets)} "
                "deployment(s) out of region left out"
            )
        if not plan.targets:
            raise GatewayError(
                403,
                f"No deployment of '{name}' is in your tenant's data residency region "
                f"'{identity.residency_region}'; the request was not sent anywhere.",
                type="permission_error",
                code="residency_unavailable",
                param="model",
            )
    return resolved, plan


def pinned_plan(plan: RoutePlan, name: str, pin: str) -> RoutePlan:
    """Only the pinned version serves the model: no fallback to another one, ever."""
    plan = plan.only(lambda t: pin in (t.deployment_name, t.upstream_model))
    if not plan.targets:
        raise GatewayError(
            409,
            f"Your key is pinned to '{pin}' for '{name}', but '{name}' has no such deployment "
            "now; the request was not sent to another version. Ask an admin to update the pin.",
            code="pinned_deployment_unavailable",
            param="model",
        )
    return plan


def forwarded(raw: JSON) -> JSON:
    return {key: value for key, value in raw.items() if key not in GATEWAY_FIELDS}


def messages_request(raw: JSON) -> JSON:
    """An Anthropic Messages body in the internal chat form. The schema leaves most of it open;
    a field of the wrong type the translation reads is the client's 400, with its record."""
    try:
        return anthropic_request_to_openai(raw)
    except (AttributeError, KeyError, TypeError, ValueError):
        raise GatewayError(
            400,
            "The request body is not a valid Messages request: a field has the wrong type.",
            code="invalid_value",
        ) from None


def tool_results(raw: JSON) -> list[JSON]:
    return [
        {"tool_call_id": m.get("tool_call_id"), "content": m.get("content")}
        for m in raw.get("messages") or ()
        if isinstance(m, dict) and m.get("role") == "tool"
    ]


def _model_named(raw: JSON) -> str:
    return str(raw.get("model") or "")[:200]


async def _render_prompt(call: Call, body: JSON, *, source: JSON | None = None) -> JSON:
    """The prompt step: the body with a registry prompt rendered in, noted on the record."""
    try:
        rendered = await prompt_apply(call.caller, body, source=source)
    except PromptRefused as refused:
        _note_prompt(call, refused.prompt)
        raise
    if rendered.fingerprint:
        call.entry.prompt_fingerprint = rendered.fingerprint
    _note_prompt(call, rendered.prompt)
    return rendered.body


def _note_prompt(call: Call, prompt: PromptRef) -> None:
    if prompt.name:
        entry = call.entry
        entry.prompt_name, entry.prompt_version, entry.prompt_label = (
            prompt.name,
            prompt.version,
            prompt.label,
        )


def _prompt_of(call: Call) -> PromptRef:
    entry = call.entry
    return PromptRef(entry.prompt_name, entry.prompt_version, entry.prompt_label)


def _note_guard(call: Call, decision: GuardDecision) -> None:
    """What the request guardrails decided, on the record (the refusal is the caller's to raise)."""
    call.guard = decision.guard
    call.note_findings(decision.findings)
    if decision.restricted_route:
        call.entry.route_alias = decision.restricted_route
    if decision.masked_tool_results is not None:
        call.entry.tool_results = decision.masked_tool_results
    if decision.held:  # the quarantine review queue reads the held request from its record
        call.entry.request_body = decision.payload


_View = TypeVar("_View", bound=Callable[..., Awaitable[HttpResponse | StreamingHttpResponse]])


def recorded_on_fault(view: _View) -> _View:
    """A model call's last resort, around its endpoint: an exception no step expected is
    answered 500 in the API's format with the request id, and the call recorded as failed
    (`Call.fail_unexpectedly`), never left without a record. The API's own errors go to its
    handlers (routing/proxy_api.py)."""

    @functools.wraps(view)
    async def served(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return await view(request, *args, **kwargs)
        except (GatewayError, HttpError, AuthenticationError, ValidationError):
            raise
        except Exception as error:
            call = Call.of(request)
            if call is None:
                raise
            return await call.fail_unexpectedly(error)

    return served  # type: ignore[return-value]


def _note_admission(call: Call, admitted: Admitted) -> None:
    call.admitted = admitted
    call.quota_headers = admitted.headers
    call.entry.quota = admitted.record
    if admitted.route_alias:
        call.entry.route_alias = admitted.route_alias


async def chat_completions(
    request: HttpRequest, identity: KeyIdentity
) -> HttpResponse | StreamingHttpResponse:
    runtime = get_runtime()
    call = Call(runtime, request, identity, endpoint="chat.completions")
    try:
        raw = await _render_prompt(call, parse_json_body(request))
        call.entry.model_requested = _model_named(raw)
        body = validate_chat(raw)
        call.attribute(raw)
        call.entry.tool_results = tool_results(raw)
        resolved, plan = await resolve_model(runtime, identity, body.model, call.routing_notes)
    except GatewayError as error:
        return await call.reject(error)
    wants_usage = bool(body.stream_options and body.stream_options.include_usage)
    return await _serve_chat(call, resolved, plan, forwarded(raw), bool(body.stream), wants_usage)


async def messages(
    request: HttpRequest, identity: KeyIdentity
) -> HttpResponse | StreamingHttpResponse:
    """Anthropic's Messages API, served from any provider: translated to the internal form."""
    runtime = get_runtime()
    call = Call(runtime, request, identity, endpoint="messages")
    try:
        raw = parse_json_body(request)
        call.entry.model_requested = _model_named(raw)
        anthropic_body = validate_messages(raw, betas=call.headers.get("anthropic-beta", ""))
        # An Anthropic-format deployment gets this body as it is (docs/api.md#native): the
        # translation below is what guardrails, limits and the other formats work on.
        call.source_format, call.source_body = "anthropic", raw
        call.offer_tools(raw, None)
        call.native_request = raw
        translated = messages_request(raw)
        internal = await _render_prompt(call, translated, source=raw)
        if internal != translated:  # a registry prompt was rendered in: only that form may go
            call.native_request = None
        validate_chat(internal)
        call.attribute(internal)
        call.entry.tool_results = tool_results(internal)
        resolved, plan = await resolve_model(
            runtime, identity, anthropic_body.model, call.routing_notes
        )
        if call.tool_uses:  # server tools: their chat form does not show them (see uncached)
            resolved = dataclasses.replace(resolved, cache=None)
    except GatewayError as error:
        return await call.reject(error)
    # Usage is needed for the closing message_delta, whatever the client asked.
    stream = bool(anthropic_body.stream)
    return await _serve_chat(call, resolved, plan, forwarded(internal), stream, wants_usage=True)


async def responses(
    request: HttpRequest, identity: KeyIdentity
) -> HttpResponse | StreamingHttpResponse:
    """OpenAI's Responses API, served from any provider via the internal chat form; stored and
    continued by the gateway (`store`, `previous_response_id`: routing/responses_state/)."""
    runtime = get_runtime()
    call = Call(runtime, request, identity, endpoint="responses")
    try:
        raw = parse_json_body(request)
        call.entry.model_requested = _model_named(raw)
        body = validate_responses(raw)
        response_id = "resp_" + call.request_id.removeprefix("req_")
        # The whole input for a stateless upstream: the previous response's context first.
        turn = await runtime.responses.begin(call.caller, raw, response_id)
        resolved, plan = await resolve_model(runtime, identity, body.model, call.routing_notes)
        try:
            # The route says what happens to tools only a provider could run (docs/api.md); a
            # Responses-native deployment gets the body itself (routing/responses_native.py).
            translated, tools, plan, native = responses_native.prepare(turn.body, plan, sent=raw)
        except UnsupportedRequest as refusal:
            raise GatewayError(
                400, refusal.message, param=refusal.param, code=refusal.code
            ) from None
        call.drop_tools(tools.dropped)
        resolved = responses_native.uncached(resolved, tools)
        call.source_format, call.native_request = RESPONSES_KIND, native.body
        call.native_responses = native
        call.offer_tools(None, native)
        internal = await _render_prompt(call, translated, source=raw)
        if internal != translated:  # a registry prompt was rendered in: only that form may go
            call.native_request = None
        validate_chat(internal)
        call.attribute(internal, client_metadata=raw.get("client_metadata"))
        turn.link(call.entry)  # the record names the response or conversation it continues
        call.entry.tool_results = tool_results(internal)
        context = ResponseContext(
            response_id,
            raw,
            int(time.time()),
            tools.origins,
            store=turn.store,
            previous_response_id=turn.previous_response_id,
        )
        keeper = runtime.responses.keeper(call.caller, turn, call.entry.model_requested)
        call.wire = ResponsesWire(context, keeper)
    except GatewayError as error:
        return await call.reject(error)
    # Usage is needed for the closing response.completed event, whatever the client asked.
    return await _serve_chat(
        call, resolved, plan, forwarded(internal), bool(body.stream), wants_usage=True
    )


async def _serve_chat(
    call: Call,
    resolved: ResolvedModel,
    plan: RoutePlan,
    payload: JSON,
    stream: bool,
    wants_usage: bool,
) -> HttpResponse | StreamingHttpResponse:
    """Forward a validated chat request (internal form), streamed or not."""
    call.entry.route_alias = resolved.route_alias
    call.entry.stream = stream
    try:
        category = await route_by_category(call.caller, plan, payload)
    except GatewayError as error:
        return await call.reject(error)
    plan, call.task_category = category.plan, category.category
    if category.note:
        call.routing_notes.append(category.note)
    if call.headers.get(DRY_RUN_HEADER):
        return await _dry_run(call, plan, payload)
    # Guardrails first: a refused request spends no quota, and quotas count masked text.
    decision = await guard_request(call.caller, resolved, plan, payload)
    _note_guard(call, decision)
    if decision.refusal is not None:
        return await call.reject(decision.refusal)
    if decision.payload != payload:  # masked or rewritten: the client's own body must not go out
        call.native_request = None
    payload, plan = decision.payload, decision.plan
    # A cached answer spends no tokens or budget and calls no provider (routing/cache/).
    looked = await response_cache.lookup(
        call.caller, resolved, plan, payload, guard=call.guard, prompt=_prompt_of(call)
    )
    call.cache = looked.state
    if looked.answer is not None:
        try:  # a served request all the same: it counts against request-rate limits
            counted = await quota_gate.admit_cached(call.caller)
        except GatewayError as error:
            return await call.reject(error)
        call.quota_headers, call.entry.quota = counted.headers, counted.record
        return await _serve_cached(call, looked.answer, payload, stream, wants_usage)
    # From the admission on, the call runs to its record even if its client leaves: what the
    # admission reserves is then given back, and a call already sent is recorded as charged.
    return await call.run_to_record(_admit_and_answer(call, plan, payload, stream, wants_usage))


async def _admit_and_answer(
    call: Call, plan: RoutePlan, payload: JSON, stream: bool, wants_usage: bool
) -> HttpResponse | StreamingHttpResponse:
    try:
        admitted = await quota_gate.admit(call.caller, plan, payload)
    except GatewayError as error:
        return await call.reject(error)
    _note_admission(call, admitted)
    if stream:
        return await _stream_chat(call, admitted.plan, payload, wants_usage)
    return await _complete_chat(call, admitted.plan, payload)


async def _serve_cached(
    call: Call, answer: CachedAnswer, payload: JSON, stream: bool, wants_usage: bool
) -> HttpResponse | StreamingHttpResponse:
    """Answer from the cache: recorded (cost 0, the source named) before the client sees it."""
    body = replay_body(answer, call.request_id)
    message = ((body.get("choices") or [{}])[0] or {}).get("message") or {}
    entry = call.entry
    entry.request_body = payload  # what would have gone to a provider
    entry.routing = {
        "category": call.task_category or None,
        "cache": call.cache.note() if call.cache else {},
    }
    entry.tool_calls = call.wire.tool_calls(message.get("tool_calls") or [])
    entry.upstream_model = str(body.get("model") or "")
    entry.status, entry.http_status = AuditStatus.SUCCESS, 200
    entry.response_body = body
    entry.ttft_ms = round(call.elapsed_ms(), 3) if stream else None
    call.finish()
    if failure := await call.commit():
        return call.error_response(failure)
    headers = {
        **call.quota_headers,
        **call.id_headers(),
        **(call.cache.headers() if call.cache else {}),
        "x-gateway-route": entry.route_alias,
        "x-gateway-cost-usd": "0",
        "x-gateway-latency-ms": f"{call.elapsed_ms():.2f}",
    }
    response: HttpResponse | StreamingHttpResponse
    if stream:
        response = StreamingHttpResponse(
            _replay(call, answer, wants_usage), content_type="text/event-stream"
        )
        response["cache-control"] = "no-cache"
        response["x-accel-buffering"] = "no"
    else:
        # A stored Responses API response is kept before it is sent (routing/responses_state/).
        client = await call.wire.settle_body(call.wire.body(orjson.dumps(body), body))
        response = HttpResponse(client, content_type="application/json")
    for name, value in headers.items():
        response[name] = value
    return response


async def _replay(call: Call, answer: CachedAnswer, wants_usage: bool) -> AsyncIterator[bytes]:
    wire = call.wire
    for event in replay_events(answer, call.request_id, include_usage=wants_usage):
        for out in wire.events(event):
            yield out
    for out in await wire.close():  # a stored Responses API response is kept before its last event
        yield out


async def _dry_run(
    call: Call, plan: RoutePlan, payload: JSON, *, embeddings: bool = False
) -> HttpResponse:
    answer = await quota_gate.dry_run(call.caller, plan, payload, embeddings=embeddings)
    if call.routing_notes:  # pins, residency, task category: why "deployments" are in that order
        answer["routing"] = "; ".join(call.routing_notes)
    call.entry.endpoint += ".dry_run"
    call.entry.status, call.entry.http_status = AuditStatus.SUCCESS, 200
    call.entry.response_body = answer
    call.entry.request_body = payload
    call.finish()
    if failure := await call.commit():
        return call.error_response(failure)
    response = HttpResponse(orjson.dumps(answer), content_type="application/json")
    response["x-request-id"] = call.request_id
    return response


def client_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The client's protocol headers an adapter may pass on (only Anthropic's does)."""
    return {name: value for name in CLIENT_HEADERS if (value := headers.get(name))}


def _chat_with(call: Call, headers: dict[str, str]) -> Any:
    async def chat(adapter: ProviderAdapter, target: Target, payload: JSON) -> Any:
        native = call.native_body(target)
        if native is not None and isinstance(adapter, NATIVE_ADAPTERS):
            return await adapter.chat(target, payload, client_headers=headers, native=native)
        return await adapter.chat(target, payload, client_headers=headers)

    return chat


async def _plain_chat(adapter: ProviderAdapter, target: Target, payload: JSON) -> Any:
    return await adapter.chat(target, payload)


async def _complete_chat(call: Call, plan: RoutePlan, payload: JSON) -> HttpResponse:
    async def retry(again: RoutePlan) -> Any:  # a reply that broke its schema: another try
        return await call.call_targets(again, payload, _plain_chat, per_attempt_s=plan.timeout_s)

    try:
        answered, target = await call.call_targets(
            plan,
            payload,
            _chat_with(call, client_headers(call.headers)),
            per_attempt_s=plan.timeout_s,
        )
        guarded = await guard_reply(
            call.guard, plan, payload, answered, target, note=call.note_findings, retry=retry
        )
    except UpstreamError as error:
        return await call.fail_upstream(error)
    except GatewayError as error:  # not recorded, so not forwarded
        return await call.reject(error)
    reply, target = guarded.reply, guarded.target
    if guarded.refusal is not None:  # a guardrail withheld the answer
        if guarded.paid:  # settled, but the record keeps no text the client did not get
            call.settle(
                usage=reply.usage,
                target=target,
                response=reply.parsed,
                status=AuditStatus.REJECTED,
                http_status=guarded.refusal.status,
                withheld=True,
                superseded=guarded.superseded,
            )
        return await call.reject(guarded.refusal)
    message = ((reply.parsed.get("choices") or [{}])[0] or {}).get("message") or {}
    call.entry.tool_calls = call.wire.tool_calls(message.get("tool_calls") or [])
    cost = call.settle(
        usage=reply.usage,
        target=target,
        response=reply.parsed,
        status=AuditStatus.SUCCESS,
        http_status=reply.status,
        superseded=guarded.superseded,
    )
    if reply is answered and reply.native is not None:
        body = reply.native  # the provider's own answer, untouched by any guardrail
    else:
        # Before the record: a translation that fails is on it, not a success the client missed.
        body = client_body(call.guard, call.wire.body(reply.body, reply.parsed))
    if failure := await call.commit():
        return call.error_response(failure)
    response_cache.store(call.runtime, call.cache, call.guard, call.entry, reply.parsed, cost)
    body = await call.wire.settle_body(body)  # a stored response is kept before it is sent
    response = HttpResponse(body, status=reply.status, content_type="application/json")
    for name, value in call.result_headers(target, cost).items():
        response[name] = value
    return response


class _StreamResponse(StreamingHttpResponse):
    """A relayed stream; closing it (Django does once it is sent, or not) runs `on_close`."""

    on_close: Callable[[], None] | None = None

    def close(self) -> None:
        try:
            if self.on_close is not None:
                self.on_close()
        finally:
            super().close()


@dataclass(slots=True)
class _PrimedStream:
    """A stream whose first event has arrived: until then, another deployment may be tried."""

    stream: ChatStream
    first: bytes


def _stream_opener(call: Call, wants_usage: bool, headers: dict[str, str]) -> Any:
    async def open_stream(adapter: ProviderAdapter, target: Target, payload: JSON) -> _PrimedStream:
        native = call.native_body(target)
        if native is not None and isinstance(adapter, NATIVE_ADAPTERS):
            # The provider's own events go to the client unless a guardrail must read them.
            stream = await adapter.chat_stream(
                target,
                payload,
                client_wants_usage=wants_usage,
                client_headers=headers,
                native=native,
                native_events=call.guard is None or not call.guard.policy.filters_responses,
            )
        else:
            stream = await adapter.chat_stream(
                target, payload, client_wants_usage=wants_usage, client_headers=headers
            )
        try:
            first = await anext(stream.events)
        except StopAsyncIteration:
            raise UpstreamError(
                "provider stream was empty", status=None, cause="stream_broken"
            ) from None
        return _PrimedStream(stream, first)

    return open_stream


async def _stream_chat(
    call: Call, plan: RoutePlan, payload: JSON, wants_usage: bool
) -> HttpResponse | StreamingHttpResponse:
    try:
        # Until its first event a stream can still fall over: that is what its deadline guards.
        primed, target = await call.call_targets(
            plan,
            payload,
            _stream_opener(call, wants_usage, client_headers(call.headers)),
            per_attempt_s=plan.first_token_timeout_s or plan.timeout_s,
            record_start=True,
        )
    except UpstreamError as error:
        return await call.fail_upstream(error)
    except GatewayError as error:  # not recorded, so not forwarded
        return await call.reject(error)
    call.entry.ttft_ms = round(call.elapsed_ms(), 3)
    call.entry.attempts = [attempt.as_json() for attempt in call.attempts]
    # The start record is durable before the first byte goes out: a crash mid-stream leaves an
    # unfinished record, never a missing one. Its insert ran while the provider was asked.
    if failure := await call.commit_start(target):
        await primed.stream.events.aclose()
        return call.error_response(failure)
    if call.client_left:  # nobody to relay to: the stream ends here, on its record
        _end_stream(call, primed, target, AuditStatus.FAILED, "client_disconnected")
        return HttpResponse(status=499)
    response = _StreamResponse(_relay(call, primed, target), content_type="text/event-stream")
    # The relay ends the stream on its record. If it never starts (the client left between
    # this answer and its first read), whoever sees that ends it: closing the response, the
    # cancelled `run_to_record`, or at the latest a timer.
    call.until_relayed(
        lambda: _end_stream(call, primed, target, AuditStatus.FAILED, "client_disconnected")
    )
    response.on_close = call.end_unrelayed_stream
    response["cache-control"] = "no-cache"
    response["x-accel-buffering"] = "no"
    for name, value in call.route_headers(target).items():
        response[name] = value
    return response


async def _relay(call: Call, primed: _PrimedStream, target: Target) -> AsyncIterator[bytes]:
    status, error_type, error_message = (
        AuditStatus.FAILED,
        "client_disconnected",
        "the client went away",
    )
    call.relayed()
    wire = call.wire
    native = primed.stream.native  # already in the client's format: relayed as it came
    received = primed.stream.received
    # Events that arrived together leave together: one write to the client, not one per event.
    # Nothing waits: what is held is sent as soon as the next event would need a network read.
    held: list[bytes] = []
    try:
        events = guard_stream(call.guard, primed.first, primed.stream, note=call.note_findings)
        async for event in events:
            held.extend(wire.native_events(event) if native else wire.events(event))
            if held and not received():
                yield b"".join(held)
                held.clear()
        # A stored response is kept before its last event.
        held.extend(await (wire.close_native() if native else wire.close()))
        if held:
            yield b"".join(held)
        status, error_type, error_message = AuditStatus.SUCCESS, "", ""
    except OutputBlocked as blocked:
        status, error_type, error_message = AuditStatus.REJECTED, blocked.refusal.code, str(blocked)
        yield b"".join(held) + wire.error_event(stream_error(call.request_id, blocked))
    except UpstreamError as error:
        status, error_type, error_message = AuditStatus.FAILED, error.cause, error.message
        yield b"".join(held) + wire.error_event(_stream_error(call, error))
    finally:
        _end_stream(call, primed, target, status, error_type, error_message)


def _end_stream(
    call: Call,
    primed: _PrimedStream,
    target: Target,
    status: str,
    error_type: str,
    error_message: str = "the client went away",
) -> None:
    """Settle a stream with what its tap saw and complete its record in the background."""
    tap = primed.stream.tap
    call.entry.tool_calls = call.wire.tool_calls(tap.assembled_tool_calls())
    call.entry.error_type, call.entry.error_message = error_type, error_message
    cost = call.settle(
        usage=tap.usage or _counted_usage(call, tap.assembled_response(), tap.runs_seen),
        target=target,
        response=tap.assembled_response(),
        status=status,
        http_status=200,
    )
    if status == AuditStatus.SUCCESS and not call.entry.usage_estimated:
        response = tap.assembled_response()
        response_cache.store(call.runtime, call.cache, call.guard, call.entry, response, cost)
    # Completed in the background: a client that goes away cancels the relay.
    call.runtime.spawn(_complete_record(call, primed))


def _counted_usage(call: Call, response: JSON, runs_seen: dict[str, int]) -> Usage:
    """A stream cut short has no reported usage: count what was sent (and the server tools seen
    running), and mark it counted."""
    call.entry.usage_estimated = True
    message = ((response.get("choices") or [{}])[0] or {}).get("message") or {}
    text = (message.get("content") or "") + "".join(
        (c.get("function") or {}).get("arguments") or "" for c in message.get("tool_calls") or ()
    )
    model = call.entry.upstream_model
    prompt = call.admitted.demand.prompt_tokens if call.admitted else 0
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=count_text_tokens(model, text).tokens,
        tool_runs=tuple(sorted(runs_seen.items())),
    )


async def _complete_record(call: Call, primed: _PrimedStream) -> None:
    await primed.stream.events.aclose()
    # The stream's ledger row is written with its completion, or not at all (None: later).
    recorded: bool | None = False
    try:
        await call.runtime.audit.complete(call.entry)
        call.runtime.journal.end(call.request_id)
        recorded = True
    except AuditWriteError:
        # The client has its stream; the database is down: the completion (and its ledger row)
        # is written once it is back, and the reservation held until then.
        def written() -> None:
            call.runtime.journal.end(call.request_id)
            call.release()

        await call.runtime.audit.defer_completion(call.entry, on_written=written)
        recorded = None
    finally:
        if recorded is not None:
            call.release(recorded=recorded)


def _stream_error(call: Call, error: UpstreamError) -> bytes:
    body = {
        "error": {
            "message": f"The provider's stream broke off ({public_reason(error)}); the answer is "
            f"incomplete. "
            f"Request id: {call.request_id}.",
            "type": "upstream_error",
            "param": None,
            "code": error.cause,
        }
    }
    return orjson.dumps(body)


async def _embed(adapter: ProviderAdapter, target: Target, payload: JSON) -> Any:
    return await adapter.embeddings(target, payload)


async def embeddings(request: HttpRequest, identity: KeyIdentity) -> HttpResponse:
    runtime = get_runtime()
    call = Call(runtime, request, identity, endpoint="embeddings")
    try:
        raw = parse_json_body(request)
        call.entry.model_requested = _model_named(raw)
        body = validate_embeddings(raw)
        call.attribute(raw)
        resolved, plan = await resolve_model(runtime, identity, body.model, call.routing_notes)
        call.entry.route_alias = resolved.route_alias
        if call.headers.get(DRY_RUN_HEADER):
            return await _dry_run(call, plan, forwarded(raw), embeddings=True)
        decision = await guard_embeddings(call.caller, resolved, plan, forwarded(raw))
        _note_guard(call, decision)
        if decision.refusal is not None:
            raise decision.refusal
        payload = decision.payload
    except GatewayError as error:
        return await call.reject(error)
    return await call.run_to_record(_embed_and_record(call, plan, payload))


async def _embed_and_record(call: Call, plan: RoutePlan, payload: JSON) -> HttpResponse:
    try:
        admitted = await quota_gate.admit(call.caller, plan, payload, embeddings=True)
    except GatewayError as error:
        return await call.reject(error)
    _note_admission(call, admitted)
    plan = admitted.plan
    try:
        reply, target = await call.call_targets(plan, payload, _embed)
    except UpstreamError as error:
        return await call.fail_upstream(error)
    except GatewayError as error:  # not recorded, so not forwarded
        return await call.reject(error)
    vectors = reply.parsed.get("data") or []
    summary = {
        "object": "list",
        "model": reply.parsed.get("model"),
        "usage": reply.parsed.get("usage"),
        "data": f"{len(vectors)} embedding(s), not stored",
    }
    cost = call.settle(
        usage=reply.usage,
        target=target,
        response=summary,
        status=AuditStatus.SUCCESS,
        http_status=reply.status,
    )
    if failure := await call.commit():
        return call.error_response(failure)
    response = HttpResponse(reply.body, status=reply.status, content_type="application/json")
    for name, value in call.result_headers(target, cost).items():
        response[name] = value
    return response


def _listable(identity: KeyIdentity, resolved: ResolvedModel) -> bool:
    if not identity.may_use(resolved.public_name, resolved.route_alias):
        return False
    return not identity.residency_region or any(
        t.region == identity.residency_region for t in resolved.targets
    )


async def list_models(identity: KeyIdentity) -> list[str]:
    """The exact names this key may use; pattern routes are not model ids, so not listed."""
    table = await get_runtime().routes.get()
    return sorted(name for name, resolved in table.models.items() if _listable(identity, resolved))


async def model_usable(identity: KeyIdentity, name: str) -> bool:
    """Whether `GET /v1/models/{name}` shows it: a listed name, or one a pattern route serves."""
    resolved = (await get_runtime().routes.get()).resolve(name)
    return resolved is not None and _listable(identity, resolved)
