"""Writes for guardrail policies and where they apply."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.activity.services import SYSTEM, Actor, activity_record
from routing.guardrails.core.policy import PolicySpec
from routing.guardrails.models import (
    GuardrailPolicy,
    PolicyAttachment,
    QuarantineReview,
    ReviewLabel,
    ReviewStatus,
)
from routing.models import Route
from tenants.models import ApiKey, Team, Tenant


@transaction.atomic
def guardrail_policy_upsert(
    *,
    name: str,
    spec: PolicySpec,
    tenant: Tenant | None = None,
    description: str = "",
    is_active: bool = True,
    shadow: bool = False,
    actor: Actor = SYSTEM,
) -> GuardrailPolicy:
    policy = GuardrailPolicy.objects.filter(name=name).first()
    created = policy is None
    if policy is None:
        policy = GuardrailPolicy(name=name)
    elif policy.tenant_id != (tenant.id if tenant else None):
        raise ValidationError(f"guardrail policy {name!r} belongs to another tenant")
    policy.tenant = tenant
    policy.description = description
    policy.spec = spec.model_dump(mode="json", exclude_none=True)
    policy.is_active = is_active
    policy.shadow = shadow
    policy.save()
    activity_record(
        actor=actor,
        action="guardrail_policy.create" if created else "guardrail_policy.update",
        target=policy,
        tenant_id=policy.tenant_id,
        details={"spec": policy.spec, "is_active": is_active, "shadow": shadow},
    )
    return policy


@transaction.atomic
def guardrail_policy_create(
    *,
    tenant: Tenant,
    name: str,
    spec: PolicySpec,
    description: str = "",
    is_active: bool = True,
    shadow: bool = False,
    actor: Actor = SYSTEM,
) -> GuardrailPolicy:
    """A new policy of `tenant`; a name already taken (in any tenant) is refused, never reused."""
    if GuardrailPolicy.objects.filter(name=name).exists():
        raise ValidationError(f"a guardrail policy named {name!r} already exists")
    return guardrail_policy_upsert(
        name=name,
        spec=spec,
        tenant=tenant,
        description=description,
        is_active=is_active,
        shadow=shadow,
        actor=actor,
    )


@transaction.atomic
def guardrail_policy_update(
    *,
    policy: GuardrailPolicy,
    spec: PolicySpec,
    description: str,
    is_active: bool,
    shadow: bool,
    actor: Actor = SYSTEM,
) -> GuardrailPolicy:
    """Change an existing policy; the activity log keeps what it was and what it became."""
    policy = GuardrailPolicy.objects.select_for_update().get(pk=policy.pk)
    before = {
        "spec": policy.spec,
        "description": policy.description,
        "is_active": policy.is_active,
        "shadow": policy.shadow,
    }
    policy.spec = spec.model_dump(mode="json", exclude_none=True)
    policy.description = description
    policy.is_active = is_active
    policy.shadow = shadow
    policy.save()
    after = {
        "spec": policy.spec,
        "description": description,
        "is_active": is_active,
        "shadow": shadow,
    }
    changed = sorted(k for k in after if after[k] != before[k])
    activity_record(
        actor=actor,
        action="guardrail_policy.update",
        target=policy,
        tenant_id=policy.tenant_id,
        details={"changed": changed, "before": before, "after": after},
    )
    return policy


def _scope_tenant_id(
    tenant: Tenant | None, team: Team | None, api_key: ApiKey | None
) -> int | None:
    if tenant is not None:
        return tenant.id
    if team is not None:
        return team.tenant_id
    if api_key is not None:
        return api_key.tenant_id
    return None


@transaction.atomic
def guardrail_policy_attach(
    *,
    policy: GuardrailPolicy,
    tenant: Tenant | None = None,
    team: Team | None = None,
    api_key: ApiKey | None = None,
    route: Route | None = None,
    actor: Actor = SYSTEM,
) -> PolicyAttachment:
    """Apply `policy` to exactly one tenant, team, key or route (idempotent)."""
    scopes = [s for s in (tenant, team, api_key, route) if s is not None]
    if len(scopes) != 1:
        raise ValidationError("attach a policy to exactly one tenant, team, key or route")
    owner = _scope_tenant_id(tenant, team, api_key)
    if route is not None and policy.tenant_id is not None:
        # A tenant's policy on a route: that tenant's requests on it, nobody else's.
        owner = policy.tenant_id
        tenant = policy.tenant
    if policy.tenant_id is not None and owner != policy.tenant_id:
        raise ValidationError(
            f"guardrail policy {policy.name!r} belongs to one tenant and cannot apply outside it"
        )
    attachment, created = PolicyAttachment.objects.get_or_create(
        policy=policy, tenant=tenant, team=team, api_key=api_key, route=route
    )
    if created:
        kind, _ = attachment.scope
        activity_record(
            actor=actor,
            action="guardrail_policy.attach",
            target=policy,
            tenant_id=owner,
            details={"scope": kind, "target": str(scopes[0])},
        )
    return attachment


@transaction.atomic
def guardrail_policy_detach(*, attachment: PolicyAttachment, actor: Actor = SYSTEM) -> None:
    kind, _ = attachment.scope
    details: dict[str, Any] = {"scope": kind, "target": str(getattr(attachment, kind))}
    tenant_id = _scope_tenant_id(attachment.tenant, attachment.team, attachment.api_key)
    policy = attachment.policy
    tenant_id = policy.tenant_id or tenant_id
    attachment.delete()
    activity_record(
        actor=actor,
        action="guardrail_policy.detach",
        target=policy,
        tenant_id=tenant_id,
        details=details,
    )


@transaction.atomic
def quarantine_review(
    *,
    tenant: Tenant,
    request_id: str,
    digest: str,
    status: str = "",
    label: str = "",
    actor: Actor = SYSTEM,
) -> QuarantineReview:
    """Release, dismiss or label one held request (any combination; each is logged)."""
    if status and status not in ReviewStatus.values:
        raise ValidationError(f"unknown review decision {status!r}")
    if label and label not in ReviewLabel.values:
        raise ValidationError(f"unknown label {label!r}")
    review, _ = QuarantineReview.objects.select_for_update().get_or_create(
        tenant=tenant, request_id=request_id, defaults={"digest": digest}
    )
    if status:
        review.status = status
    if label:
        review.label = label
    review.reviewer = actor.label[:200]
    review.save()
    activity_record(
        actor=actor,
        action=f"guardrail_quarantine.{status or 'label'}",
        target=review,
        tenant_id=tenant.id,
        details={"request_id": request_id, "status": review.status, "label": review.label},
    )
    return review


def key_policies_carry(*, key: ApiKey, successor: ApiKey, **_: Any) -> None:
    """A rotated key's successor is under the same guardrail policies (tenants.signals)."""
    for attachment in PolicyAttachment.objects.filter(api_key=key):
        attachment.pk = None
        attachment.api_key = successor
        attachment.save()
