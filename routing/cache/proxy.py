"""The response cache on the proxy's hot path: two calls from routing/pipeline.py.

`lookup` runs after the request guardrails and before admission: a hit is answered from the
cache (counted against request-rate limits only: no tokens, no budget, no provider; cost 0,
its record naming the request that paid for it). `store`
runs after a complete, successful answer was committed, in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

import orjson
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse

from audit.models import AuditStatus
from routing.cache.core.answers import CachedAnswer, complete, replay_body, replay_events
from routing.cache.core.embedder import Vector
from routing.cache.core.keys import RequestKeys, one_word_swapped, request_keys
from routing.cache.core.policy import CachePolicy, Directives, parse_cache_control
from routing.cache.engine import ResponseCache
from routing.call import Call
from routing.core.strategy import RoutePlan
from routing.core.types import JSON
from routing.table import ResolvedModel
from tenants.quotas import gate as quota_gate

logger = logging.getLogger(__name__)

HIT, MISS, BYPASS = "hit", "miss", "bypass"
STATUS_HEADER = "x-gateway-cache"


@dataclass(slots=True)
class CacheState:
    """What the cache did for one request: its header and the record's `routing.cache`."""

    status: str
    reason: str = ""  # why it was bypassed
    policy: CachePolicy | None = None
    keys: RequestKeys | None = None
    directives: Directives = field(default_factory=Directives)
    vector: Vector | None = None
    kind: str = ""  # on a hit: "exact" or "semantic"
    similarity: float | None = None
    source: CachedAnswer | None = None
    lookup_ms: float = 0.0

    @property
    def storable(self) -> bool:
        return self.keys is not None and self.status != HIT and not self.directives.no_store

    def note(self) -> JSON:
        note: JSON = {"status": self.status}
        if self.reason:
            note["reason"] = self.reason
        if self.source is not None:
            note |= {
                "kind": self.kind,
                "source_request_id": self.source.request_id,
                "deployment": self.source.deployment,
                "prompt": self.source.prompt,
                "saved_usd": self.source.cost_usd,
            }
            if self.similarity is not None:
                note["similarity"] = round(self.similarity, 4)
        return note

    def headers(self) -> dict[str, str]:
        headers = {STATUS_HEADER: self.status}
        if self.source is not None:
            headers["x-gateway-cache-match"] = self.kind
            headers["x-gateway-cache-source"] = self.source.request_id
            if self.similarity is not None:
                headers["x-gateway-cache-similarity"] = f"{self.similarity:.4f}"
        return headers


async def lookup(
    call: Call, resolved: ResolvedModel, plan: RoutePlan, payload: JSON
) -> CachedAnswer | None:
    """The cached answer for this request, if its route caches and one may serve it."""
    policy = resolved.cache
    if policy is None:
        return None  # the route does not cache: nothing said, nothing recorded
    if call.guard is not None and call.guard.masker.restores:
        # Placeholders stand for this caller's own data: another answer must not fill them.
        call.cache = CacheState(BYPASS, reason="masked by a guardrail")
        return None
    if payload.get("n") not in (None, 1) or payload.get("logprobs"):
        # A stream's record keeps the first choice and no log probabilities: nothing to replay.
        call.cache = CacheState(BYPASS, reason="n > 1 or logprobs")
        return None
    directives = parse_cache_control(call.request.headers.get("cache-control", ""))
    entry = call.entry
    scope = {"team": f"team:{entry.team_id}", "user": f"user:{entry.end_user}"}.get(
        policy.scope, ""
    )
    keys = request_keys(
        tenant_id=entry.tenant_id,
        scope=scope,
        route=resolved.route_alias,
        prompt_name=entry.prompt_name if entry.prompt_version is not None else "",
        prompt_version=entry.prompt_version,
        deployments=tuple(t.deployment_name for t in plan.targets),
        payload=payload,
    )
    state = call.cache = CacheState(MISS, policy=policy, keys=keys, directives=directives)
    if directives.no_cache:
        state.status, state.reason = BYPASS, "no-cache"
        return None
    began = time.perf_counter()
    try:
        answer = await _find(call.runtime.cache, state, keys, directives)
    except Exception as error:
        # A cache that cannot be read is a miss: the provider still answers.
        logger.warning("response cache: lookup failed for %s: %r", call.request_id, error)
        return None
    finally:
        state.lookup_ms = (time.perf_counter() - began) * 1000
    if answer is not None:
        call.entry.request_body = payload  # what would have gone to a provider
        # A served request all the same: it counts against request-rate limits (a refusal
        # raises here), though it spends no tokens, budget or provider capacity.
        await quota_gate.admit_cached(call)
    return answer


