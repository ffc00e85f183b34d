"""The admin activity log, read through the API: who changed what, newest first."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Router
from ninja.pagination import paginate

from audit.activity.models import ActivityEvent
from audit.activity.selectors import activity_for_tenant, activity_platform
from gateway_site.api.common import platform_scope, tenant_or_404
from gateway_site.api.schemas import ActivityOut

router = Router(tags=["activity"])


def _filtered(events: QuerySet[ActivityEvent], action: str | None) -> QuerySet[ActivityEvent]:
    events = events.select_related("tenant")
    return events.filter(action__startswith=action) if action else events


@router.get(
    "/tenants/{slug}/activity",
    response=list[ActivityOut],
    summary="A tenant's activity log (filter: action=key. for every key change)",
)
@paginate
def tenant_activity(
    request: HttpRequest, slug: str, action: str | None = None
) -> QuerySet[ActivityEvent]:
    tenant = tenant_or_404(request, slug)
    return _filtered(activity_for_tenant(tenant_id=tenant.pk), action)


@router.get(
    "/activity",
    response=list[ActivityOut],
    summary="The whole activity log, platform changes included (platform)",
)
@paginate
def platform_activity(request: HttpRequest, action: str | None = None) -> QuerySet[ActivityEvent]:
    platform_scope(request)
    return _filtered(activity_platform(), action)
