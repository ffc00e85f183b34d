"""Cost pre-approval in the management API: the rules (tenant admins) and the held requests, which
budget owners (finance and tenant-admin keys) approve or refuse (tenants/quotas/approvals.py)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import ConfigDict

from gateway_site.api.auth import api_roles
from gateway_site.api.common import one_or_404, scope_of, tenant_or_404, unused_target_refuse
from gateway_site.api.errors import conflict, invalid
from gateway_site.api.schemas import BodyOut
from gateway_site.bounds import BIGINT_MAX, StorableInput
from tenants import selectors as tenant_selectors
from tenants.quotas import approvals
from tenants.quotas.models import ApprovalRule, ApprovalStatus, CostApproval

router = Router(tags=["cost pre-approval"])
OWNERS = ("finance", "tenant_admin")


class ApprovalRuleIn(Schema, StorableInput):
    model_config = ConfigDict(extra="forbid")

    scope: Literal["tenant", "team", "key"]
    team: str | None = Field(default=None, max_length=64, description="For scope 'team'")
    key_id: int | None = Field(default=None, ge=1, le=BIGINT_MAX, description="For scope 'key'")
    threshold_usd: Decimal = Field(ge=0, max_digits=12, decimal_places=4)
    shadow: bool = Field(default=False, description="Record what would be held; hold nothing")


class ApprovalRuleOut(BodyOut):
    id: int
    scope: str
    team: str | None = Field(default=None, alias="team.slug")
    key_id: int | None = Field(default=None, alias="api_key_id")
    threshold_usd: Decimal
    shadow: bool


class ApprovalOut(BodyOut):
    id: str = Field(alias="public_id")
    status: str
    team: str = Field(alias="team.slug")
    key: str = Field(alias="api_key.name")
    key_id: int = Field(alias="api_key_id")
    model: str
    end_user: str
    predicted_cost_usd: Decimal
    threshold_usd: Decimal
    rule: str = Field(alias="rule_label")
    held_request_id: str
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    decided_by: str
    decision_note: str
    used_at: datetime | None
    used_request_id: str


class DecisionIn(Schema, StorableInput):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=500)


@router.get(
    "/tenants/{slug}/approval-rules",
    response=list[ApprovalRuleOut],
    summary="List cost pre-approval rules",
)
@paginate
def rule_list(request: HttpRequest, slug: str) -> QuerySet[ApprovalRule]:
    tenant = tenant_or_404(request, slug)
    return approvals.approval_rules_of(tenant_id=tenant.pk).order_by("id")


@router.post(
    "/tenants/{slug}/approval-rules",
    response={201: ApprovalRuleOut},
    summary="Set the cost pre-approval threshold of a tenant, team or key (replaces its rule)",
)
def rule_set(request: HttpRequest, slug: str, payload: ApprovalRuleIn) -> Status[ApprovalRule]:
    tenant = tenant_or_404(request, slug)
    unused_target_refuse(payload.scope, payload)
    team = key = None
    if payload.scope == "team":
        team = tenant_selectors.team_named(tenant=tenant, slug=payload.team or "")
        if team is None:
            raise invalid("team", f"tenant '{tenant.slug}' has no team '{payload.team}'")
    if payload.scope == "key":
        key = tenant_selectors.key_of_tenant(tenant=tenant, key_id=payload.key_id or 0)
        if key is None:
            raise invalid("key_id", f"tenant '{tenant.slug}' has no key {payload.key_id}")
    rule = approvals.approval_rule_set(
        tenant=tenant,
        scope=payload.scope,
        team=team,
        api_key=key,
        threshold_usd=payload.threshold_usd,
        shadow=payload.shadow,
        actor=scope_of(request).actor,
    )
    return Status(201, rule)


@router.delete(
    "/tenants/{slug}/approval-rules/{approval_rule_id}",
    response={204: None},
    summary="Remove a cost pre-approval rule",
)
def rule_delete(request: HttpRequest, slug: str, approval_rule_id: int) -> Status[None]:
    tenant = tenant_or_404(request, slug)
    rule = one_or_404(
        approvals.approval_rules_of(tenant_id=tenant.pk).filter(pk=approval_rule_id),
        f"Rule {approval_rule_id}",
    )
    approvals.approval_rule_remove(rule=rule, actor=scope_of(request).actor)
    return Status(204, None)


@router.get(
    "/tenants/{slug}/cost-approvals",
    response=list[ApprovalOut],
    summary="Held requests and their decisions, newest first (?status=pending)",
)
@api_roles(*OWNERS)
@paginate
def approval_list(
    request: HttpRequest,
    slug: str,
    status: str | None = None,  # a builtin: @paginate resolves annotations outside this module
) -> QuerySet[CostApproval]:
    tenant = tenant_or_404(request, slug)
    if status is not None and status not in ApprovalStatus.values:
        raise invalid("status", f"one of {', '.join(ApprovalStatus.values)}")
    if status == ApprovalStatus.PENDING:
        return approvals.approvals_pending(tenant_id=tenant.pk)
    return approvals.approvals_of(tenant_id=tenant.pk, status=status)


def _decide(
    request: HttpRequest, slug: str, approval_id: str, approve: bool, note: str
) -> CostApproval:
    tenant = tenant_or_404(request, slug)
    found = one_or_404(
        approvals.approvals_of(tenant_id=tenant.pk).filter(public_id=approval_id[:40]),
        f"Approval '{approval_id[:40]}'",
    )
    try:
        return approvals.cost_approval_decide(
            approval=found, approve=approve, actor=scope_of(request).actor, note=note
        )
    except approvals.ApprovalError as exc:
        raise conflict(str(exc)) from None


@router.post(
    "/tenants/{slug}/cost-approvals/{approval_id}/approve",
    response=ApprovalOut,
    summary="Approve a held request: its client's retry goes through once",
)
@api_roles(*OWNERS)
def approval_approve(
    request: HttpRequest, slug: str, approval_id: str, payload: DecisionIn
) -> CostApproval:
    return _decide(request, slug, approval_id, True, payload.note)


@router.post(
    "/tenants/{slug}/cost-approvals/{approval_id}/refuse",
    response=ApprovalOut,
    summary="Refuse a held request",
)
@api_roles(*OWNERS)
def approval_refuse(
    request: HttpRequest, slug: str, approval_id: str, payload: DecisionIn
) -> CostApproval:
    return _decide(request, slug, approval_id, False, payload.note)
