"""Where the proxy meets the quotas: what a request demands, admission, settlement, dry run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway_site.redis_clients import async_client
from gateway_site.snapshot import Snapshot
from routing.core.errors import UpstreamError
from routing.core.strategy import RoutePlan, in_region
from routing.core.types import JSON, Target
from routing.errors import GatewayError
from tenants.quotas import approvals, tokens
from tenants.quotas.capacity import ProviderGate
from tenants.quotas.core.checks import ShareCheck
from tenants.quotas.core.memory import MemoryQuotaStore
from tenants.quotas.core.redis_store import RedisQuotaStore
from tenants.quotas.engine import Admission, Demand, QuotaEngine
from tenants.quotas.table import QuotaTable, load_quota_table

logger = logging.getLogger(__name__)
_ZERO = Decimal(0)

if TYPE_CHECKING:
    from audit.entries import AuditEntry
    from routing.caller import Caller, StepServices


@dataclass(frozen=True, slots=True)
class Admitted:
    """Limits and budgets let the call in: the plan to use, the reservation held until the
    call's record is written, and what the record says about it (`quota`)."""

    plan: RoutePlan
    admission: Admission
    demand: Demand
    record: JSON
    route_alias: str | None = None  # the cheaper route a cost ceiling downgraded the call to
    # The cost approval this request spent, if one let it through (given back if nothing was).
    approval: approvals.ApprovalDecision | None = None

    @property
    def headers(self) -> dict[str, str]:
        return self.admission.headers


@dataclass(frozen=True, slots=True)
class _Ceiling:
    plan: RoutePlan
    demand: Demand
    downgraded_from: str | None = None
    route_alias: str | None = None


def build_engine() -> QuotaEngine:
    table: Snapshot[QuotaTable] = Snapshot(load_quota_table, name="quota table")
    if settings.REDIS_URL:
        # A call slower than this counts as a store failure (each tenant's failure policy applies).
        timeout = settings.GATEWAY.quota_store_timeout_seconds
        connections = settings.GATEWAY.quota_store_max_connections
        # The pool never runs out: the store lets `connections` calls in at once and queues the
        # rest (a full pool would otherwise raise "Too many connections", read as an outage).
        # No retries in the client: redis-py's default (10, with backoff) turned one store
        # timeout into many, and a script retried after its answer was lost counts twice.
        client = async_client(
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            max_connections=connections,
        )
        store = RedisQuotaStore(client, max_in_flight=connections, wait_s=timeout)
        return QuotaEngine(store, table, store_name="redis")
    return QuotaEngine(MemoryQuotaStore(), table, store_name="memory")


def demand_for(
    caller: Caller, plan: RoutePlan, payload: JSON, *, embeddings: bool = False
) -> Demand:
    model = plan.targets[0].upstream_model if plan.targets else ""
    if embeddings:
        count = tokens.count_embedding_input_tokens(model, payload.get("input"))
        max_output: int | None = 0
    else:
        count = tokens.count_chat_prompt_tokens(model, payload)
        raw = payload.get("max_completion_tokens") or payload.get("max_tokens")
        max_output = int(raw) if isinstance(raw, int) and raw > 0 else None
    return Demand(
        fixed_cost_usd=max((_fees(t, caller.tool_uses) for t in plan.targets), default=_ZERO),
        tenant_id=caller.identity.tenant_id,
        team_id=caller.identity.team_id,
        key_id=caller.identity.quota_key_id,
        end_user=caller.end_user,
        agent=caller.agent,
        prompt_tokens=count.tokens,
        tokens_exact=count.exact,
        max_output_tokens=max_output,
        input_price_per_mtok=max(
            (t.input_price_per_mtok for t in plan.targets), default=Decimal(0)
        ),
        output_price_per_mtok=max(
            (t.output_price_per_mtok for t in plan.targets), default=Decimal(0)
        ),
    )


def _fees(target: Target, tool_uses: tuple[tuple[str, int], ...]) -> Decimal:
    """What a deployment charges a request beyond its tokens, at most: its fee per request,
    and each offered provider-run tool it prices, as many times as the request lets it run."""
    prices = dict(target.tool_call_prices)
    tools = sum((prices.get(tool, _ZERO) * runs for tool, runs in tool_uses), _ZERO)
    return target.request_price_usd + tools