async def _find(
    cache: ResponseCache, state: CacheState, keys: RequestKeys, directives: Directives
) -> CachedAnswer | None:
    answer = await _read(cache, keys.exact, directives)
    if answer is not None:
        return _hit(state, answer, "exact", None)
    assert state.policy is not None
    if not state.policy.semantic or not keys.partition:
        return None
    embedder = await cache.semantic()
    if embedder is None:
        return None
    state.vector = embedder.embed(keys.text)
    neighbour = cache.index.nearest(
        keys.partition,
        state.vector,
        state.policy.similarity,
        refuse=lambda terms: one_word_swapped(keys.terms, terms),
    )
    if neighbour is None:
        return None
    answer = await _read(cache, neighbour.key, directives)
    if answer is None:
        cache.index.forget(neighbour.key)
        return None
    return _hit(state, answer, "semantic", neighbour.similarity)


async def _read(cache: ResponseCache, key: str, directives: Directives) -> CachedAnswer | None:
    async with asyncio.timeout(settings.GATEWAY_CACHE_TIMEOUT_SECONDS):
        raw = await cache.store.get(key)
    answer = CachedAnswer.from_bytes(raw) if raw is not None else None
    if answer is None:
        return None
    if directives.max_age_s is not None and answer.age_s() > directives.max_age_s:
        return None
    return answer


def _hit(
    state: CacheState, answer: CachedAnswer, kind: str, similarity: float | None
) -> CachedAnswer:
    state.status, state.kind, state.similarity, state.source = HIT, kind, similarity, answer
    return answer


async def serve(
    call: Call, answer: CachedAnswer, *, stream: bool, wants_usage: bool
) -> HttpResponse | StreamingHttpResponse:
    """Answer from the cache: recorded (cost 0, the source named) before the client sees it."""
    body = replay_body(answer, call.request_id)
    message = ((body.get("choices") or [{}])[0] or {}).get("message") or {}
    entry = call.entry
    entry.routing = {
        "category": call.task_category or None,
        "cache": call.cache.note() if call.cache else {},
    }
    entry.tool_calls = message.get("tool_calls") or []
    entry.upstream_model = str(body.get("model") or "")
    entry.status, entry.http_status = AuditStatus.SUCCESS, 200
    entry.response_body = body
    entry.ttft_ms = round(call.elapsed_ms(), 3) if stream else None
    call._finish()
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
        events = _events(call, answer, wants_usage)
        response = StreamingHttpResponse(events, content_type="text/event-stream")
        response["cache-control"] = "no-cache"
        response["x-accel-buffering"] = "no"
    else:
        # A stored Responses API response is kept before it is sent (routing/responses_state/).
        client = await call.wire.settle_body(call.wire.body(orjson.dumps(body), body))
        response = HttpResponse(client, content_type="application/json")
    for name, value in headers.items():
        response[name] = value
    return response


async def _events(call: Call, answer: CachedAnswer, wants_usage: bool) -> AsyncIterator[bytes]:
    wire = call.wire
    for event in replay_events(answer, call.request_id, include_usage=wants_usage):
        for out in wire.events(event):
            yield out
    for out in await wire.close():  # a stored Responses API response is kept before its last event
        yield out


def store(call: Call, response: JSON, cost: Decimal) -> None:
    """Keep a complete answer for the next requests that may have it (in the background)."""
    state = call.cache
    if state is None or not state.storable or not complete(response):
        return
    if call.guard is not None and call.guard.masker.restores:
        return
    entry = call.entry
    answer = CachedAnswer(
        response=response,
        request_id=entry.request_id,
        deployment=entry.deployment_name,
        provider=entry.provider_name,
        prompt=f"{entry.prompt_name}@{entry.prompt_version}" if entry.prompt_version else "",
        cost_usd=f"{cost:f}",
    )
    call.runtime.spawn(_keep(call, state, answer))


async def _keep(call: Call, state: CacheState, answer: CachedAnswer) -> None:
    assert state.keys is not None and state.policy is not None
    cache, keys, policy = call.runtime.cache, state.keys, state.policy
    try:
        await cache.store.put(keys.exact, answer.to_bytes(), policy.ttl_s)
        if policy.semantic and keys.partition and state.vector is None:
            # Not looked up by meaning (no-cache), but findable by meaning from now on.
            embedder = await cache.semantic()
            state.vector = embedder.embed(keys.text) if embedder is not None else None
        if policy.semantic and keys.partition and state.vector is not None:
            entry = call.entry
            await cache.remember(
                tenant_id=entry.tenant_id,
                route_alias=entry.route_alias,
                partition=keys.partition,
                key=keys.exact,
                vector=state.vector,
                terms=keys.terms,
                deployment=answer.deployment,
                prompt_name=entry.prompt_name if entry.prompt_version is not None else "",
                prompt_version=entry.prompt_version,
                request_id=answer.request_id,
                ttl_s=policy.ttl_s,
            )
    except Exception as error:
        logger.warning(
            "response cache: could not keep the answer of %s: %r", answer.request_id, error
        )
