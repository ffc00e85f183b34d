"""Writes for tenants, teams, members and keys. Console, management API and YAML all call these."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from activity.services import SYSTEM, Actor, activity_record
from tenants.keys import NewKey, generate_key, key_from_plaintext
from tenants.models import ApiKey, Membership, Role, Team, Tenant


@transaction.atomic
def tenant_upsert(
    *, slug: str, name: str, residency_region: str = "", actor: Actor = SYSTEM
) -> Tenant:
    tenant, created = Tenant.objects.update_or_create(
        slug=slug, defaults={"name": name, "residency_region": residency_region}
    )
    activity_record(
        actor=actor,
        action="tenant.create" if created else "tenant.update",
        target=tenant,
        tenant_id=tenant.pk,
        details={"name": name, "residency_region": residency_region},
    )
    return tenant


@transaction.atomic
def team_upsert(
    *, tenant: Tenant, slug: str, name: str, allowed_models: list[str], actor: Actor = SYSTEM
) -> Team:
    team, created = Team.objects.update_or_create(
        tenant=tenant, slug=slug, defaults={"name": name, "allowed_models": allowed_models}
    )
    activity_record(
        actor=actor,
        action="team.create" if created else "team.update",
        target=team,
        tenant_id=tenant.pk,
        details={"name": name, "allowed_models": allowed_models},
    )
    return team


@transaction.atomic
def member_upsert(
    *,
    tenant: Tenant,
    username: str,
    email: str,
    role: str,
    teams: list[Team],
    password: str | None,
    actor: Actor = SYSTEM,
) -> User:
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=username, defaults={"email": email})
    if email and user.email != email:
        user.email = email
    if password:
        user.set_password(password)
    elif created:
        user.set_unusable_password()  # signs in through SSO, or gets a password later
    user.save()
    Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
    for team in teams:
        team.members.add(user)
    activity_record(
        actor=actor,
        action="member.upsert",
        target=user,
        tenant_id=tenant.pk,
        details={"role": role, "teams": [team.slug for team in teams]},
    )
    return user


@transaction.atomic
def key_create(
    *,
    team: Team,
    name: str,
    plaintext: str | None = None,
    allowed_models: list[str] | None = None,
    expires_at: datetime | None = None,
    owner: User | None = None,
    actor: Actor = SYSTEM,
) -> tuple[ApiKey, NewKey]:
    """Create a key; the plaintext in the returned NewKey is the only copy that will ever exist."""
    material = key_from_plaintext(plaintext) if plaintext else generate_key()
    key = ApiKey.objects.create(
        tenant=team.tenant,
        team=team,
        owner=owner,
        name=name,
        prefix=material.prefix,
        key_hash=material.key_hash,
        allowed_models=allowed_models or [],
        expires_at=expires_at,
    )
    activity_record(
        actor=actor,
        action="key.create",
        target=key,
        tenant_id=key.tenant_id,
        details={
            "team": team.slug,
            "allowed_models": key.allowed_models,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return key, material


@transaction.atomic
def key_update(
    *,
    key: ApiKey,
    allowed_models: list[str],
    expires_at: datetime | None,
    plaintext: str | None,
    actor: Actor = SYSTEM,
) -> ApiKey:
    key.allowed_models = allowed_models
    key.expires_at = expires_at
    if plaintext:
        material = key_from_plaintext(plaintext)
        key.prefix, key.key_hash = material.prefix, material.key_hash
    key.save(update_fields=["allowed_models", "expires_at", "prefix", "key_hash"])
    activity_record(
        actor=actor,
        action="key.update",
        target=key,
        tenant_id=key.tenant_id,
        details={
            "allowed_models": allowed_models,
            "expires_at": expires_at.isoformat() if expires_at else None,
            "secret_replaced": bool(plaintext),
        },
    )
    return key


@transaction.atomic
def key_revoke(*, key: ApiKey, actor: Actor = SYSTEM) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        activity_record(actor=actor, action="key.revoke", target=key, tenant_id=key.tenant_id)
    return key


@transaction.atomic
def key_rotate(*, key: ApiKey, grace: timedelta, actor: Actor = SYSTEM) -> tuple[ApiKey, NewKey]:
    """Issue a successor with the same scope; the old key keeps working for `grace`, then stops.

    The proxy enforces the end of the grace through the old key's expiry (tenants/auth.py), so a
    zero grace revokes it at once.
    """
    if key.revoked_at is not None:
        raise ValueError("a revoked key cannot be rotated")
    now = timezone.now()
    name, original_expiry = key.name, key.expires_at
    material = generate_key()
    # The successor takes the name; the old key is renamed so active names stay unique.
    key.name = f"{name} (rotated, {key.prefix}…)"[:200]
    ends = now + grace
    if grace <= timedelta(0):
        key.revoked_at = now
    elif key.expires_at is None or key.expires_at > ends:
        key.expires_at = ends
    key.save(update_fields=["name", "revoked_at", "expires_at"])
    successor = ApiKey.objects.create(
        tenant_id=key.tenant_id,
        team_id=key.team_id,
        owner_id=key.owner_id,
        name=name,
        prefix=material.prefix,
        key_hash=material.key_hash,
        allowed_models=key.allowed_models,
        model_pins=key.model_pins,
        expires_at=original_expiry,
    )
    key.replaced_by = successor
    key.save(update_fields=["replaced_by"])
    activity_record(
        actor=actor,
        action="key.rotate",
        target=key,
        tenant_id=key.tenant_id,
        details={
            "successor": successor.prefix,
            "grace_seconds": int(grace.total_seconds()),
            "old_key_works_until": now.isoformat() if key.revoked_at else ends.isoformat(),
        },
    )
    return successor, material


def _clean_pins(model_pins: dict[str, str]) -> dict[str, str]:
    for model, pin in model_pins.items():
        if not (isinstance(model, str) and model.strip() and isinstance(pin, str) and pin.strip()):
            raise ValueError(
                f"a model pin maps a model name to a deployment name, not {model!r}: {pin!r}"
            )
    return {model.strip(): pin.strip() for model, pin in sorted(model_pins.items())}


@transaction.atomic
def team_pins_set(*, team: Team, model_pins: dict[str, str], actor: Actor = SYSTEM) -> Team:
    """Pin models to exact deployments for every key of the team (empty: no pins)."""
    pins = _clean_pins(model_pins)
    if pins != team.model_pins:
        team.model_pins = pins
        team.save(update_fields=["model_pins"])
        activity_record(
            actor=actor,
            action="team.pins_set",
            target=team,
            tenant_id=team.tenant_id,
            details={"model_pins": pins},
        )
    return team


@transaction.atomic
def key_pins_set(*, key: ApiKey, model_pins: dict[str, str], actor: Actor = SYSTEM) -> ApiKey:
    """Pin models to exact deployments for one key; they override its team's pins."""
    pins = _clean_pins(model_pins)
    if pins != key.model_pins:
        key.model_pins = pins
        key.save(update_fields=["model_pins"])
        activity_record(
            actor=actor,
            action="key.pins_set",
            target=key,
            tenant_id=key.tenant_id,
            details={"model_pins": pins},
        )
    return key


