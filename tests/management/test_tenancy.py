"""Tenants, teams and members through the management API, and what each scope may do."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from audit.activity.models import ActivityEvent
from tenants.models import Membership, Tenant
from tests.management.conftest import Api, Side

pytestmark = pytest.mark.django_db


def test_a_platform_key_creates_a_tenant_and_the_log_names_the_key(platform: Api) -> None:
    response = platform.post(
        "/tenants", {"slug": "initrode", "name": "Initrode", "residency_region": "eu"}
    )

    assert response.status_code == 201, response.content
    assert response.json()["residency_region"] == "eu"
    event = ActivityEvent.objects.get(action="tenant.create", target_label="initrode")
    assert event.actor_kind == "admin_key"
    assert event.actor_label.startswith("admin key ops (gwa-")


def test_creating_a_tenant_twice_is_a_conflict_not_an_update(platform: Api, ours: Side) -> None:
    response = platform.post("/tenants", {"slug": ours.tenant.slug, "name": "Renamed"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert Tenant.objects.get(slug=ours.tenant.slug).name == ours.tenant.name


def test_a_platform_key_lists_every_tenant_a_tenant_key_only_its_own(
    platform: Api, as_ours: Api, ours: Side, theirs: Side
) -> None:
    every = {t["slug"] for t in platform.get("/tenants").json()["items"]}
    own = [t["slug"] for t in as_ours.get("/tenants").json()["items"]]

    assert {ours.tenant.slug, theirs.tenant.slug} <= every
    assert own == [ours.tenant.slug]


def test_a_tenant_key_renames_its_tenant_but_may_not_loosen_residency(
    as_ours: Api, ours: Side
) -> None:
    renamed = as_ours.patch(f"/tenants/{ours.tenant.slug}", {"name": "Hooli XYZ"})
    residency = as_ours.patch(f"/tenants/{ours.tenant.slug}", {"residency_region": ""})

    assert renamed.status_code == 200 and renamed.json()["name"] == "Hooli XYZ"
    assert residency.status_code == 403
    assert residency.json()["error"]["code"] == "platform_scope_required"


def test_a_deactivated_tenant_loses_its_admin_keys_too(
    platform: Api, as_ours: Api, ours: Side
) -> None:
    assert platform.post(f"/tenants/{ours.tenant.slug}/deactivate").json()["is_active"] is False

    refused = as_ours.get("/tenants")

    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "tenant_inactive"
    assert platform.post(f"/tenants/{ours.tenant.slug}/activate").json()["is_active"] is True
    assert as_ours.get("/tenants").status_code == 200
    actions = ActivityEvent.objects.filter(tenant=ours.tenant).values_list("action", flat=True)
    assert {"tenant.deactivate", "tenant.activate"} <= set(actions)


def test_teams_are_created_listed_and_updated(as_ours: Api, ours: Side) -> None:
    base = f"/tenants/{ours.tenant.slug}/teams"
    created = as_ours.post(base, {"slug": "growth", "name": "Growth", "allowed_models": ["demo"]})
    duplicate = as_ours.post(base, {"slug": "growth", "name": "Again"})
    updated = as_ours.patch(f"{base}/growth", {"allowed_models": []})

    assert created.status_code == 201, created.content
    assert duplicate.status_code == 409
    assert updated.json() == {**created.json(), "allowed_models": []}
    assert as_ours.get(base).json() == {
        "items": [updated.json(), as_ours.get(f"{base}/{ours.team.slug}").json()],
        "count": 2,
    }


def test_a_misspelt_field_is_refused_with_its_path(as_ours: Api, ours: Side) -> None:
    response = as_ours.post(
        f"/tenants/{ours.tenant.slug}/teams", {"slug": "Not A Slug", "name": "x", "alowed": []}
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert {f["field"] for f in error["fields"]} == {"slug", "alowed"}


def test_a_member_is_added_with_a_role_and_teams_then_removed(as_ours: Api, ours: Side) -> None:
    path = f"/tenants/{ours.tenant.slug}/members/gavin"
    added = as_ours.post(
        f"/tenants/{ours.tenant.slug}/members",
        {
            "username": "gavin",
            "email": "gavin@hooli.example",
            "role": "finance",
            "teams": [ours.team.slug],
        },
    )

    assert added.status_code == 201, added.content
    assert added.json() == {
        "username": "gavin",
        "email": "gavin@hooli.example",
        "role": "finance",
        "teams": [ours.team.slug],
    }
    moved = as_ours.patch(path, {"role": "compliance", "teams": []})
    assert moved.json()["role"] == "compliance" and moved.json()["teams"] == []
    assert not ours.team.members.filter(username="gavin").exists()
    assert as_ours.delete(path).status_code == 204
    assert as_ours.get(path).status_code == 404
    assert not ours.team.members.filter(username="gavin").exists()


def test_a_tenant_key_may_not_grant_platform_admin(as_ours: Api, platform: Api, ours: Side) -> None:
    members = f"/tenants/{ours.tenant.slug}/members"
    path = f"{members}/gavin"

    assert as_ours.post(members, {"username": "gavin", "role": "platform_admin"}).status_code == 403
    assert (
        platform.post(members, {"username": "gavin", "role": "platform_admin"}).status_code == 201
    )
    # nor demote or remove one
    assert as_ours.patch(path, {"role": "developer"}).status_code == 403
    assert as_ours.delete(path).status_code == 403
    assert Membership.objects.get(user__username="gavin").role == "platform_admin"


def test_a_tenant_key_cannot_take_over_a_staff_account(as_ours: Api, ours: Side) -> None:
    get_user_model().objects.create_superuser("root", "root@example.com", "x" * 16)

    response = as_ours.post(
        f"/tenants/{ours.tenant.slug}/members",
        {"username": "root", "role": "developer", "password": "y" * 16},
    )

    assert response.status_code == 409
    assert get_user_model().objects.get(username="root").check_password("x" * 16)
    assert not Membership.objects.filter(user__username="root").exists()


def test_a_member_in_two_tenants_is_removed_from_one_only(
    platform: Api, ours: Side, theirs: Side
) -> None:
    platform.post(
        f"/tenants/{ours.tenant.slug}/members", {"username": theirs.username, "role": "developer"}
    )

    platform.delete(f"/tenants/{ours.tenant.slug}/members/{theirs.username}")

    assert list(
        Membership.objects.filter(user__username=theirs.username).values_list(
            "tenant__slug", flat=True
        )
    ) == [theirs.tenant.slug]


def test_a_tenant_key_sets_the_models_its_tenant_may_use(as_ours: Api, ours: Side) -> None:
    response = as_ours.patch(f"/tenants/{ours.tenant.slug}", {"allowed_models": ["demo"]})

    assert response.status_code == 200
    assert response.json()["allowed_models"] == ["demo"]
    assert response.json()["name"] == ours.tenant.name  # untouched
    event = ActivityEvent.objects.get(action="tenant.models", tenant=ours.tenant)
    assert event.details == {"allowed_models": ["demo"]}


@pytest.mark.parametrize(
    "lookalike",
    [
        "Piedpiper-Dev",  # another tenant's 'piedpiper-dev', in other case
        "\uff50iedpiper-dev",  # with a full-width 'p': sign-in folds it (NFKC) to theirs
    ],
)
def test_a_username_that_only_looks_different_from_an_existing_one_is_refused(
    as_ours: Api, ours: Side, theirs: Side, lookalike: str
) -> None:
    response = as_ours.post(
        f"/tenants/{ours.tenant.slug}/members",
        {"username": lookalike, "role": "developer", "password": "a long password 123"},
    )

    assert response.status_code in (409, 422), response.content
    assert response.json()["error"]["fields"][0]["field"] == "username"
    assert not get_user_model().objects.filter(username=lookalike).exists()
