"""Reads for guardrails: always within one tenant."""

from __future__ import annotations

from django.db.models import QuerySet

from audit.models import AuditRecord


def audit_records_with_finding(
    *, tenant_id: int, check: str = "", type: str = "", action: str = "", policy: str = ""
) -> QuerySet[AuditRecord]:
    """A tenant's audit records holding a guardrail finding that matches every given field.

    Uses jsonb containment (`@>`), so a GIN index on guardrail_findings would serve it.
    """
    wanted = {
        name: value
        for name, value in (
            ("check", check),
            ("type", type),
            ("action", action),
            ("policy", policy),
        )
        if value
    }
    return AuditRecord.objects.filter(
        tenant_id=tenant_id, guardrail_findings__contains=[wanted]
    ).order_by("-started_at")
