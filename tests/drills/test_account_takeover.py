"""Drill: a tenant admin tries to take over accounts that are not theirs.

The attacker is the tenant admin of one tenant, in the console and with their tenant's admin key.
The victims: a developer of another tenant, a platform admin, a superuser, and a colleague whose
account also belongs to another tenant. Every attempt to create, add, edit or reset them is
refused, and afterwards each victim still signs in with their own password, email unchanged.
Run alone: `pytest tests/drills/test_account_takeover.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from django.urls import reverse

from audit.activity.services import SYSTEM
from gateway_site.api.services import admin_key_create
from tenants import services
from tenants.models import Membership, Role, Team, Tenant

pytestmark = pytest.mark.django_db

PASSWORD = "victims own passphrase"
STOLEN = "attacker chose this one"


@dataclass
class Scene:
    tenant: Tenant  # the attacker's
    team: Team
    other_team: Team  # the victims' tenant's team, whose slug the attacker reuses
    attacker: User
    admin_key: str
    victims: dict[str, User]


@pytest.fixture
def scene(settings: Any) -> Scene:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    tenant = services.tenant_create(slug="mallory-co", name="Mallory Co")
    team = services.team_create(tenant=tenant, slug="desk", name="Desk", allowed_models=[])
    other = services.tenant_create(slug="victim-co", name="Victim Co")
    other_team = services.team_create(
        tenant=other, slug="desk", name="Victim Desk", allowed_models=[]
    )

    def member(username: str, tenant: Tenant, role: str, team: Team) -> User:
        return services.member_create(
            tenant=tenant,
            username=username,
            email=f"{username}@victim.example",
            role=role,
            teams=[team],
            password=PASSWORD,
            platform=True,
        ).user

    attacker = services.member_create(
        tenant=tenant,
        username="mallory",
        email="mallory@mallory.example",
        role=Role.TENANT_ADMIN,
        teams=[team],
        password=PASSWORD,
    ).user
    shared = member("shared-sam", other, Role.DEVELOPER, other_team)
    services.member_add(
        tenant=tenant, user=shared, role=Role.DEVELOPER, teams=[team], platform=True
    )
    victims = {
        "other tenant's developer": member("victor", other, Role.DEVELOPER, other_team),
        "other tenant's admin": member("olivia", other, Role.TENANT_ADMIN, other_team),
        "platform admin": member("pat-platform", other, Role.PLATFORM_ADMIN, other_team),
        "superuser": get_user_model().objects.create_superuser(
            "root", "root@victim.example", PASSWORD
        ),
        "colleague also in another tenant": shared,
    }
    _, material = admin_key_create(name="mallory-tf", tenant=tenant, created_by="t", actor=SYSTEM)
    return Scene(tenant, team, other_team, attacker, material.plaintext, victims)


def fingerprint(scene: Scene) -> dict[str, Any]:
    """What an attacker would change: credentials, flags and memberships of every victim."""
    return {
        name: (
            user.username,
            *get_user_model()
            .objects.values_list("email", "password", "is_superuser", "is_staff")
            .get(pk=user.pk),
            sorted(Membership.objects.filter(user=user).values_list("tenant__slug", "role")),
        )
        for name, user in scene.victims.items()
    } | {"other team": Team.objects.values_list("name").get(pk=scene.other_team.pk)}


def signs_in(username: str, password: str) -> bool:
    """The console's sign-in check, through the same backends (throttling included)."""
    request = RequestFactory().post("/console/login/")
    return authenticate(request, username=username, password=password) is not None


def assert_victims_unharmed(scene: Scene, before: dict[str, Any]) -> None:
    assert fingerprint(scene) == before
    for name, victim in scene.victims.items():
        assert signs_in(victim.username, PASSWORD), name
        assert not signs_in(victim.username, STOLEN), name


