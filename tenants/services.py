"""Writes for tenants, teams, members and keys. Console, management API and YAML all call these.

Create and update are separate operations: a create that collides with an existing name is
refused (`TenancyError`, code `conflict`) and changes nothing; an update needs the object. User
accounts are shared by every tenant, so their credentials change only through `member_update`,
which refuses accounts the caller does not manage alone (`account_managed_by`).
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from audit.activity.services import SYSTEM, Actor, activity_record
from tenants.keys import NewKey, generate_key, key_from_plaintext
from tenants.models import ApiKey, Membership, Role, Team, Tenant
from tenants.signals import key_rotated

M = TypeVar("M", bound=models.Model)


class TenancyError(ValueError):
    """A write refused for a reason the caller can act on. `code` is stable: `conflict`
    (the name is taken), `outside_scope` (an account the caller does not manage) or `invalid`."""

    def __init__(self, code: str, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


def _create_once(
    model: type[M], unique: dict[str, Any], fields: dict[str, Any], taken: TenancyError
) -> M:
    """Create the row, or raise `taken` when its unique name exists: checked first, and by the
    database's constraint for a concurrent create (the outer transaction survives)."""
    if model._default_manager.filter(**unique).exists():
        raise taken
    try:
        with transaction.atomic():
            return model._default_manager.create(**unique, **fields)
    except IntegrityError as exc:
        raise taken from exc


@transaction.atomic
def tenant_create(
    *, slug: str, name: str, residency_region: str = "", actor: Actor = SYSTEM
) -> Tenant:
    taken = TenancyError("conflict", f"A tenant with slug '{slug}' already exists.", field="slug")
    tenant = _create_once(
        Tenant, {"slug": slug}, {"name": name, "residency_region": residency_region}, taken
    )
    activity_record(
        actor=actor,
        action="tenant.create",
        target=tenant,
        tenant_id=tenant.pk,
        details={"name": name, "residency_region": residency_region},
    )
    return tenant


@transaction.atomic
def tenant_update(
    *,
    tenant: Tenant,
    name: str | None = None,
    residency_region: str | None = None,
    actor: Actor = SYSTEM,
) -> Tenant:
    """Rename a tenant or change its residency; None leaves a field as it is."""
    if name is not None:
        tenant.name = name
    if residency_region is not None:
        tenant.residency_region = residency_region
    tenant.save(update_fields=["name", "residency_region"])
    activity_record(
        actor=actor,
        action="tenant.update",
        target=tenant,
        tenant_id=tenant.pk,
        details={"name": tenant.name, "residency_region": tenant.residency_region},
    )
    return tenant


@transaction.atomic
def team_create(
    *, tenant: Tenant, slug: str, name: str, allowed_models: list[str], actor: Actor = SYSTEM
) -> Team:
    taken = TenancyError(
        "conflict",
        f"Tenant '{tenant.slug}' already has a team '{slug}': choose another slug, "
        "or edit that team.",
        field="slug",
    )
    team = _create_once(
        Team,
        {"tenant": tenant, "slug": slug},
        {"name": name, "allowed_models": allowed_models},
        taken,
    )
    activity_record(
        actor=actor,
        action="team.create",
        target=team,
        tenant_id=tenant.pk,
        details={"name": name, "allowed_models": allowed_models},
    )
    return team


@transaction.atomic
def team_update(
    *,
    team: Team,
    name: str | None = None,
    allowed_models: list[str] | None = None,
    actor: Actor = SYSTEM,
) -> Team:
    """Rename a team or set its models; None leaves a field as it is. The slug never changes."""
    if name is not None:
        team.name = name
    if allowed_models is not None:
        team.allowed_models = allowed_models
    team.save(update_fields=["name", "allowed_models"])
    activity_record(
        actor=actor,
        action="team.update",
        target=team,
        tenant_id=team.tenant_id,
        details={"name": team.name, "allowed_models": team.allowed_models},
    )
    return team


def username_check(username: str) -> None:
    """The user model's own rules (length, letters, digits and @.+-_), and no control or
    formatting characters (a right-to-left override makes one name look like another)."""
    field = get_user_model()._meta.get_field("username")
    if any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} for char in username):
        raise TenancyError(
            "invalid", "A username may not contain control characters.", field="username"
        )
    if unicodedata.normalize("NFKC", username) != username:
        # Sign-in folds what is typed (NFKC): this account could never be signed in to, and it
        # would look like the account its name folds to.
        raise TenancyError(
            "invalid",
            f"Write the username as '{unicodedata.normalize('NFKC', username)}' (plain letters).",
            field="username",
        )
    try:
        field.run_validators(username)
        if len(username) > (field.max_length or 150):
            raise ValidationError(f"at most {field.max_length} characters")
        if not username:
            raise ValidationError("required")
    except ValidationError as exc:
        raise TenancyError("invalid", "; ".join(exc.messages), field="username") from exc


