"""Cost pre-approval: a request whose predicted cost is above its scope's threshold is held until a
budget owner approves it; the client's retry with the approval id then goes through, once.

The prediction is the one budgets reserve (`QuotaEngine.reservation_usd`: the prompt's tokens at
the route's dearest input price plus `max_tokens`, or the policy's default, at its dearest output
price), so "what a request may cost" means the same thing to a budget and to an approval.

The hold answers **403** `approval_required`, not 402: nothing is wrong with payment or the
budget (402 is reserved, and read by clients as "out of credit"); the request needs a permission a
person has not given yet. SDKs do not retry a 403 on their own, which is what we want: the client
retries when the approval is given, with the header `x-gateway-approval: <id>`.

An approval is bound to the key and to a hash of the request's body (its JSON with sorted keys,
as the gateway forwards it: the same client body after the same guardrails and prompt version):
a different body, or another key, with the same id is refused. It is spent by the first request
it lets through (whatever the provider then answers) and expires: undecided after
`PENDING_HOURS`, approved but unused after `APPROVED_HOURS`. Every step (held, approved,
refused, used) is in the activity log; the held request's audit record is a refusal naming the
approval, the approved one's `quota.approval` names it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import orjson
from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit.activity.services import Actor, activity_record
from routing.errors import GatewayError
from tenants.models import ApiKey
from tenants.quotas.models import ApprovalRule, ApprovalStatus, CostApproval, Scope
from tenants.quotas.table import ApprovalThreshold

if TYPE_CHECKING:
    from tenants.models import Team, Tenant

APPROVAL_HEADER = "x-gateway-approval"
PENDING_HOURS = 24
APPROVED_HOURS = 24
ID_PREFIX = "apr_"

Outcome = Literal["not_needed", "shadow", "held", "approved", "refused"]


@dataclass(frozen=True, slots=True)
class ApprovalDecision:
    """What pre-approval decided for one request; `error` is the client's answer unless it passes."""

    outcome: Outcome
    predicted_usd: Decimal
    threshold_usd: Decimal | None = None
    approval_id: str = ""
    error: GatewayError | None = None

    @property
    def passes(self) -> bool:
        return self.error is None

    def record(self) -> dict[str, Any]:
        """What the request's audit record says about it (`quota.approval`)."""
        return {
            "outcome": self.outcome,
            "id": self.approval_id,
            "predicted_usd": f"{self.predicted_usd:f}",
            "threshold_usd": None if self.threshold_usd is None else f"{self.threshold_usd:f}",
        }


