"""A tenant's rate limits, budgets and quota policy, through the quotas services (tenants/quotas/services.py).

A limit or budget is identified by whom it applies to: setting one for a scope that already has
one replaces it, as the YAML does.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Router, Status
from ninja.pagination import paginate

from gateway_site.api.common import one_or_404, scope_of, tenant_or_404, unused_target_refuse
from gateway_site.api.errors import invalid
from tenants import selectors as tenant_selectors
from tenants.models import ApiKey, Team, Tenant
from tenants.quotas import selectors as quota_selectors
from tenants.quotas import services
from tenants.quotas.api_schemas import (
    BudgetIn,
    BudgetOut,
    LimitIn,
    LimitOut,
    QuotaPolicyIn,
    QuotaPolicyOut,
)
from tenants.quotas.models import Budget, QuotaPolicy, RateLimit

router = Router(tags=["limits and budgets"])

_RULE_FIELDS = {"scope", "team", "key_id", "end_user", "agent"}


def _whom(tenant: Tenant, body: LimitIn | BudgetIn) -> dict[str, object]:
    """The scope of a rule, with the team or key looked up inside this tenant only."""
    unused_target_refuse(body.scope, body)
    team: Team | None = None
    key: ApiKey | None = None
    if body.scope == "team":
        team = tenant_selectors.teams_of_tenant(tenant=tenant).filter(slug=body.team or "").first()
        if team is None:
            raise invalid("team", f"tenant '{tenant.slug}' has no team '{body.team}'")
    if body.scope == "key":
        key = tenant_selectors.key_of_tenant(tenant=tenant, key_id=body.key_id or 0)
        if key is None:
            raise invalid("key_id", f"tenant '{tenant.slug}' has no key {body.key_id}")
    if body.scope == "user" and not body.end_user:
        raise invalid("end_user", "an end-user rule needs an end user id, or '*' for each")
    return {
        "tenant": tenant,
        "scope": body.scope,
        "team": team,
        "api_key": key,
        "end_user": body.end_user,
    }


@router.get("/tenants/{slug}/limits", response=list[LimitOut], summary="List rate limits")
@paginate
def limit_list(request: HttpRequest, slug: str) -> QuerySet[RateLimit]:
    tenant = tenant_or_404(request, slug)
    return quota_selectors.rate_limits_for_tenant(tenant_id=tenant.pk).order_by("id")


@router.post(
    "/tenants/{slug}/limits",
    response=LimitOut,
    summary="Set the rate limit of a scope (replaces the one it had)",
)
def limit_set(request: HttpRequest, slug: str, payload: LimitIn) -> RateLimit:
    tenant = tenant_or_404(request, slug)
    if payload.scope == "agent" and not payload.agent:
        raise invalid("agent", "an agent limit needs an agent name, or '*' for each")
    return services.rate_limit_set(
        **_whom(tenant, payload),  # type: ignore[arg-type]
        agent=payload.agent if payload.scope == "agent" else "",
        **payload.model_dump(exclude=_RULE_FIELDS),
        actor=scope_of(request).actor,
    )


@router.delete(
    "/tenants/{slug}/limits/{limit_id}", response={204: None}, summary="Remove a rate limit"
)
def limit_delete(request: HttpRequest, slug: str, limit_id: int) -> Status[None]:
    tenant = tenant_or_404(request, slug)
    limits = quota_selectors.rate_limit_of_tenant(tenant_id=tenant.pk, limit_id=limit_id)
    limit = one_or_404(limits, f"Rate limit {limit_id} of tenant '{slug}'")
    services.rule_remove(rule=limit, actor=scope_of(request).actor)
    return Status(204, None)


@router.get("/tenants/{slug}/budgets", response=list[BudgetOut], summary="List budgets")
@paginate
def budget_list(request: HttpRequest, slug: str) -> QuerySet[Budget]:
    tenant = tenant_or_404(request, slug)
    return quota_selectors.budgets_for_tenant(tenant_id=tenant.pk).order_by("id")


@router.post(
    "/tenants/{slug}/budgets",
    response=BudgetOut,
    summary="Set the budget of a scope and period (replaces the one it had)",
)
def budget_set(request: HttpRequest, slug: str, payload: BudgetIn) -> Budget:
    tenant = tenant_or_404(request, slug)
    return services.budget_set(
        **_whom(tenant, payload),  # type: ignore[arg-type]
        **payload.model_dump(exclude=_RULE_FIELDS),
        actor=scope_of(request).actor,
    )


@router.delete(
    "/tenants/{slug}/budgets/{budget_id}", response={204: None}, summary="Remove a budget"
)
def budget_delete(request: HttpRequest, slug: str, budget_id: int) -> Status[None]:
    tenant = tenant_or_404(request, slug)
    budgets = quota_selectors.budget_of_tenant(tenant_id=tenant.pk, budget_id=budget_id)
    budget = one_or_404(budgets, f"Budget {budget_id} of tenant '{slug}'")
    services.rule_remove(rule=budget, actor=scope_of(request).actor)
    return Status(204, None)


@router.get(
    "/tenants/{slug}/quota-policy",
    response=QuotaPolicyOut,
    summary="What happens when the counters are unreachable, and the per-request cost ceiling",
)
def quota_policy_get(request: HttpRequest, slug: str) -> QuotaPolicy:
    tenant = tenant_or_404(request, slug)
    return quota_selectors.quota_policy_of(tenant=tenant)


@router.put("/tenants/{slug}/quota-policy", response=QuotaPolicyOut, summary="Set the quota policy")
def quota_policy_put(request: HttpRequest, slug: str, payload: QuotaPolicyIn) -> QuotaPolicy:
    tenant = tenant_or_404(request, slug)
    return services.quota_policy_set(
        tenant=tenant, **payload.model_dump(), actor=scope_of(request).actor
    )
