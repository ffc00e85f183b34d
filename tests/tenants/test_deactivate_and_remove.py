"""tenant_set_active and member_remove: the services the management API added."""

import pytest

from audit.activity.models import ActivityEvent
from audit.activity.services import Actor
from tenants import services
from tenants.auth import load_identity
from tenants.models import Membership

pytestmark = pytest.mark.django_db

ACTOR = Actor.admin_key("admin key ops (gwa-abcdef…, platform)")


def test_deactivating_a_tenant_revokes_its_keys_and_is_logged_once() -> None:
    tenant = services.tenant_apply(slug="vandelay", name="Vandelay")
    team = services.team_apply(tenant=tenant, slug="imports", name="Imports", allowed_models=[])
    key, _ = services.key_create(team=team, name="k")

    services.tenant_set_active(tenant=tenant, is_active=False, actor=ACTOR)
    services.tenant_set_active(tenant=tenant, is_active=False, actor=ACTOR)  # no change, no event

    identity = load_identity(key.key_hash)
    assert identity is not None and identity.revoked
    events = ActivityEvent.objects.filter(tenant=tenant, action__startswith="tenant.")
    assert list(events.values_list("action", flat=True).order_by("id")) == [
        "tenant.create",
        "tenant.deactivate",
    ]
    services.tenant_set_active(tenant=tenant, is_active=True, actor=ACTOR)
    identity = load_identity(key.key_hash)
    assert identity is not None and not identity.revoked


def test_removing_a_member_leaves_their_other_tenants_alone() -> None:
    first = services.tenant_apply(slug="vandelay", name="Vandelay")
    second = services.tenant_apply(slug="kramerica", name="Kramerica")
    team_a = services.team_apply(tenant=first, slug="a", name="A", allowed_models=[])
    team_b = services.team_apply(tenant=second, slug="b", name="B", allowed_models=[])
    for tenant, team in ((first, team_a), (second, team_b)):
        user = services.member_apply(
            tenant=tenant,
            username="art",
            email="",
            role="developer",
            teams=[team],
            password=None,
        )

    services.member_remove(tenant=first, user=user, actor=ACTOR)

    assert list(Membership.objects.filter(user=user).values_list("tenant__slug", flat=True)) == [
        "kramerica"
    ]
    assert list(user.teams.values_list("slug", flat=True)) == ["b"]
    event = ActivityEvent.objects.get(action="member.remove", tenant=first)
    assert event.tenant_id == first.pk and event.actor_kind == "admin_key"
