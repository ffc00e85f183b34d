import pytest
from django.contrib.auth import get_user_model

from audit.activity.models import ActivityEvent
from audit.activity.services import Actor
from routing import services as routing_services
from tenants import services as tenant_services

pytestmark = pytest.mark.django_db


def test_a_key_created_and_revoked_by_a_user_leaves_two_events_naming_them() -> None:
    user = get_user_model().objects.create_user("dana", password="x" * 16)
    tenant = tenant_services.tenant_apply(slug="initech", name="Initech")
    team = tenant_services.team_apply(tenant=tenant, slug="ops", name="Ops", allowed_models=[])
    key, _ = tenant_services.key_create(team=team, name="ci", actor=Actor.user(user))
    tenant_services.key_revoke(key=key, actor=Actor.user(user))
    tenant_services.key_revoke(key=key, actor=Actor.user(user))  # already revoked: no event

    events = list(
        ActivityEvent.objects.filter(target_type="tenants.apikey", tenant=tenant).order_by("id")
    )
    assert [e.action for e in events] == ["key.create", "key.revoke"]
    assert {e.actor_label for e in events} == {"dana"}
    assert all(e.actor_user_id == user.pk and e.tenant_id == tenant.pk for e in events)


def test_a_provider_change_never_writes_its_credential_to_the_log() -> None:
    routing_services.provider_upsert(
        name="vendor",
        kind="openai",
        base_url="https://llm.example",
        credential="sk-very-secret-credential",
        region="eu",
        actor=Actor.admin_key("platform key gwa-1234"),
    )
    event = ActivityEvent.objects.get(action="provider.create", target_label="vendor")
    assert event.tenant_id is None
    assert event.actor_kind == "admin_key"
    assert "sk-very-secret" not in str(event.details)
