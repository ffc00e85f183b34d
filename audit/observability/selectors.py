"""Reads of alerts, scoped to one tenant (platform-wide alerts only for platform admins)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from audit.observability.models import Alert, AlertRule


def alerts_for_tenant(
    *, tenant_id: int, include_platform: bool, limit: int = 200
) -> QuerySet[Alert]:
    scope = Q(tenant_id=tenant_id)
    if include_platform:
        scope |= Q(tenant__isnull=True)
    return Alert.objects.filter(scope).order_by("status", "-opened_at")[:limit]


def alert_rules_all() -> list[AlertRule]:
    return list(AlertRule.objects.order_by("rule"))
