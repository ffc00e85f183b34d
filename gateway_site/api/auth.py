"""Who is calling the management API: an admin key, scoped to the platform or to one tenant."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from ninja.security import HttpBearer

from audit.activity.services import Actor
from gateway_site.api.errors import ApiError
from gateway_site.api.models import AdminKey
from gateway_site.api.services import ADMIN_KEY_PREFIX
from tenants.keys import KEY_PREFIX, hash_key


@dataclass(frozen=True, slots=True)
class AdminScope:
    key_id: int
    label: str
    tenant_id: int | None  # None: the whole platform

    @property
    def is_platform(self) -> bool:
        return self.tenant_id is None

    @property
    def actor(self) -> Actor:
        return Actor.admin_key(self.label)


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
        return AdminScope(
            key_id=key.pk,
            label=f"admin key {key.name} ({key.prefix}…, {scope})",
            tenant_id=key.tenant_id,
        )
