"""Virtual keys and admin keys through the management API: shown once, prefixes after that."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from audit.activity.models import ActivityEvent
from tenants import services as tenant_services
from tenants.auth import load_identity
from tenants.keys import hash_key
from tenants.models import ApiKey
from tests.management.conftest import Api, Side

pytestmark = pytest.mark.django_db


def test_a_key_is_shown_once_then_only_by_its_prefix(as_ours: Api, ours: Side) -> None:
    base = f"/tenants/{ours.tenant.slug}/keys"
    created = as_ours.post(
        base, {"team": ours.team.slug, "name": "batch jobs", "owner": ours.username}
    )

    assert created.status_code == 201, created.content
    plaintext = created.json()["key"]
    assert plaintext.startswith("gw-") and created.json()["prefix"] == plaintext[:10]
    assert ApiKey.objects.get(pk=created.json()["id"]).key_hash == hash_key(plaintext)
    assert created.json()["owner"] == ours.username
    for path in (base, f"{base}/{created.json()['id']}", f"{base}?team={ours.team.slug}"):
        text = as_ours.get(path).content.decode()
        assert created.json()["prefix"] in text
        assert plaintext not in text and ours.key_plaintext not in text
        assert "key_hash" not in text


def test_no_plaintext_key_ever_reaches_the_activity_log(
    platform: Api, as_ours: Api, ours: Side
) -> None:
    key = as_ours.post(f"/tenants/{ours.tenant.slug}/keys", {"team": ours.team.slug, "name": "k"})
    admin = platform.post("/admin-keys", {"name": "ci", "tenant": ours.tenant.slug})
    as_ours.post(f"/tenants/{ours.tenant.slug}/keys/{key.json()['id']}/revoke")

    secrets = [key.json()["key"], admin.json()["key"]]
    for event in ActivityEvent.objects.all():
        logged = f"{event.actor_label} {event.target_label} {event.details}"
        assert not [s for s in secrets if s in logged], logged


def test_a_key_may_only_narrow_what_its_team_allows(as_ours: Api, ours: Side) -> None:
    tenant_services.team_apply(
        tenant=ours.tenant, slug="fenced", name="Fenced", allowed_models=["demo", "embed"]
    )
    base = f"/tenants/{ours.tenant.slug}/keys"

    refused = as_ours.post(base, {"team": "fenced", "name": "wide", "allowed_models": ["gpt-x"]})
    narrowed = as_ours.post(base, {"team": "fenced", "name": "narrow", "allowed_models": ["demo"]})

    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["field"] == "allowed_models"
    assert "gpt-x" in refused.json()["error"]["message"]
    assert narrowed.status_code == 201


def test_a_live_key_name_is_unique_in_a_tenant(as_ours: Api, ours: Side) -> None:
    response = as_ours.post(
        f"/tenants/{ours.tenant.slug}/keys", {"team": ours.team.slug, "name": ours.key.name}
    )

    assert response.status_code == 409
    assert ours.key.name in response.json()["error"]["message"]


def test_a_key_expiry_and_models_are_updated_and_logged(as_ours: Api, ours: Side) -> None:
    path = f"/tenants/{ours.tenant.slug}/keys/{ours.key.pk}"

    updated = as_ours.patch(
        path, {"expires_at": "2030-01-01T00:00:00Z", "allowed_models": ["demo"]}
    )
    models_only = as_ours.patch(path, {"allowed_models": []})
    cleared = as_ours.patch(path, {"expires_at": None})

    assert updated.json()["allowed_models"] == ["demo"]
    assert models_only.json()["expires_at"] is not None  # omitted: kept
    assert cleared.json()["expires_at"] is None  # null: removed
    ours.key.refresh_from_db()
    assert ours.key.expires_at is None and ours.key.allowed_models == []
    event = (
        ActivityEvent.objects.filter(action="key.update", tenant=ours.tenant).order_by("id").first()
    )
    assert event is not None and event.actor_kind == "admin_key"
    assert event.details["expires_at"] == datetime(2030, 1, 1, tzinfo=UTC).isoformat()


def test_a_revoked_key_stays_listed_and_cannot_be_changed(as_ours: Api, ours: Side) -> None:
    path = f"/tenants/{ours.tenant.slug}/keys/{ours.key.pk}"

    revoked = as_ours.post(f"{path}/revoke")
    change = as_ours.patch(path, {"allowed_models": ["demo"]})
    live = as_ours.get(f"/tenants/{ours.tenant.slug}/keys?include_revoked=false").json()["items"]

    assert revoked.json()["revoked_at"] is not None
    assert change.status_code == 409
    assert ours.key.pk not in [k["id"] for k in live]


def test_a_tenant_key_creates_admin_keys_for_its_tenant_only(
    as_ours: Api, ours: Side, theirs: Side
) -> None:
    own = as_ours.post("/admin-keys", {"name": "deploy bot", "tenant": ours.tenant.slug})
    platform_wide = as_ours.post("/admin-keys", {"name": "escalate"})

    assert own.status_code == 201 and own.json()["tenant"] == ours.tenant.slug
    assert own.json()["key"].startswith("gwa-")
    assert own.json()["created_by"].startswith("admin key Hooli terraform")
    assert platform_wide.status_code == 403
    listed = as_ours.get("/admin-keys").json()["items"]
    assert {k["tenant"] for k in listed} == {ours.tenant.slug}
    assert all("key" not in k for k in listed)


def test_a_revoked_admin_key_is_refused_at_once(platform: Api, ours: Side) -> None:
    assert Api(ours.admin_key).get("/tenants").status_code == 200

    platform.post(f"/admin-keys/{ours.admin_key_id}/revoke")
    refused = Api(ours.admin_key).get("/tenants")

    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "revoked_admin_key"


def test_a_proxy_key_is_told_it_is_the_wrong_kind(ours: Side) -> None:
    response = Api(ours.key_plaintext).get("/tenants")

    assert response.status_code == 401
    assert "admin key (gwa-" in response.json()["error"]["message"]


def test_long_lists_come_in_pages(as_ours: Api, ours: Side) -> None:
    for n in range(3):
        as_ours.post(f"/tenants/{ours.tenant.slug}/keys", {"team": ours.team.slug, "name": f"k{n}"})

    page = as_ours.get(f"/tenants/{ours.tenant.slug}/keys?limit=2&offset=1").json()

    assert page["count"] == 4
    assert [k["name"] for k in page["items"]] == ["k0", "k1"]


def test_the_activity_log_reads_back_who_did_what(as_ours: Api, platform: Api, ours: Side) -> None:
    as_ours.post(f"/tenants/{ours.tenant.slug}/keys/{ours.key.pk}/revoke")

    own = as_ours.get(f"/tenants/{ours.tenant.slug}/activity?action=key.").json()["items"]
    everything = platform.get("/activity?action=key.revoke").json()["items"]

    assert [(e["action"], e["actor_kind"]) for e in own] == [
        ("key.revoke", "admin_key"),
        ("key.create", "system"),
    ]
    assert own[0]["actor_label"].startswith("admin key Hooli terraform (gwa-")
    assert own[0] in everything


def test_a_rotated_key_hands_over_to_a_successor_after_the_grace(as_ours: Api, ours: Side) -> None:
    path = f"/tenants/{ours.tenant.slug}/keys/{ours.key.pk}/rotate"

    rotated = as_ours.post(path, {"grace_seconds": 600})

    assert rotated.status_code == 201, rotated.content
    successor = rotated.json()
    assert successor["name"] == ours.key.name and successor["id"] != ours.key.pk
    assert successor["key"].startswith("gw-") and successor["key"] != ours.key_plaintext
    old = load_identity(hash_key(ours.key_plaintext))
    assert old is not None and not old.revoked and old.expires_at is not None
    assert 590 <= (old.expires_at - timezone.now()).total_seconds() <= 600
    listed = as_ours.get(f"/tenants/{ours.tenant.slug}/keys").content.decode()
    assert successor["key"] not in listed and successor["prefix"] in listed
    again = as_ours.post(
        f"/tenants/{ours.tenant.slug}/keys/{successor['id']}/rotate", {"grace_seconds": 0}
    )
    assert again.status_code == 201
    first_successor = load_identity(hash_key(successor["key"]))
    assert first_successor is not None and first_successor.revoked
    event = ActivityEvent.objects.filter(action="key.rotate", tenant=ours.tenant).first()
    assert event is not None and event.actor_kind == "admin_key"
    assert successor["key"] not in str(event.details)


def test_a_revoked_key_cannot_be_rotated(as_ours: Api, ours: Side) -> None:
    base = f"/tenants/{ours.tenant.slug}/keys/{ours.key.pk}"
    as_ours.post(f"{base}/revoke")

    assert as_ours.post(f"{base}/rotate", {"grace_seconds": 60}).status_code == 409


def test_a_key_already_rotated_cannot_be_rotated_again(as_ours: Api, ours: Side) -> None:
    # A second rotation would mint another live successor from a key on its way out, and the
    # old key would forget the first successor.
    path = f"/tenants/{ours.tenant.slug}/keys/{ours.key.pk}/rotate"
    first = as_ours.post(path, {"grace_seconds": 600})
    assert first.status_code == 201

    again = as_ours.post(path, {"grace_seconds": 600})

    assert again.status_code == 409, again.content
    assert again.json()["error"]["code"] == "conflict"
    live = ApiKey.objects.filter(tenant=ours.tenant, revoked_at__isnull=True)
    assert live.count() == 2
    ours.key.refresh_from_db()
    assert ours.key.replaced_by_id == first.json()["id"]