@transaction.atomic
def tenant_models_set(
    *, tenant: Tenant, allowed_models: list[str], actor: Actor = SYSTEM
) -> Tenant:
    tenant.allowed_models = sorted(set(allowed_models))
    tenant.save(update_fields=["allowed_models"])
    activity_record(
        actor=actor,
        action="tenant.models",
        target=tenant,
        tenant_id=tenant.pk,
        details={"allowed_models": tenant.allowed_models},
    )
    return tenant


@transaction.atomic
def tenant_set_active(*, tenant: Tenant, is_active: bool, actor: Actor = SYSTEM) -> Tenant:
    """Deactivating a tenant stops every one of its keys (tenants/auth.py treats them as revoked)."""
    if tenant.is_active != is_active:
        tenant.is_active = is_active
        tenant.save(update_fields=["is_active"])
        activity_record(
            actor=actor,
            action="tenant.activate" if is_active else "tenant.deactivate",
            target=tenant,
            tenant_id=tenant.pk,
        )
    return tenant


@transaction.atomic
def membership_update(
    *, membership: Membership, role: str, teams: list[Team], actor: Actor = SYSTEM
) -> Membership:
    """Set a member's role and, within the membership's tenant, exactly which teams they are in."""
    membership.role = role
    membership.save(update_fields=["role"])
    user, tenant = membership.user, membership.tenant
    wanted = {team.pk for team in teams if team.tenant_id == tenant.pk}
    for team in Team.objects.filter(tenant=tenant):
        if team.pk in wanted:
            team.members.add(user)
        else:
            team.members.remove(user)
    activity_record(
        actor=actor,
        action="member.update",
        target=user,
        tenant_id=tenant.pk,
        details={"role": role, "teams": sorted(t.slug for t in teams if t.pk in wanted)},
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Actor = SYSTEM) -> None:
    user, tenant = membership.user, membership.tenant
    for team in Team.objects.filter(tenant=tenant, members=user):
        team.members.remove(user)
    membership.delete()
    activity_record(actor=actor, action="member.remove", target=user, tenant_id=tenant.pk)


@transaction.atomic
def memberships_sync_from_claims(
    *, user: User, entries: list[str], actor: Actor = SYSTEM
) -> list[Membership]:
    """Make the user's memberships exactly what the identity provider's claim lists.

    Each entry is `tenant:role` or `tenant:role:team+team`; unknown tenants, roles and teams are
    skipped (the claim may speak of more than this gateway knows). Teams are only ever added.
    """
    wanted: dict[int, tuple[Tenant, str, list[str]]] = {}
    for entry in entries:
        parts = [part.strip() for part in str(entry).split(":")]
        if len(parts) < 2 or parts[1] not in Role.values:
            continue
        tenant = Tenant.objects.filter(slug=parts[0]).first()
        if tenant is not None:
            team_slugs = parts[2].split("+") if len(parts) > 2 and parts[2] else []
            wanted[tenant.pk] = (tenant, parts[1], team_slugs)
    for membership in Membership.objects.filter(user=user).exclude(tenant_id__in=wanted):
        membership_remove(membership=membership, actor=actor)
    kept = []
    for tenant, role, team_slugs in wanted.values():
        current = Membership.objects.filter(user=user, tenant=tenant).first()
        teams = list(Team.objects.filter(tenant=tenant, slug__in=team_slugs))
        if current is not None and current.role == role and not teams:
            kept.append(current)
            continue
        membership, _ = Membership.objects.get_or_create(
            user=user, tenant=tenant, defaults={"role": role}
        )
        for team in teams:
            team.members.add(user)
        if membership.role != role:
            membership.role = role
            membership.save(update_fields=["role"])
        activity_record(
            actor=actor,
            action="member.sso",
            target=user,
            tenant_id=tenant.pk,
            details={"role": role, "teams": [team.slug for team in teams]},
        )
        kept.append(membership)
    return kept


@transaction.atomic
def member_remove(*, tenant: Tenant, user: User, actor: Actor = SYSTEM) -> None:
    """Take a user out of one tenant and its teams; their other tenants are untouched."""
    membership = Membership.objects.filter(user=user, tenant=tenant).first()
    if membership is not None:
        membership_remove(membership=membership, actor=actor)
