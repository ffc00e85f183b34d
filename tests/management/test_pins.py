"""Version pins through the management API: set on teams and keys, checked against the routes,
logged with the admin key, and carried to the identity the proxy routes by."""

from __future__ import annotations

import pytest

from audit.activity.models import ActivityEvent
from routing.models import Deployment
from tenants import services as tenant_services
from tenants.auth import load_identity
from tenants.keys import hash_key
from tenants.models import ApiKey, Team
from tests.management.conftest import Api, Side
from tests.support.versions import make_two_versions

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(db: None) -> None:
    make_two_versions()


def events(side: Side, action: str) -> list[ActivityEvent]:
    return list(ActivityEvent.objects.filter(tenant=side.tenant, action=action).order_by("id"))


def test_a_team_created_with_pins_returns_them_and_logs_who_set_them(
    versions: None, as_ours: Api, ours: Side
) -> None:
    created = as_ours.post(
        f"/tenants/{ours.tenant.slug}/teams",
        {"slug": "steady", "name": "Steady", "model_pins": {"pins-chat": "pins-v1"}},
    )

    assert created.status_code == 201, created.content
    assert created.json()["model_pins"] == {"pins-chat": "pins-v1"}
    team = Team.objects.get(tenant=ours.tenant, slug="steady")
    assert team.model_pins == {"pins-chat": "pins-v1"}
    [event] = events(ours, "team.pins_set")
    assert event.actor_kind == "admin_key" and event.actor_label.startswith("admin key Hooli")
    assert event.details == {"model_pins": {"pins-chat": "pins-v1"}}


def test_a_team_patch_of_pins_alone_keeps_the_rest_and_omitting_them_keeps_the_pins(
    versions: None, as_ours: Api, ours: Side
) -> None:
    path = f"/tenants/{ours.tenant.slug}/teams/{ours.team.slug}"

    pinned = as_ours.patch(path, {"model_pins": {"pins-chat": "pins-model-2026"}})
    renamed = as_ours.patch(path, {"name": "Research, renamed"})
    cleared = as_ours.patch(path, {"model_pins": {}})

    assert pinned.status_code == 200, pinned.content
    assert pinned.json()["name"] == ours.team.name
    assert renamed.json()["model_pins"] == {"pins-chat": "pins-model-2026"}
    assert cleared.json()["model_pins"] == {} and cleared.json()["name"] == "Research, renamed"
    assert [e.details["model_pins"] for e in events(ours, "team.pins_set")] == [
        {"pins-chat": "pins-model-2026"},
        {},
    ]
    assert len(events(ours, "team.update")) == 1  # the rename only


def test_a_pin_to_a_version_the_route_lacks_is_refused_naming_the_field(
    versions: None, as_ours: Api, ours: Side
) -> None:
    response = as_ours.patch(
        f"/tenants/{ours.tenant.slug}/teams/{ours.team.slug}",
        {"model_pins": {"pins-chat": "gpt-retired-2024"}},
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    [field] = error["fields"]
    assert field["field"] == "model_pins.pins-chat"
    assert "gpt-retired-2024" in field["message"]
    assert "pins-v1" in field["message"] and "pins-model-2026" in field["message"]  # the choices
    ours.team.refresh_from_db()
    assert ours.team.model_pins == {} and not events(ours, "team.pins_set")


def test_a_pin_for_a_model_the_team_may_not_use_is_refused(
    versions: None, as_ours: Api, ours: Side
) -> None:
    response = as_ours.patch(
        f"/tenants/{ours.tenant.slug}/teams/{ours.team.slug}",
        {"allowed_models": ["pins-v1"], "model_pins": {"pins-chat": "pins-v1"}},
    )

    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "model_pins.pins-chat"
    assert "may use" in response.json()["error"]["message"]
    ours.team.refresh_from_db()
    assert ours.team.allowed_models == []  # nothing of the refused request was kept


def test_a_key_pin_set_through_the_api_reaches_the_identity_the_proxy_routes_by(
    versions: None, as_ours: Api, ours: Side
) -> None:
    tenant_services.team_pins_set(team=ours.team, model_pins={"pins-chat": "pins-v2"})

    created = as_ours.post(
        f"/tenants/{ours.tenant.slug}/keys",
        {"team": ours.team.slug, "name": "pinned", "model_pins": {"pins-v1": "pins-model-2025"}},
    )

    assert created.status_code == 201, created.content
    assert created.json()["model_pins"] == {"pins-v1": "pins-model-2025"}
    identity = load_identity(hash_key(created.json()["key"]))
    assert identity is not None
    assert identity.pin("pins-v1") == "pins-model-2025"
    assert identity.pin("pins-chat") == "pins-v2"  # the team's pin still applies
    logged = ActivityEvent.objects.filter(
        target_type="tenants.apikey", target_id=str(created.json()["id"])
    )
    assert [e.action for e in logged.order_by("id")] == ["key.create", "key.pins_set"]


def test_a_key_pin_must_stay_within_the_models_the_key_may_use(
    versions: None, as_ours: Api, ours: Side
) -> None:
    path = f"/tenants/{ours.tenant.slug}/keys/{ours.key.pk}"

    narrowed = as_ours.patch(
        path, {"allowed_models": ["pins-v1"], "model_pins": {"pins-chat": "pins-v1"}}
    )
    pinned = as_ours.patch(path, {"model_pins": {"pins-chat": "pins-v1"}})
    got = as_ours.get(path)

    assert narrowed.status_code == 422
    assert narrowed.json()["error"]["fields"][0]["field"] == "model_pins.pins-chat"
    assert pinned.status_code == 200 and got.json()["model_pins"] == {"pins-chat": "pins-v1"}
    assert ApiKey.objects.get(pk=ours.key.pk).allowed_models == []
    assert not events(ours, "key.update")  # a pins-only change is logged as one
    assert len(events(ours, "key.pins_set")) == 1


def test_a_deactivated_deployment_can_no_longer_be_pinned(
    versions: None, as_ours: Api, ours: Side
) -> None:
    Deployment.objects.filter(name="pins-v2").update(is_active=False)

    response = as_ours.patch(
        f"/tenants/{ours.tenant.slug}/teams/{ours.team.slug}",
        {"model_pins": {"pins-chat": "pins-v2"}},
    )

    assert response.status_code == 422
    assert "pin one of: pins-v1 (upstream pins-model-2025)" in response.json()["error"]["message"]