def account_managed_by(*, user: User, tenant: Tenant, platform: bool) -> bool:
    """Whether a caller may change this account's email or password.

    Superusers and staff are never changed here (Django's own tools do that). A platform admin
    manages every other account; a tenant admin only accounts that belong to their tenant alone,
    and not a platform admin's.
    """
    if user.is_superuser or user.is_staff:
        return False
    if platform:
        return True
    roles = dict(Membership.objects.filter(user=user).values_list("tenant_id", "role"))
    return set(roles) == {tenant.pk} and roles[tenant.pk] != Role.PLATFORM_ADMIN


def _check_role(role: str, *, platform: bool) -> None:
    if role not in Role.values:
        raise TenancyError("invalid", f"Unknown role '{role}'.", field="role")
    if role == Role.PLATFORM_ADMIN and not platform:
        raise TenancyError(
            "outside_scope",
            "Only a platform admin can grant the platform admin role.",
            field="role",
        )


def _set_teams(*, user: User, tenant: Tenant, teams: list[Team]) -> list[str]:
    """Make `user` a member of exactly `teams` within `tenant`; teams of other tenants are ignored."""
    wanted = {team.pk for team in teams if team.tenant_id == tenant.pk}
    for team in Team.objects.filter(tenant=tenant):
        if team.pk in wanted:
            team.members.add(user)
        else:
            team.members.remove(user)
    return sorted(team.slug for team in teams if team.pk in wanted)


@transaction.atomic
def member_create(
    *,
    tenant: Tenant,
    username: str,
    email: str,
    role: str,
    teams: list[Team],
    password: str | None,
    platform: bool = False,
    actor: Actor = SYSTEM,
) -> Membership:
    """Create a new account and make it a member of `tenant`. An existing username is refused,
    whoever holds it: creating never touches another account."""
    username_check(username)
    _check_role(role, platform=platform)
    taken = TenancyError(
        "conflict",
        f"The username '{username}' is taken: choose another. To give an existing account access "
        "to this tenant, a platform admin adds it.",
        field="username",
    )
    user_model = get_user_model()
    # Case aside, as Django's own sign-up does: 'Alice' next to 'alice' is one person to a reader.
    if user_model.objects.filter(username__iexact=username).exists():
        raise taken
    user = user_model(username=username, email=email)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()  # signs in through SSO, or gets a password later
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise taken from exc
    membership = Membership.objects.create(user=user, tenant=tenant, role=role)
    slugs = _set_teams(user=user, tenant=tenant, teams=teams)
    activity_record(
        actor=actor,
        action="member.create",
        target=user,
        tenant_id=tenant.pk,
        details={"role": role, "teams": slugs},
    )
    return membership


@transaction.atomic
def member_add(
    *,
    tenant: Tenant,
    user: User,
    role: str,
    teams: list[Team],
    platform: bool,
    actor: Actor = SYSTEM,
) -> Membership:
    """Give an existing account access to `tenant`; its credentials are not touched. Only a
    platform admin (or the declarative config) may: a tenant admin could otherwise enrol
    accounts of other tenants."""
    if not platform:
        raise TenancyError(
            "outside_scope",
            f"'{user.get_username()}' is an existing account: only a platform admin can add it "
            "to a tenant.",
            field="username",
        )
    _check_role(role, platform=platform)
    if Membership.objects.filter(user=user, tenant=tenant).exists():
        raise TenancyError(
            "conflict",
            f"'{user.get_username()}' is already a member of '{tenant.slug}': change their "
            "role or teams instead.",
            field="username",
        )
    membership = Membership.objects.create(user=user, tenant=tenant, role=role)
    slugs = _set_teams(user=user, tenant=tenant, teams=teams)
    activity_record(
        actor=actor,
        action="member.add",
        target=user,
        tenant_id=tenant.pk,
        details={"role": role, "teams": slugs},
    )
    return membership


@transaction.atomic
def member_update(
    *,
    membership: Membership,
    role: str | None = None,
    teams: list[Team] | None = None,
    email: str | None = None,
    password: str | None = None,
    platform: bool = False,
    actor: Actor = SYSTEM,
) -> Membership:
    """Change a member's role, their teams (exactly those listed) or their account's email or
    password. None leaves a field as it is. A role held by a platform admin, and the credentials
    of an account the caller does not manage alone, are refused as `outside_scope`."""
    user, tenant = membership.user, membership.tenant
    if membership.role == Role.PLATFORM_ADMIN and not platform:
        raise TenancyError(
            "outside_scope",
            f"'{user.get_username()}' is a platform admin: only a platform admin can change them.",
        )
    if (email is not None or password) and not account_managed_by(
        user=user, tenant=tenant, platform=platform
    ):
        raise TenancyError(
            "outside_scope",
            f"The account '{user.get_username()}' is not managed by this tenant alone: its email "
            "and password can only be changed by a platform admin, or by its owner.",
            field="password" if password else "email",
        )
    details: dict[str, object] = {}
    if role is not None:
        _check_role(role, platform=platform)
        membership.role = role
        membership.save(update_fields=["role"])
        details["role"] = role
    if teams is not None:
        details["teams"] = _set_teams(user=user, tenant=tenant, teams=teams)
    if email is not None and email != user.email:
        user.email = email
        details["email_changed"] = True
    if password:
        user.set_password(password)
        details["password_changed"] = True
    if email is not None or password:
        user.save()
    activity_record(
        actor=actor, action="member.update", target=user, tenant_id=tenant.pk, details=details
    )
    return membership


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
    if key.replaced_by_id is not None:
        raise ValueError("a rotated key cannot be rotated again: rotate its successor")
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
    key_rotated.send(sender=ApiKey, key=key, successor=successor)
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


