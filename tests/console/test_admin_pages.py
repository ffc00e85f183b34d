"""Tenant administration: teams, members and roles, all keys, models, and the activity log."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.activity.models import ActivityEvent
from tenants import services
from tenants.models import ApiKey, Membership, Team
from tests.console.conftest import Acme
from tests.support.versions import make_two_versions

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(acme: Acme) -> Client:
    client = Client()
    client.force_login(acme.users["tenant_admin"])
    return client


def test_a_tenant_admin_adds_a_team_and_it_is_logged_with_their_name(
    acme: Acme, admin: Client
) -> None:
    response = admin.post(
        f"/console/t/{acme.tenant.slug}/admin/teams/",
        {"slug": "research", "name": "Research", "allowed_models": []},
    )
    assert response.status_code == 302
    team = Team.objects.get(tenant=acme.tenant, slug="research")
    event = ActivityEvent.objects.get(action="team.create", target_id=str(team.pk))
    assert event.actor_label == "acme-tenant_admin" and event.tenant_id == acme.tenant.pk


def test_a_tenant_admin_changes_a_role_and_teams(acme: Acme, admin: Client) -> None:
    response = admin.post(
        f"/console/t/{acme.tenant.slug}/admin/members/{acme.membership.pk}/",
        {"role": "finance", "teams": []},
    )
    assert response.status_code == 302
    acme.membership.refresh_from_db()
    assert acme.membership.role == "finance"
    assert not acme.team.members.filter(pk=acme.users["developer"].pk).exists()


def test_a_tenant_admin_cannot_make_a_platform_admin(acme: Acme, admin: Client) -> None:
    response = admin.post(
        f"/console/t/{acme.tenant.slug}/admin/members/{acme.membership.pk}/",
        {"role": "platform_admin"},
    )
    assert response.status_code == 200  # the form refuses the choice
    acme.membership.refresh_from_db()
    assert acme.membership.role == "developer"


def test_a_tenant_admin_adds_a_member_who_can_then_sign_in(acme: Acme, admin: Client) -> None:
    response = admin.post(
        f"/console/t/{acme.tenant.slug}/admin/members/",
        {
            "username": "newbie",
            "email": "newbie@acme.example",
            "role": "developer",
            "teams": [acme.team.pk],
            "password": "a long enough password",
        },
    )
    assert response.status_code == 302
    assert Membership.objects.filter(user__username="newbie", tenant=acme.tenant).exists()
    login = Client().post(
        "/console/login/", {"username": "newbie", "password": "a long enough password"}
    )
    assert login.status_code == 302 and login["Location"] == "/console/"


def test_a_tenant_admin_sees_and_revokes_any_key_of_the_tenant(acme: Acme, admin: Client) -> None:
    page = admin.get(f"/console/t/{acme.tenant.slug}/admin/keys/").content.decode()
    assert "quant-notebook" in page and "ops-bot" not in page
    response = admin.post(f"/console/t/{acme.tenant.slug}/keys/{acme.key.pk}/revoke/")
    assert response.status_code == 302
    assert ApiKey.objects.get(pk=acme.key.pk).revoked_at is not None
    other = admin.post(f"/console/t/{acme.tenant.slug}/keys/{acme.other_key.pk}/revoke/")
    assert other.status_code == 404
    assert ApiKey.objects.get(pk=acme.other_key.pk).revoked_at is None


def test_the_activity_log_searches_as_you_type_and_exports(acme: Acme, admin: Client) -> None:
    admin.post(f"/console/t/{acme.tenant.slug}/keys/{acme.key.pk}/revoke/")
    url = f"/console/t/{acme.tenant.slug}/admin/activity/"
    partial = admin.get(url, {"q": "revoke"}, HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<div id="results">')
    assert "key.revoke" in partial and "key.create" not in partial
    full = admin.get(url).content.decode()
    assert "<nav" in full and "key.create" in full
    export = admin.get(f"/console/t/{acme.tenant.slug}/admin/activity.csv", {"q": "revoke"})
    assert export["Content-Type"] == "text/csv"
    lines = export.content.decode().splitlines()
    assert lines[0].startswith("occurred_at,actor,action")
    assert len(lines) == 2 and "acme-tenant_admin" in lines[1]


def test_the_activity_export_keeps_every_filter_of_the_page(acme: Acme, admin: Client) -> None:
    admin.post(f"/console/t/{acme.tenant.slug}/keys/{acme.key.pk}/revoke/")
    url = f"/console/t/{acme.tenant.slug}/admin/activity/"

    partial = admin.get(url, {"action": "key.revoke"}, HTTP_HX_REQUEST="true").content.decode()

    # The export link travels with the results, filters and all (not only the search text).
    assert "activity.csv?action=key.revoke" in partial
    export = admin.get(f"/console/t/{acme.tenant.slug}/admin/activity.csv?action=key.revoke")
    assert len(export.content.decode().splitlines()) == 2


@pytest.mark.parametrize("query", ["q=" + "x" * 201, "actoin=key.revoke"])
def test_an_invalid_activity_filter_shows_its_error_and_exports_nothing(
    acme: Acme, admin: Client, query: str
) -> None:
    admin.post(f"/console/t/{acme.tenant.slug}/keys/{acme.key.pk}/revoke/")

    page = admin.get(f"/console/t/{acme.tenant.slug}/admin/activity/?{query}")
    export = admin.get(f"/console/t/{acme.tenant.slug}/admin/activity.csv?{query}")

    assert page.status_code == 400
    assert 'data-testid="filter-errors"' in page.content.decode()
    assert "key.revoke</code>" not in page.content.decode()
    assert export.status_code == 400
    assert export["Content-Type"].startswith("text/html")
    assert "nothing was exported" in export.content.decode()


def test_the_tenants_models_are_saved_and_logged(acme: Acme, admin: Client, world) -> None:
    response = admin.post(
        f"/console/t/{acme.tenant.slug}/admin/models/", {"allowed_models": ["demo"]}
    )
    assert response.status_code == 302
    acme.tenant.refresh_from_db()
    assert acme.tenant.allowed_models == ["demo"]
    assert ActivityEvent.objects.filter(action="tenant.models", tenant=acme.tenant).exists()


def test_the_navigation_shows_only_what_the_role_may_open(acme: Acme) -> None:
    client = Client()
    client.force_login(acme.users["developer"])
    page = client.get(f"/console/t/{acme.tenant.slug}/").content.decode()
    assert "My keys" in page and "Activity log" not in page
    client.force_login(acme.users["compliance"])
    page = client.get(f"/console/t/{acme.tenant.slug}/").content.decode()
    assert "Overview" in page and "My keys" not in page and "Members" not in page
    client.force_login(acme.users["tenant_admin"])
    page = client.get(f"/console/t/{acme.tenant.slug}/").content.decode()
    assert "Activity log" in page and "My keys" in page


@pytest.fixture
def versions(db: None) -> None:
    make_two_versions()


def test_a_tenant_admin_pins_a_teams_model_to_a_version_and_it_is_logged(
    acme: Acme, admin: Client, versions: None
) -> None:
    path = f"/console/t/{acme.tenant.slug}/admin/teams/{acme.team.pk}/"
    page = admin.get(path).content.decode()
    assert "Version pins" in page and "pins-v2" in page  # the versions one can pin are listed

    response = admin.post(
        path,
        {"name": acme.team.name, "model_pins": "pins-chat = pins-v2\n\npins-v1 = pins-model-2025"},
    )

    assert response.status_code == 302
    acme.team.refresh_from_db()
    assert acme.team.model_pins == {"pins-chat": "pins-v2", "pins-v1": "pins-model-2025"}
    event = ActivityEvent.objects.get(action="team.pins_set", target_id=str(acme.team.pk))
    assert event.actor_label == "acme-tenant_admin"
    assert "pins-chat = pins-v2" in admin.get(path).content.decode()  # shown for the next edit


def test_a_pin_to_a_version_the_model_lacks_is_refused_with_the_choices(
    acme: Acme, admin: Client, versions: None
) -> None:
    path = f"/console/t/{acme.tenant.slug}/admin/teams/{acme.team.pk}/"

    unknown = admin.post(path, {"name": acme.team.name, "model_pins": "pins-chat = gpt-retired"})
    malformed = admin.post(path, {"name": acme.team.name, "model_pins": "pins-chat pins-v1"})

    assert unknown.status_code == 400
    assert (
        "&#x27;pins-chat&#x27; has no deployment &#x27;gpt-retired&#x27;"
        in unknown.content.decode()
    )
    assert "pins-model-2026" in unknown.content.decode()
    assert malformed.status_code == 400
    assert "write &#x27;model = deployment&#x27;" in malformed.content.decode()
    acme.team.refresh_from_db()
    assert acme.team.model_pins == {}


def test_a_pin_for_a_model_the_team_is_not_allowed_is_refused(
    acme: Acme, admin: Client, versions: None
) -> None:
    response = admin.post(
        f"/console/t/{acme.tenant.slug}/admin/teams/{acme.team.pk}/",
        {
            "name": acme.team.name,
            "allowed_models": ["pins-v1"],
            "model_pins": "pins-chat = pins-v1",
        },
    )

    assert response.status_code == 400
    assert "is not a model this team or key may use" in response.content.decode()
    acme.team.refresh_from_db()
    assert acme.team.allowed_models == [] and acme.team.model_pins == {}


def test_the_key_page_shows_the_keys_pins_and_its_teams(acme: Acme, admin: Client) -> None:
    services.team_pins_set(team=acme.team, model_pins={"demo": "mock-gpt", "chat": "gpt-4o"})
    services.key_pins_set(key=acme.key, model_pins={"chat": "gpt-4o-mini"})

    page = admin.get(f"/console/t/{acme.tenant.slug}/keys/{acme.key.pk}/").content.decode()

    assert "chat → <code>gpt-4o-mini</code>," in page  # the key's own overrides the team's
    assert "demo → <code>mock-gpt</code> (team's)" in page
    assert "gpt-4o</code>" not in page
