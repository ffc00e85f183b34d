"""Two-person erasure: one person asks for an end user's content to be erased, another approves.

The erasure itself is `audit_records_erase` (audit/services.py); this only adds the four eyes.
The person who asked can never approve their own request (checked here and by a constraint).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.activity.services import Actor, activity_record
from audit.models import ErasureRequest, ErasureStatus
from audit.services import AuditError, audit_records_erase
from tenants.models import Tenant


def erasure_request_create(
    *, tenant: Tenant, end_user: str, reason: str, user: Any
) -> ErasureRequest:
    end_user, reason = end_user.strip(), reason.strip()
    if not end_user or not reason:
        raise AuditError("an erasure names the end user and the reason (e.g. the request ref)")
    with transaction.atomic():
        request = ErasureRequest.objects.create(
            tenant=tenant, end_user=end_user, reason=reason, requested_by=user
        )
        activity_record(
            actor=Actor.user(user),
            action="audit.erasure.request",
            target=request,
            tenant_id=tenant.pk,
            details={"end_user": end_user, "reason": reason},
        )
    return request


def _claim(request: ErasureRequest, user: Any) -> ErasureRequest:
    locked = ErasureRequest.objects.select_for_update().get(pk=request.pk)
    if locked.status != ErasureStatus.PENDING:
        raise AuditError(f"this request was already {locked.get_status_display().lower()}")
    if locked.requested_by_id == user.pk:
        raise AuditError("a second person must decide: you asked for this erasure yourself")
    return locked


def erasure_request_approve(*, request: ErasureRequest, user: Any) -> ErasureRequest:
    """Erase the end user's content as asked; refused (and still pending) if the erasure is
    (records under legal hold, a stream still open)."""
    with transaction.atomic():
        _claim(request, user)
    requester = request.requested_by.get_username()
    erased = audit_records_erase(
        tenant=request.tenant,
        end_user=request.end_user,
        reason=f"{request.reason} (erasure request {request.pk}, asked by {requester})",
        actor=Actor.user(user),
    )
    with transaction.atomic():
        locked = _claim(request, user)
        locked.status = ErasureStatus.APPROVED
        locked.decided_by, locked.decided_at = user, timezone.now()
        locked.records_erased = erased
        locked.save(update_fields=["status", "decided_by", "decided_at", "records_erased"])
        activity_record(
            actor=Actor.user(user),
            action="audit.erasure.approve",
            target=locked,
            tenant_id=locked.tenant_id,
            details={"end_user": locked.end_user, "requested_by": requester, "records": erased},
        )
    return locked


def erasure_request_refuse(*, request: ErasureRequest, user: Any) -> ErasureRequest:
    with transaction.atomic():
        locked = _claim(request, user)
        locked.status = ErasureStatus.REFUSED
        locked.decided_by, locked.decided_at = user, timezone.now()
        locked.save(update_fields=["status", "decided_by", "decided_at"])
        activity_record(
            actor=Actor.user(user),
            action="audit.erasure.refuse",
            target=locked,
            tenant_id=locked.tenant_id,
            details={"end_user": locked.end_user},
        )
    return locked
