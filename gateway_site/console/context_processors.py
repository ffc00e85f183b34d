from typing import Any

from django.conf import settings
from django.http import HttpRequest

from gateway_site.console.nav import nav_for
from tenants import selectors


def console(request: HttpRequest) -> dict[str, Any]:
    """The frame's data: the navigation for the current tenant and role, and the tenant switcher."""
    context = getattr(request, "console", None)
    if context is None:
        return {"oidc_enabled": settings.OIDC_ENABLED}
    return {
        "console": context,
        "console_nav": nav_for(context, request.path),
        "console_memberships": selectors.memberships_of(user=request.user),
        "oidc_enabled": settings.OIDC_ENABLED,
    }
