"""The response cache on the proxy's hot path: two steps of routing/pipeline.py.

`lookup` runs after the request guardrails and before admission: on a hit the pipeline answers
from the cache (no provider, cost 0, its record naming the request that paid for it; `replay`
gives the answer in the client's shape). `store` runs after a complete, successful answer was
committed, in the background.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings

from audit.entries import AuditEntry
from routing.cache.core.answers import CachedAnswer, complete
from routing.cache.core.keys import RequestKeys, one_word_swapped, request_keys
from routing.cache.core.policy import CachePolicy, Directives, parse_cache_control
from routing.cache.engine import ResponseCache
from routing.caller import Caller, StepServices
from routing.core.strategy import RoutePlan
from routing.core.types import JSON
from routing.table import ResolvedModel

if TYPE_CHECKING:
    from routing.cache.core.embedder import Vector
    from routing.guardrails.proxy import RequestGuard
    from routing.prompts.proxy import PromptRef

logger = logging.getLogger(__name__)

HIT, MISS, BYPASS = "hit", "miss", "bypass"


def answer_checks(guard: RequestGuard | None) -> str:
    """A fingerprint of what this caller's answers are checked for, "" for nothing: its output
    rules, PII in answers, the schema an answer must follow. Their contents, not their names:
    an edited rule does not serve answers the edit would refuse."""
    if guard is None:
        return ""
    policy = guard.policy
    pii = sorted(policy.pii.items()) if policy.pii_in_responses else []
    if not (policy.output_rules or pii or guard.schema is not None):
        return ""
    checks = (policy.output_rules, pii, policy.pii_min_score, guard.schema)
    return hashlib.sha256(repr(checks).encode()).hexdigest()[:16]


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


@dataclass(frozen=True, slots=True)
class CacheLookup:
    """What the cache said: its state for the record and headers (None: the route does not
    cache), and the answer to serve on a hit."""

    state: CacheState | None = None
    answer: CachedAnswer | None = None


def _betas(headers: Mapping[str, str]) -> str:
    """The provider features the client turned on (`anthropic-beta`, passed on to Anthropic's
    API), in one order: they change what the provider answers."""
    value = headers.get("anthropic-beta") or ""
    return ",".join(sorted({beta.strip() for beta in value.split(",") if beta.strip()}))


async def lookup(
    caller: Caller,
    resolved: ResolvedModel,
    plan: RoutePlan,
    payload: JSON,
    *,
    guard: RequestGuard | None,
    prompt: PromptRef,
) -> CacheLookup:
    """The cached answer for this request, if its route caches and one may serve it."""
    policy = resolved.cache
    if policy is None:
        return CacheLookup()  # the route does not cache: nothing said, nothing recorded
    if guard is not None and guard.masker.restores:
        # Placeholders stand for this caller's own data: another answer must not fill them.
        return CacheLookup(CacheState(BYPASS, reason="masked by a guardrail"))
    if payload.get("n") not in (None, 1) or payload.get("logprobs"):
        # A stream's record keeps the first choice and no log probabilities: nothing to replay.
        return CacheLookup(CacheState(BYPASS, reason="n > 1 or logprobs"))
    directives = parse_cache_control(caller.headers.get("cache-control", ""))
    identity = caller.identity
    # An end-user scope with no end user named is the key's: never one scope for all of them.
    user = f"user:{caller.end_user}" if caller.end_user else f"key:{identity.key_id}"
    scope = {"team": f"team:{identity.team_id}", "user": user}.get(policy.scope, "")
    if betas := _betas(caller.headers):
        scope += f"|betas:{betas}"
    if checks := answer_checks(guard):
        # A hit is not checked again: an answer is shared only by callers whose answers face
        # the same checks (output rules, PII in answers, a schema to follow).
        scope += f"|answers:{checks}"
    keys = request_keys(
        tenant_id=identity.tenant_id,
        scope=scope,
        route=resolved.route_alias,
        prompt_name=prompt.name if prompt.version is not None else "",
        prompt_version=prompt.version,
        deployments=tuple(t.deployment_name for t in plan.targets),
        payload=payload,
    )
    state = CacheState(MISS, policy=policy, keys=keys, directives=directives)
    if directives.no_cache:
        state.status, state.reason = BYPASS, "no-cache"
        return CacheLookup(state)
    began = time.perf_counter()
    try:
        return CacheLookup(state, await _find(caller.runtime.cache, state, keys, directives))
    except Exception as error:
        # A cache that cannot be read is a miss: the provider still answers.
        logger.warning("response cache: lookup failed for %s: %r", caller.request_id, error)
        return CacheLookup(state)
    finally:
        state.lookup_ms = (time.perf_counter() - began) * 1000


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


def store(
    runtime: StepServices,
    state: CacheState | None,
    guard: RequestGuard | None,
    entry: AuditEntry,
    response: JSON,
    cost: Decimal,
) -> None:
    """Keep a complete answer for the next requests that may have it (in the background)."""
    if state is None or not state.storable or not complete(response):
        return
    if guard is not None and guard.masker.restores:
        return
    answer = CachedAnswer(
        response=response,
        request_id=entry.request_id,
        deployment=entry.deployment_name,
        provider=entry.provider_name,
        prompt=f"{entry.prompt_name}@{entry.prompt_version}" if entry.prompt_version else "",
        cost_usd=f"{cost:f}",
    )
    runtime.spawn(_keep(runtime, state, entry, answer))


async def _keep(
    runtime: StepServices, state: CacheState, entry: AuditEntry, answer: CachedAnswer
) -> None:
    assert state.keys is not None and state.policy is not None
    cache, keys, policy = runtime.cache, state.keys, state.policy
    try:
        await cache.store.put(keys.exact, answer.to_bytes(), policy.ttl_s)
        if policy.semantic and keys.partition and state.vector is None:
            # Not looked up by meaning (no-cache), but findable by meaning from now on.
            embedder = await cache.semantic()
            state.vector = embedder.embed(keys.text) if embedder is not None else None
        if policy.semantic and keys.partition and state.vector is not None:
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
