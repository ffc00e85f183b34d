"""Writes for admin keys (the management API's own credentials)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit.activity.services import Actor, activity_record
from gateway_site.api.models import AdminKey
from tenants.keys import NewKey, generate_key
from tenants.models import Tenant

ADMIN_KEY_PREFIX = "gwa-"  # tells an admin key from a proxy key ("gw-") at a glance


@transaction.atomic
def admin_key_create(
    *,
    name: str,
    tenant: Tenant | None,
    created_by: str,
    actor: Actor,
    role: str = "tenant_admin",
) -> tuple[AdminKey, NewKey]:
    """Create an admin key; the returned plaintext is the only copy that will ever exist.
    A platform key has no role (it passes everywhere), so it must keep the default."""
    if tenant is None and role != "tenant_admin":
        raise ValueError("a platform admin key takes no role")
    material = generate_key(ADMIN_KEY_PREFIX)
    key = AdminKey.objects.create(
        name=name,
        tenant=tenant,
        role=role,
        prefix=material.prefix,
        key_hash=material.key_hash,
        created_by=created_by[:200],
    )
    activity_record(
        actor=actor,
        action="admin_key.create",
        target=key,
        tenant_id=key.tenant_id,
        details={
            "scope": tenant.slug if tenant else "platform",
            "prefix": key.prefix,
            "role": role,
        },
    )
    return key, material


@transaction.atomic
def admin_key_revoke(*, key: AdminKey, actor: Actor) -> AdminKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        activity_record(actor=actor, action="admin_key.revoke", target=key, tenant_id=key.tenant_id)
    return key
