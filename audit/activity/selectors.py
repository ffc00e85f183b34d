"""Reads of the activity log, always scoped to what the reader may see."""

from __future__ import annotations

from django.db.models import QuerySet

from audit.activity.models import ActivityEvent


def activity_for_tenant(*, tenant_id: int) -> QuerySet[ActivityEvent]:
    return ActivityEvent.objects.filter(tenant_id=tenant_id).order_by("-occurred_at", "-id")


def activity_platform() -> QuerySet[ActivityEvent]:
    return ActivityEvent.objects.order_by("-occurred_at", "-id")