async def admit(
    caller: Caller, plan: RoutePlan, payload: JSON, *, embeddings: bool = False
) -> Admitted:
    """Admit the call or raise its refusal (GatewayError); the plan it returns is a cheaper
    route's if the tenant's cost ceiling downgrades the call."""
    engine = caller.runtime.quotas
    demand = demand_for(caller, plan, payload, embeddings=embeddings)
    policy = await engine.policy(demand.tenant_id)
    ceiling = await _apply_ceiling(caller, plan, payload, demand, policy, embeddings)
    decision = await _preapproval(caller, ceiling.plan, ceiling.demand, policy, payload)
    try:
        admission = await engine.admit(ceiling.demand, caller.request_id)
    except GatewayError:
        if decision is not None:  # refused before any provider: the approval is not spent
            await give_back_approval(
                decision,
                tenant_id=ceiling.demand.tenant_id,
                request_id=caller.request_id,
                reason=approvals.REFUSED_BEFORE_ANY_PROVIDER,
            )
        raise
    approval = (
        {}
        if decision is None or decision.outcome == "not_needed"
        else {"approval": decision.record()}
    )
    note = {"downgraded_from": ceiling.downgraded_from} if ceiling.downgraded_from else {}
    return Admitted(
        ceiling.plan,
        admission,
        ceiling.demand,
        {**note, **approval, **admission.record},
        route_alias=ceiling.route_alias,
        approval=decision if decision is not None and decision.outcome == "approved" else None,
    )


async def give_back_approval(
    decision: approvals.ApprovalDecision, *, tenant_id: int, request_id: str, reason: str
) -> None:
    """The approval `request_id` spent, made good again; a failure is logged, never raised:
    the client still gets the answer it was getting (a refusal, a provider's error), not a 500."""
    try:
        await approvals.approval_give_back(
            decision, tenant_id=tenant_id, request_id=request_id, reason=reason
        )
    except Exception:
        logger.exception("approval %s could not be given back", decision.approval_id)


async def _preapproval(
    caller: Caller, plan: RoutePlan, demand: Demand, policy: Any, payload: JSON
) -> approvals.ApprovalDecision | None:
    """Hold a request predicted to cost more than its pre-approval threshold (approvals.py), or
    let an approved one through (raises the refusal); None when there is nothing to check."""
    engine = caller.runtime.quotas
    rule = (await engine.table.get()).approval(demand.tenant_id, demand.team_id, demand.key_id)
    header = caller.headers.get(approvals.APPROVAL_HEADER) or ""
    if rule is None and not header:
        return None  # the common case: nothing to predict against, nothing to check
    identity = caller.identity
    priced = approvals.PricedRequest(
        tenant_id=demand.tenant_id,
        team_id=demand.team_id,
        key_id=identity.key_id,  # an approval is the calling key's own, rotated or not
        key_label=f"key {identity.key_name} ({identity.key_prefix}…)",
        request_id=caller.request_id,
        end_user=demand.end_user,
        model=plan.alias,
        body=orjson.dumps(payload),
        approval_header=header,
        predicted_usd=engine.reservation_usd(demand, policy),
    )
    decision = await approvals.cost_approval_check(priced, rule=rule)
    if decision.error is not None:
        raise decision.error
    return decision


async def admit_cached(caller: Caller) -> Admission:
    """A cached answer is a served request: it counts against requests-per-minute limits (or
    raises their refusal, a GatewayError), but spends no tokens, no budget, no concurrency
    lease and no provider capacity, so there is nothing to settle afterwards."""
    identity = caller.identity
    demand = Demand(
        tenant_id=identity.tenant_id,
        team_id=identity.team_id,
        key_id=identity.quota_key_id,
        end_user=caller.end_user,
        prompt_tokens=0,
        tokens_exact=True,
        max_output_tokens=0,
        input_price_per_mtok=Decimal(0),
        output_price_per_mtok=Decimal(0),
    )
    return await caller.runtime.quotas.admit(demand, caller.request_id, requests_only=True)


async def _apply_ceiling(
    caller: Caller, plan: RoutePlan, payload: JSON, demand: Demand, policy: Any, embeddings: bool
) -> _Ceiling:
    ceiling = policy.max_request_cost_usd
    if ceiling is None:
        return _Ceiling(plan, demand)
    engine = caller.runtime.quotas
    worst = engine.reservation_usd(demand, policy)
    if worst <= ceiling:
        return _Ceiling(plan, demand)
    if policy.downgrade_route:
        found = await _downgrade(caller, plan, policy.downgrade_route)
        if found is not None:
            cheaper, route_alias = found
            downgraded = demand_for(caller, cheaper, payload, embeddings=embeddings)
            if engine.reservation_usd(downgraded, policy) <= ceiling:
                return _Ceiling(cheaper, downgraded, plan.alias, route_alias)
    raise GatewayError(
        400,
        f"This request could cost up to ${worst:.4f}, above your organisation's per-request "
        f"ceiling of ${ceiling:.4f}. Lower max_tokens or shorten the prompt.",
        code="cost_ceiling_exceeded",
        param="max_tokens",
    )


