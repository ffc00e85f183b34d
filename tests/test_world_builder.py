"""The test-world builder makes what its arguments say, through the services."""

from __future__ import annotations

import pytest

from tenants.auth import load_identity
from tenants.keys import hash_key
from tenants.models import Membership, Role
from tests.support.world import Key, Member, TeamSpec, add_members, build_tenant

pytestmark = pytest.mark.django_db


def test_it_builds_teams_members_by_role_and_keys() -> None:
    shop = build_tenant(
        "shop-co",
        teams=["desk", TeamSpec("lab", allowed_models=["claude-*"])],
        roles=[Role.TENANT_ADMIN, Role.DEVELOPER],
        members=[Member(Role.FINANCE, "shop-finn", teams=[])],
        keys=["app", Key("lab-bot", team="lab", owner=Role.DEVELOPER, revoked=True)],
        password="a password for the console",
    )
    assert shop.tenant.name == "Shop Co" and shop.team.slug == "desk"
    assert shop.teams["lab"].allowed_models == ["claude-*"]
    developer = shop.users[Role.DEVELOPER]
    assert (
        developer.username == "shop-co-developer" and developer.email == "developer@shop-co.example"
    )
    assert developer.check_password("a password for the console")
    assert set(developer.teams.values_list("slug", flat=True)) == {"desk", "lab"}
    finn = shop.users["shop-finn"]
    assert Membership.objects.get(user=finn, tenant=shop.tenant).role == Role.FINANCE
    assert not finn.teams.exists()
    app = load_identity(hash_key(shop.key("app")))
    assert app is not None and app.team_id == shop.team.pk
    bot = shop.keys["lab-bot"].api_key
    bot.refresh_from_db()
    assert bot.owner == developer and bot.team == shop.teams["lab"] and bot.revoked_at is not None


def test_a_copy_keeps_a_tests_additions_off_the_handle_it_came_from() -> None:
    shop = build_tenant("copy-co", teams=["desk"], roles=[Role.DEVELOPER])
    mine = shop.copy()
    add_members(mine, [Member(Role.DEVELOPER, "copy-intern", label="intern")])
    assert set(mine.users) == {Role.DEVELOPER, "intern"}
    assert set(shop.users) == {Role.DEVELOPER}


def test_it_refuses_two_members_under_one_label() -> None:
    shop = build_tenant("twice-co", teams=["desk"], roles=[Role.DEVELOPER])
    with pytest.raises(ValueError, match="give a label"):
        add_members(shop, [Member(Role.DEVELOPER)])