def body_hash(*, key_id: int, body: bytes) -> str:
    """The request shape an approval is bound to: the key and the body's JSON, keys sorted (so the
    same request re-serialised by another client library still matches)."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(f"{key_id}:".encode() + canonical).hexdigest()


def _refusal(code: str, message: str, approval_id: str) -> GatewayError:
    headers = {"x-gateway-approval-id": approval_id} if approval_id else {}
    return GatewayError(
        403, message, type="permission_error", code=code, param=APPROVAL_HEADER, headers=headers
    )


@dataclass(frozen=True, slots=True)
class PricedRequest:
    """What pre-approval needs to know of one request (built by tenants/quotas/gate.py)."""

    tenant_id: int
    team_id: int
    key_id: int
    key_label: str
    request_id: str
    end_user: str
    model: str
    body: bytes  # the request as the gateway will forward it (after guardrails and prompts)
    approval_header: str  # the client's `x-gateway-approval`, or ""
    predicted_usd: Decimal


async def cost_approval_check(
    request: PricedRequest, *, rule: ApprovalThreshold | None
) -> ApprovalDecision:
    """Decide whether this request needs, has, or lacks an approval. Asks the database only when
    the request is over its threshold or carries an approval id."""
    given = request.approval_header.strip()
    predicted_usd = request.predicted_usd
    over = rule is not None and predicted_usd > rule.threshold_usd
    threshold = rule.threshold_usd if rule is not None else None
    if not given and not over:
        return ApprovalDecision("not_needed", predicted_usd, threshold)
    if not given and rule is not None and rule.shadow:
        return ApprovalDecision("shadow", predicted_usd, threshold)
    shape = body_hash(key_id=request.key_id, body=request.body)
    if given:
        return await sync_to_async(_use)(
            approval_id=given[:40],
            tenant_id=request.tenant_id,
            key_id=request.key_id,
            shape=shape,
            request_id=request.request_id,
            predicted_usd=predicted_usd,
            threshold=threshold,
        )
    assert rule is not None
    approval = await sync_to_async(_hold)(
        tenant_id=request.tenant_id,
        team_id=request.team_id,
        key_id=request.key_id,
        key_label=request.key_label,
        shape=shape,
        model=request.model,
        end_user=request.end_user,
        predicted_usd=predicted_usd,
        rule=rule,
        request_id=request.request_id,
    )
    message = (
        f"This request is predicted to cost up to ${predicted_usd:.4f}, above the "
        f"${rule.threshold_usd:.4f} that {rule.label} may spend on one request without approval. "
        f"It is held as approval {approval.public_id}: once a budget owner approves it, send the "
        f"same request again with the header '{APPROVAL_HEADER}: {approval.public_id}' "
        f"(before {approval.expires_at:%Y-%m-%d %H:%M} UTC). Or lower max_tokens."
    )
    return ApprovalDecision(
        "held",
        predicted_usd,
        threshold,
        approval.public_id,
        _refusal("approval_required", message, approval.public_id),
    )


def _hold(
    *,
    tenant_id: int,
    team_id: int,
    key_id: int,
    key_label: str,
    shape: str,
    model: str,
    end_user: str,
    predicted_usd: Decimal,
    rule: ApprovalThreshold,
    request_id: str,
) -> CostApproval:
    now = timezone.now()
    with transaction.atomic():
        approval = CostApproval.objects.create(
            public_id=ID_PREFIX + secrets.token_urlsafe(18),
            tenant_id=tenant_id,
            team_id=team_id,
            api_key_id=key_id,
            body_sha256=shape,
            model=model[:200],
            end_user=end_user[:200],
            predicted_cost_usd=predicted_usd,
            threshold_usd=rule.threshold_usd,
            rule_label=rule.label[:200],
            held_request_id=request_id,
            created_at=now,
            expires_at=now + timedelta(hours=PENDING_HOURS),
        )
        activity_record(
            actor=Actor("system", f"gateway, for {key_label}"),
            action="cost_approval.hold",
            target=approval,
            tenant_id=tenant_id,
            details={
                "approval": approval.public_id,
                "request_id": request_id,
                "predicted_usd": f"{predicted_usd:f}",
                "threshold_usd": f"{rule.threshold_usd:f}",
                "rule": rule.label,
                "model": model,
            },
        )
    return approval


def _use(
    *,
    approval_id: str,
    tenant_id: int,
    key_id: int,
    shape: str,
    request_id: str,
    predicted_usd: Decimal,
    threshold: Decimal | None,
) -> ApprovalDecision:
    def refused(code: str, message: str) -> ApprovalDecision:
        return ApprovalDecision(
            "refused", predicted_usd, threshold, approval_id, _refusal(code, message, approval_id)
        )

    now = timezone.now()
    with transaction.atomic():
        approval = (
            CostApproval.objects.select_for_update()
            .filter(public_id=approval_id, tenant_id=tenant_id, api_key_id=key_id)
            .first()
        )
        if approval is None:  # absent, another tenant's or another key's: the same answer
            return refused(
                "approval_invalid", f"Approval {approval_id} does not exist for this key."
            )
        if approval.body_sha256 != shape:
            return refused(
                "approval_mismatch",
                f"Approval {approval_id} was given for a different request: it lets through only "
                "the exact request that was held (same body, same key).",
            )
        if approval.status == ApprovalStatus.REFUSED:
            return refused(
                "approval_refused",
                f"Approval {approval_id} was refused by {approval.decided_by or 'a budget owner'}"
                + (f": {approval.decision_note}" if approval.decision_note else "."),
            )
        if approval.status == ApprovalStatus.USED:
            return refused(
                "approval_used",
                f"Approval {approval_id} has already let its request through "
                f"({approval.used_request_id}); each approval is good for one request.",
            )
        if approval.expires_at <= now:
            return refused("approval_expired", f"Approval {approval_id} has expired.")
        if approval.status == ApprovalStatus.PENDING:
            return refused(
                "approval_pending",
                f"Approval {approval_id} is still waiting for a budget owner's decision; retry "
                "once it is approved.",
            )
        approval.status = ApprovalStatus.USED
        approval.used_at, approval.used_request_id = now, request_id
        approval.save(update_fields=["status", "used_at", "used_request_id"])
        activity_record(
            actor=Actor("system", "gateway"),
            action="cost_approval.use",
            target=approval,
            tenant_id=tenant_id,
            details={"approval": approval_id, "request_id": request_id},
        )
    return ApprovalDecision("approved", predicted_usd, threshold, approval_id)


# Why an approval spent by a request is given back (the activity log says which).
REFUSED_BEFORE_ANY_PROVIDER = "the request was refused by a limit or a budget before any provider"
NO_PROVIDER_ANSWERED = "no provider answered the request: nothing was spent"


async def approval_give_back(
    decision: ApprovalDecision, *, tenant_id: int, request_id: str, reason: str
) -> None:
    """An approval this request spent, given back because the request spent nothing: the
    gateway refused it itself (a limit or a budget), or every provider asked failed without an
    answer. The approval stays good for the retry. Only the use by this very request is undone."""
    if decision.outcome != "approved":
        return
    await sync_to_async(_give_back)(decision.approval_id, tenant_id, request_id, reason)


def _give_back(approval_id: str, tenant_id: int, request_id: str, reason: str) -> None:
    with transaction.atomic():
        approval = (
            CostApproval.objects.select_for_update()
            .filter(
                public_id=approval_id,
                tenant_id=tenant_id,
                status=ApprovalStatus.USED,
                used_request_id=request_id,
            )
            .first()
        )
        if approval is None:
            return
        approval.status = ApprovalStatus.APPROVED
        approval.used_at, approval.used_request_id = None, ""
        approval.save(update_fields=["status", "used_at", "used_request_id"])
        activity_record(
            actor=Actor("system", "gateway"),
            action="cost_approval.give_back",
            target=approval,
            tenant_id=tenant_id,
            details={
                "approval": approval_id,
                "request_id": request_id,
                "reason": reason,
            },
        )


# --- decisions (console and management API) --------------------------------------------------


class ApprovalError(Exception):
    pass


def cost_approval_decide(
    *, approval: CostApproval, approve: bool, actor: Actor, note: str = ""
) -> CostApproval:
    """Approve or refuse a pending approval; a decided or expired one cannot be decided again."""
    now = timezone.now()
    with transaction.atomic():
        locked = CostApproval.objects.select_for_update().get(pk=approval.pk)
        if locked.status != ApprovalStatus.PENDING:
            raise ApprovalError(f"Approval {locked.public_id} is already {locked.status}.")
        if locked.expires_at <= now:
            raise ApprovalError(f"Approval {locked.public_id} has expired undecided.")
        # The hold asks someone else to agree to the spend: the owner of the key that made the
        # request may refuse it, never approve it.
        owner_id = ApiKey.objects.filter(pk=locked.api_key_id).values_list("owner_id", flat=True)
        if approve and actor.user_id is not None and owner_id.first() == actor.user_id:
            raise ApprovalError(
                f"Approval {locked.public_id} holds a request made with your own key: another "
                "budget owner must approve it."
            )
        locked.status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REFUSED
        locked.decided_at, locked.decided_by = now, actor.label[:200]
        locked.decision_note = note[:500]
        if approve:
            locked.expires_at = now + timedelta(hours=APPROVED_HOURS)
        locked.save()
        activity_record(
            actor=actor,
            action="cost_approval.approve" if approve else "cost_approval.refuse",
            target=locked,
            tenant_id=locked.tenant_id,
            details={
                "approval": locked.public_id,
                "predicted_usd": f"{locked.predicted_cost_usd:f}",
                "note": note[:500],
            },
        )
    return locked


def approval_rule_set(
    *,
    tenant: Tenant,
    scope: str,
    threshold_usd: Decimal,
    team: Team | None = None,
    api_key: ApiKey | None = None,
    shadow: bool = False,
    actor: Actor,
) -> ApprovalRule:
    from tenants.quotas.services import _scope_fields

    if scope == Scope.USER:
        raise ApprovalError("cost pre-approval applies to a tenant, a team or a key")
    if threshold_usd < 0:
        raise ApprovalError("the threshold cannot be negative")
    where = _scope_fields(tenant=tenant, scope=scope, team=team, api_key=api_key, end_user="")
    with transaction.atomic():
        rule, created = ApprovalRule.objects.update_or_create(
            **where, defaults={"threshold_usd": threshold_usd, "shadow": shadow}
        )
        activity_record(
            actor=actor,
            action="approval_rule.create" if created else "approval_rule.update",
            target=rule,
            tenant_id=tenant.pk,
            details={"threshold_usd": f"{threshold_usd:f}", "shadow": shadow},
        )
    return rule


def approval_rule_remove(*, rule: ApprovalRule, actor: Actor) -> None:
    with transaction.atomic():
        activity_record(
            actor=actor, action="approval_rule.delete", target=rule, tenant_id=rule.tenant_id
        )
        rule.delete()


# --- reads -------------------------------------------------------------------------------------


def approvals_of(*, tenant_id: int, status: str | None = None) -> QuerySet[CostApproval]:
    rows = CostApproval.objects.filter(tenant_id=tenant_id).select_related("team", "api_key")
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("-created_at", "-id")


def approvals_pending(*, tenant_id: int, now: datetime | None = None) -> QuerySet[CostApproval]:
    return approvals_of(tenant_id=tenant_id, status=ApprovalStatus.PENDING).filter(
        expires_at__gt=now or timezone.now()
    )


def approval_rules_of(*, tenant_id: int) -> QuerySet[ApprovalRule]:
    return ApprovalRule.objects.filter(tenant_id=tenant_id).select_related("team", "api_key")