async def _downgrade(caller: Caller, plan: RoutePlan, alias: str) -> tuple[RoutePlan, str] | None:
    """The downgrade route as this caller may be served by it, as the model asked is: none for a
    key that may not use it or whose model is pinned to a version (never another model), and
    only its deployments in the tenant's residency region."""
    identity = caller.identity
    if identity.pin(plan.alias):
        return None
    cheaper = (await caller.runtime.routes.get()).resolve(alias)
    if cheaper is None or not identity.may_use(alias, cheaper.route_alias):
        return None
    found = cheaper.plan
    if identity.residency_region:
        found = in_region(found, identity.residency_region)
    return (found, cheaper.route_alias) if found.targets else None


async def dry_run(
    caller: Caller, plan: RoutePlan, payload: JSON, *, embeddings: bool = False
) -> JSON:
    """Which limit or budget would stop this request, and what it could cost; counts nothing."""
    engine = caller.runtime.quotas
    demand = demand_for(caller, plan, payload, embeddings=embeddings)
    policy = await engine.policy(demand.tenant_id)
    stop: JSON | None = None
    try:
        ceiling = await _apply_ceiling(caller, plan, payload, demand, policy, embeddings)
        plan, demand = ceiling.plan, ceiling.demand
        admission = await engine.admit(demand, caller.request_id, dry=True)
    except GatewayError as error:
        return _dry_answer(
            plan, demand, engine.reservation_usd(demand, policy), None, error.body()["error"]
        )
    verdict = admission.verdict
    if verdict is not None and not verdict.allowed and verdict.failed is not None:
        meter = admission.meters[verdict.failed]
        stop = {"meter": meter.kind, "scope": meter.label, "limit": meter.limit}
    return _dry_answer(plan, demand, engine.reservation_usd(demand, policy), admission, stop)


def _dry_answer(
    plan: RoutePlan, demand: Demand, worst: Decimal, admission: Admission | None, stop: Any
) -> JSON:
    return {
        "object": "gateway.dry_run",
        "allowed": stop is None,
        "would_stop": stop,
        "route": plan.alias,
        "deployments": [t.deployment_name for t in plan.targets],
        "prompt_tokens": demand.prompt_tokens,
        "prompt_tokens_exact": demand.tokens_exact,
        "max_cost_usd": f"{worst:f}",
        "checks": (admission.record.get("checks", []) if admission else []),
    }


async def provider_room(
    engine: QuotaEngine, admitted: Admitted | None, target: Target
) -> UpstreamError | None:
    """Before an attempt: None if the provider account has room for this caller, else why not."""
    if target.capacity_rpm is None and target.capacity_tpm is None:
        return None
    if admitted is None:
        return None
    admission, demand = admitted.admission, admitted.demand
    policy = await engine.policy(demand.tenant_id)
    gate = ProviderGate(engine)
    verdict = await gate.admit(admission, demand, target, tenant_policy=policy)
    if verdict is None:
        return None
    assert verdict.failed is not None
    check = gate.checks(target, demand, admission.token_charge)[verdict.failed]
    wait = verdict.retry_after_s
    if isinstance(check, ShareCheck):
        why = (
            f"You have used {check.label} for now: it is divided equally between the tenants "
            "using it, each tenant's between its teams, each team's between its end users "
            "(or keys), counting those who asked in the last minute."
        )
    else:
        why = (
            f"No capacity left on {check.label} right now (the gateway keeps each provider "
            "account within its configured rate)."
        )
    return UpstreamError(
        why + (f" Retry in {wait} s." if wait else ""),
        status=429,
        cause="provider_capacity",
        retry_after=float(wait) if wait else None,
    )


def settle(
    runtime: StepServices, admitted: Admitted, entry: AuditEntry, *, recorded: bool = True
) -> None:
    """After the record is written: give back the unused reservation, in the background.

    A spend is charged to the budget counters only with its ledger row, which is written in the
    record's statement: a record that could not be written (`recorded=False`) charges nothing,
    so the counters and the ledger they are reloaded from always agree. Tokens are counted
    either way: rate limits measure the provider's load, not the ledger.
    """
    total = entry.prompt_tokens + entry.completion_tokens
    cost = entry.cost_usd if recorded else Decimal(0)
    runtime.spawn(runtime.quotas.settle(admitted.admission, total_tokens=total, cost_usd=cost))
