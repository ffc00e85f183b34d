"""Who is calling the management API: an admin key, scoped to the platform or to one tenant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.http import HttpRequest
from ninja.security import HttpBearer

from audit.activity.services import Actor
from gateway_site.api.errors import ApiError
from gateway_site.api.models import AdminKey
from gateway_site.api.services import ADMIN_KEY_PREFIX
from tenants.keys import KEY_PREFIX, hash_key

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class AdminScope:
    key_id: int
    label: str
    tenant_id: int | None  # None: the whole platform
    role: str = "tenant_admin"  # a tenant key's role (gateway_site/api/models.py)

    @property
    def is_platform(self) -> bool:
        return self.tenant_id is None

    @property
    def actor(self) -> Actor:
        return Actor.admin_key(self.label)


# Endpoints that name no roles (`api_roles`) are the tenant admin's: managing the tenant.
DEFAULT_ROLES = frozenset({"tenant_admin"})
KEY_ROLES = ("tenant_admin", "compliance", "finance", "developer")


def api_roles(*roles: str) -> Callable[[F], F]:
    """Mark a handler as open to tenant keys of these roles (the console's roles for the same
    page); read by the URL guard (gateway_site/api/routers.py) before authentication."""
    unknown = set(roles) - set(KEY_ROLES)
    if unknown or not roles:
        raise ValueError(f"api_roles needs known roles, got {roles!r}")

    def mark(handler: F) -> F:
        handler.api_roles = frozenset(roles)  # type: ignore[attr-defined]
        return handler

    return mark


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message)


class AdminKeyAuth(HttpBearer):
    """A lookup per request: the management API is not the hot path, and revocation is instant.

    The endpoints are sync views; under ASGI Django runs them, and this, in a worker thread.
    """

    def authenticate(self, request: HttpRequest, token: str) -> AdminScope:
        if token.startswith(KEY_PREFIX) and not token.startswith(ADMIN_KEY_PREFIX):
            raise _unauthorized(
                "wrong_key_type",
                "This is a proxy key (gw-…); the management API takes an admin key (gwa-…).",
            )
        key = AdminKey.objects.select_related("tenant").filter(key_hash=hash_key(token)).first()
        if key is None:
            raise _unauthorized("invalid_admin_key", "Invalid admin key.")
        if key.revoked_at is not None:
            raise _unauthorized("revoked_admin_key", f"Admin key {key.prefix}… has been revoked.")
        if key.tenant is not None and not key.tenant.is_active:
            raise _unauthorized(
                "tenant_inactive", f"Admin key {key.prefix}… belongs to a deactivated tenant."
            )
        scope = "platform" if key.tenant is None else key.tenant.slug
        allowed = getattr(request, "api_roles", DEFAULT_ROLES)
        if key.tenant is not None and key.role not in allowed:
            raise ApiError(
                403,
                "role_not_allowed",
                f"Admin key {key.prefix}… acts as {key.role}; this endpoint is for "
                f"{', '.join(sorted(allowed))} keys (or a platform key).",
            )
        return AdminScope(
            key_id=key.pk,
            label=f"admin key {key.name} ({key.prefix}…, {scope})",
            tenant_id=key.tenant_id,
            role=key.role if key.tenant is not None else "platform_admin",
        )