def test_the_console_refuses_every_takeover_attempt(scene: Scene, record_property: Any) -> None:
    client = Client()
    client.force_login(scene.attacker)
    members = reverse("console:admin_members", kwargs={"tenant_slug": scene.tenant.slug})
    before = fingerprint(scene)

    for name, victim in scene.victims.items():
        response = client.post(
            members,
            {
                "username": victim.username,
                "email": "mallory@mallory.example",
                "role": Role.TENANT_ADMIN,
                "teams": [scene.team.pk],
                "password": STOLEN,
            },
        )
        assert response.status_code == 400, name
        assert "is taken" in response.content.decode(), name
    # Their memberships elsewhere are not reachable by id either.
    for membership in Membership.objects.exclude(tenant=scene.tenant):
        edit = reverse(
            "console:admin_member_edit",
            kwargs={"tenant_slug": scene.tenant.slug, "membership_id": membership.pk},
        )
        assert client.post(edit, {"role": Role.TENANT_ADMIN}).status_code == 404

    assert_victims_unharmed(scene, before)
    record_property("observed", f"console: {len(scene.victims)} victims, every attempt refused")


def test_adding_a_team_with_a_taken_slug_changes_nothing(scene: Scene) -> None:
    client = Client()
    client.force_login(scene.attacker)
    teams = reverse("console:admin_teams", kwargs={"tenant_slug": scene.tenant.slug})

    response = client.post(teams, {"slug": "desk", "name": "Renamed by a create"})

    assert response.status_code == 400
    assert "already has a team" in response.content.decode()
    assert Team.objects.get(pk=scene.team.pk).name == "Desk"


def test_the_management_api_refuses_every_takeover_attempt(
    scene: Scene, record_property: Any
) -> None:
    api = Client(headers={"authorization": f"Bearer {scene.admin_key}"})
    ours = f"/api/v1/tenants/{scene.tenant.slug}/members"
    before = fingerprint(scene)

    def call(method: str, path: str, body: dict[str, Any]) -> Any:
        return api.generic(method, path, json.dumps(body), content_type="application/json")

    for name, victim in scene.victims.items():
        created = call("POST", ours, {"username": victim.username, "role": "tenant_admin"})
        assert created.status_code in {403, 409}, (name, created.content)
        takeover = {"username": victim.username, "role": "developer", "password": STOLEN}
        assert call("POST", ours, takeover).status_code in {403, 409}, name
        reset = call("PATCH", f"{ours}/{victim.username}", {"password": STOLEN, "email": "m@x.y"})
        assert reset.status_code in {403, 404}, (name, reset.content)
        theirs = f"/api/v1/tenants/victim-co/members/{victim.username}"
        assert call("PATCH", theirs, {"password": STOLEN}).status_code == 404, name
    refused = call("PATCH", f"{ours}/shared-sam", {"password": STOLEN})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "user_outside_scope"
    team = call("POST", f"/api/v1/tenants/{scene.tenant.slug}/teams", {"slug": "desk", "name": "X"})
    assert team.status_code == 409

    assert_victims_unharmed(scene, before)
    assert Team.objects.get(pk=scene.team.pk).name == "Desk"
    record_property(
        "observed",
        f"API: {4 * len(scene.victims) + 2} attempts refused; victims' sign-in unchanged",
    )


def test_a_tenant_admin_still_manages_their_own_accounts(scene: Scene) -> None:
    """The refusals above are about ownership, not a blanket ban: a new account, and later its
    password, are the tenant admin's to set."""
    api = Client(headers={"authorization": f"Bearer {scene.admin_key}"})
    ours = f"/api/v1/tenants/{scene.tenant.slug}/members"

    created = api.post(
        ours,
        {"username": "newbie", "role": "developer", "password": PASSWORD},
        content_type="application/json",
    )
    reset = api.patch(f"{ours}/newbie", {"password": STOLEN}, content_type="application/json")

    assert created.status_code == 201, created.content
    assert reset.status_code == 200, reset.content
    assert signs_in("newbie", STOLEN)


@pytest.mark.parametrize(
    "username", ["a" * 151, "evil\u202egnp.exe", "line\nbreak", "nul\x00byte", "tab\there", ""]
)
def test_a_username_that_could_deceive_or_not_fit_is_refused(scene: Scene, username: str) -> None:
    api = Client(headers={"authorization": f"Bearer {scene.admin_key}"})
    accounts = get_user_model().objects.count()

    response = api.post(
        f"/api/v1/tenants/{scene.tenant.slug}/members",
        {"username": username, "role": "developer"},
        content_type="application/json",
    )

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "validation_error"
    assert get_user_model().objects.count() == accounts
