"""Reads for tenants, members and keys (their usage: audit/selectors.py; the models they may use:
routing/selectors.py). Every read is scoped to one tenant."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db.models import QuerySet

from tenants.models import ApiKey, Membership, Role, Team, Tenant

AnyUser = AbstractBaseUser | AnonymousUser


@dataclass(frozen=True, slots=True)
class KeyPin:
    model: str
    version: str  # a deployment name or an exact upstream model
    source: str  # "key", or "team" when the key has no pin of its own for the model


def memberships_of(*, user: AnyUser) -> list[Membership]:
    if not user.is_authenticated:
        return []
    return list(
        Membership.objects.filter(user_id=user.pk, tenant__is_active=True)
        .select_related("tenant")
        .order_by("tenant__name")
    )


def is_platform_admin(*, user: AnyUser) -> bool:
    """Superusers, and anyone holding the platform admin role in some tenant, see every tenant."""
    if not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False):
        return True
    return Membership.objects.filter(user_id=user.pk, role=Role.PLATFORM_ADMIN).exists()


def tenant_by_slug(*, slug: str) -> Tenant | None:
    return Tenant.objects.filter(slug=slug, is_active=True).first()


def tenants_all() -> QuerySet[Tenant]:
    return Tenant.objects.filter(is_active=True).order_by("name")


def membership_of(*, user: AnyUser, tenant: Tenant) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user_id=user.pk, tenant=tenant).first()


def teams_of_tenant(*, tenant: Tenant) -> QuerySet[Team]:
    return Team.objects.filter(tenant=tenant).prefetch_related("members").order_by("name")


def teams_of_member(*, tenant: Tenant, user: AnyUser) -> QuerySet[Team]:
    return Team.objects.filter(tenant=tenant, members__id=user.pk or 0).order_by("name")


def team_of_tenant(*, tenant: Tenant, team_id: int) -> Team | None:
    return Team.objects.filter(tenant=tenant, pk=team_id).first()


def team_named(*, tenant: Tenant, slug: str) -> Team | None:
    return Team.objects.filter(tenant=tenant, slug=slug).first()


def user_named(*, username: str) -> User | None:
    """The account with this username, in any tenant (usernames are global)."""
    return User.objects.filter(username=username).first()


def members_of_tenant(*, tenant: Tenant) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__username")
    )


def member_of_tenant(*, tenant: Tenant, membership_id: int) -> Membership | None:
    return Membership.objects.filter(tenant=tenant, pk=membership_id).select_related("user").first()


def keys_of_tenant(*, tenant: Tenant) -> QuerySet[ApiKey]:
    return (
        ApiKey.objects.filter(tenant=tenant)
        .select_related("team", "owner", "replaced_by")
        .order_by("revoked_at", "-created_at")
    )


def keys_of_owner(*, tenant: Tenant, user: AnyUser) -> QuerySet[ApiKey]:
    return keys_of_tenant(tenant=tenant).filter(owner_id=user.pk)


def key_ids_of_owner(*, tenant: Tenant, user: AnyUser) -> list[int]:
    return list(keys_of_owner(tenant=tenant, user=user).values_list("id", flat=True))


def key_of_tenant(*, tenant: Tenant, key_id: int, owner: AnyUser | None = None) -> ApiKey | None:
    keys = (
        keys_of_tenant(tenant=tenant) if owner is None else keys_of_owner(tenant=tenant, user=owner)
    )
    return keys.filter(pk=key_id).first()


def key_lineage(*, key_id: int) -> list[int]:
    """The key and every key it replaced by rotation, newest first."""
    lineage = [key_id]
    while len(lineage) < 1000:  # a rotation chain, never a cycle; bounded all the same
        found = ApiKey.objects.filter(replaced_by_id=lineage[-1]).values_list("pk", flat=True)
        previous = next(iter(found), None)
        if previous is None or previous in lineage:
            break
        lineage.append(previous)
    return lineage


def pins_of_key(*, key: ApiKey) -> list[KeyPin]:
    """The pins the proxy applies to this key: its own, then its team's for the other models."""
    pins = {model: KeyPin(model, version, "team") for model, version in key.team.model_pins.items()}
    pins.update({model: KeyPin(model, version, "key") for model, version in key.model_pins.items()})
    return sorted(pins.values(), key=lambda pin: pin.model)
