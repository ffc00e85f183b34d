"""Console-only reads built on the apps' selectors (always tenant-scoped)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from audit.activity.models import ActivityEvent
from audit.activity.selectors import activity_for_tenant


def activity_search(*, tenant_id: int, q: str = "", action: str = "") -> QuerySet[ActivityEvent]:
    events = activity_for_tenant(tenant_id=tenant_id)
    if q:
        events = events.filter(
            Q(action__icontains=q) | Q(actor_label__icontains=q) | Q(target_label__icontains=q)
        )
    if action:
        events = events.filter(action=action)
    return events