def _change(
    instance: models.Model,
    values: dict[str, Any],
    actor: Actor,
    action: str,
    tenant_id: int,
    *,
    always: bool = False,
    details: bool = True,
) -> bool:
    """Save `values` on `instance` and put the change in the activity log, in the caller's
    transaction; nothing is saved or logged when they are what it holds (unless `always`)."""
    if not always and all(getattr(instance, name) == value for name, value in values.items()):
        return False
    for name, value in values.items():
        setattr(instance, name, value)
    instance.save(update_fields=list(values))
    activity_record(
        actor=actor,
        action=action,
        target=instance,
        tenant_id=tenant_id,
        details=values if details else None,
    )
    return True


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
    _change(team, {"model_pins": pins}, actor, "team.pins_set", team.tenant_id)
    return team


@transaction.atomic
def key_pins_set(*, key: ApiKey, model_pins: dict[str, str], actor: Actor = SYSTEM) -> ApiKey:
    """Pin models to exact deployments for one key; they override its team's pins."""
    pins = _clean_pins(model_pins)
    _change(key, {"model_pins": pins}, actor, "key.pins_set", key.tenant_id)
    return key


@transaction.atomic
def tenant_models_set(
    *, tenant: Tenant, allowed_models: list[str], actor: Actor = SYSTEM
) -> Tenant:
    models = sorted(set(allowed_models))
    _change(tenant, {"allowed_models": models}, actor, "tenant.models", tenant.pk, always=True)
    return tenant


@transaction.atomic
def tenant_set_active(*, tenant: Tenant, is_active: bool, actor: Actor = SYSTEM) -> Tenant:
    """Deactivating a tenant stops every one of its keys (tenants/auth.py treats them as revoked)."""
    action = "tenant.activate" if is_active else "tenant.deactivate"
    _change(tenant, {"is_active": is_active}, actor, action, tenant.pk, details=False)
    return tenant


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


# --- declarative apply -----------------------------------------------------------------------
# The YAML states what should exist (docs/config.md), so applying it creates what is missing and
# updates what differs, through the operations above. Only the operator's config (and test worlds
# built like it) apply; the console and the management API create and update explicitly.


def tenant_apply(
    *, slug: str, name: str, residency_region: str = "", actor: Actor = SYSTEM
) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        return tenant_create(slug=slug, name=name, residency_region=residency_region, actor=actor)
    if (tenant.name, tenant.residency_region) == (name, residency_region):
        return tenant
    return tenant_update(tenant=tenant, name=name, residency_region=residency_region, actor=actor)


def team_apply(
    *, tenant: Tenant, slug: str, name: str, allowed_models: list[str], actor: Actor = SYSTEM
) -> Team:
    team = Team.objects.filter(tenant=tenant, slug=slug).first()
    if team is None:
        return team_create(
            tenant=tenant, slug=slug, name=name, allowed_models=allowed_models, actor=actor
        )
    if (team.name, team.allowed_models) == (name, allowed_models):
        return team
    return team_update(team=team, name=name, allowed_models=allowed_models, actor=actor)


@transaction.atomic
def member_apply(
    *,
    tenant: Tenant,
    username: str,
    email: str,
    role: str,
    teams: list[Team],
    password: str | None,
    actor: Actor = SYSTEM,
) -> User:
    """The config's user: created, added to the tenant, or updated (role, email, password); the
    teams listed are added to those they have. A superuser's or staff account's credentials are
    refused here too."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        return member_create(
            tenant=tenant,
            username=username,
            email=email,
            role=role,
            teams=teams,
            password=password,
            platform=True,
            actor=actor,
        ).user
    membership = Membership.objects.filter(user=user, tenant=tenant).first()
    if membership is None:
        membership = member_add(
            tenant=tenant, user=user, role=role, teams=teams, platform=True, actor=actor
        )
    current = list(Team.objects.filter(tenant=tenant, members=user))
    member_update(
        membership=membership,
        role=role,
        teams=current + [team for team in teams if team not in current],
        email=email if email and email != user.email else None,
        password=password or None,
        platform=True,
        actor=actor,
    )
    return user
