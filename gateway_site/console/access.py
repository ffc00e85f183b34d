"""The one mechanism that decides who may see a console page, partial or export.

Every console view is wrapped by `console_view(...)` (tenant pages, with the roles allowed),
`console_signed_in` (pages about the user, not a tenant) or `console_public` (the sign-in pages).
Each marks the view with a `ConsoleAccess`, which tests/console/test_access.py checks for every
URL. For a tenant page it resolves `/console/t/<tenant_slug>/…`: not signed in → the login page;
no membership in that tenant → 404 (the tenant's existence is not disclosed); a role not listed →
403; platform admins pass everywhere. The view then reads `console_context(request)`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from inspect import iscoroutinefunction
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from tenants import selectors
from tenants.models import Membership, Role, Tenant

View = Callable[..., Any]
ALL_ROLES = frozenset(Role.values)


@dataclass(frozen=True, slots=True)
class ConsoleAccess:
    kind: str  # "tenant" | "signed_in" | "public"
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ConsoleContext:
    """Who is looking at which tenant, resolved once per request by the access mechanism."""

    tenant: Tenant
    role: str  # the member's own role; platform_admin for a platform admin without one
    platform_admin: bool
    membership: Membership | None

    def has_role(self, *roles: str) -> bool:
        return self.platform_admin or self.role in roles

    @property
    def role_label(self) -> str:
        return str(Role(self.role).label)

    @property
    def effective_roles(self) -> frozenset[str]:
        return ALL_ROLES if self.platform_admin else frozenset({self.role})


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


def console_context(request: HttpRequest) -> ConsoleContext:
    context: ConsoleContext = request.console  # type: ignore[attr-defined]
    return context


def access_of(view: Any) -> ConsoleAccess | None:
    return getattr(view, "console_access", None)


def _resolve(request: HttpRequest, tenant_slug: str, roles: frozenset[str]) -> ConsoleContext:
    user = request.user
    tenant = selectors.tenant_by_slug(slug=tenant_slug)
    platform = selectors.is_platform_admin(user=user)
    membership = selectors.membership_of(user=user, tenant=tenant) if tenant else None
    if tenant is None or (membership is None and not platform):
        raise _Refused(404)
    role = membership.role if membership else Role.PLATFORM_ADMIN
    context = ConsoleContext(
        tenant=tenant, role=role, platform_admin=platform, membership=membership
    )
    if not context.has_role(*roles):
        raise _Refused(403)
    return context


def refusal(request: HttpRequest, status: int) -> HttpResponse:
    template = "console/denied.html" if status == 403 else "console/not_found.html"
    return render(request, template, {"status": status}, status=status)


def _to_login(request: HttpRequest) -> HttpResponse:
    response = redirect_to_login(request.get_full_path(), reverse("console:login"))
    if getattr(request, "htmx", False):
        # An HTMX swap would put the login page inside the fragment; send the whole page there.
        response["HX-Redirect"] = response["Location"]
    return response


def _mark(wrapper: View, access: ConsoleAccess) -> View:
    wrapper.console_access = access  # type: ignore[attr-defined]
    return wrapper


def console_view(*roles: str) -> Callable[[View], View]:
    """A tenant page: its URL carries `<tenant_slug>`; only the roles listed (and platform admins)."""
    unknown = set(roles) - ALL_ROLES
    if unknown or not roles:
        raise ValueError(f"console_view needs known roles, got {roles!r}")
    allowed = frozenset(roles)

    def decorate(view: View) -> View:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(
                request: HttpRequest, tenant_slug: str, *args: Any, **kwargs: Any
            ) -> HttpResponse:
                if not await sync_to_async(lambda: request.user.is_authenticated)():
                    return _to_login(request)
                try:
                    context = await sync_to_async(_resolve)(request, tenant_slug, allowed)
                except _Refused as refused:
                    return await sync_to_async(refusal)(request, refused.status)
                request.console = context  # type: ignore[attr-defined]
                response: HttpResponse = await view(request, *args, **kwargs)
                return response

            return _mark(async_wrapper, ConsoleAccess("tenant", allowed))

        @functools.wraps(view)
        def wrapper(request: HttpRequest, tenant_slug: str, *args: Any, **kwargs: Any) -> Any:
            if not request.user.is_authenticated:
                return _to_login(request)
            try:
                request.console = _resolve(request, tenant_slug, allowed)  # type: ignore[attr-defined]
            except _Refused as refused:
                return refusal(request, refused.status)
            return view(request, *args, **kwargs)

        return _mark(wrapper, ConsoleAccess("tenant", allowed))

    return decorate


def console_signed_in(view: View) -> View:
    """A page about the signed-in user rather than one tenant (the tenant picker)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not request.user.is_authenticated:
            return _to_login(request)
        return view(request, *args, **kwargs)

    return _mark(wrapper, ConsoleAccess("signed_in"))


def console_public(view: View) -> View:
    """Sign-in, sign-out and the SSO callback: reachable without a session, show no tenant data."""
    return _mark(functools.wraps(view)(lambda *a, **k: view(*a, **k)), ConsoleAccess("public"))
