"""Reads of the activity log, always scoped to what the reader may see."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from audit.activity.models import ActivityEvent


def activity_for_tenant(*, tenant_id: int) -> QuerySet[ActivityEvent]:
    return ActivityEvent.objects.filter(tenant_id=tenant_id).order_by("-occurred_at", "-id")


def activity_platform() -> QuerySet[ActivityEvent]:
    return ActivityEvent.objects.order_by("-occurred_at", "-id")


def activity_search(*, tenant_id: int, q: str = "", action: str = "") -> QuerySet[ActivityEvent]:
    events = activity_for_tenant(tenant_id=tenant_id)
    if q:
        events = events.filter(
            Q(action__icontains=q) | Q(actor_label__icontains=q) | Q(target_label__icontains=q)
        )
    if action:
        events = events.filter(action=action)
    return events
