"""Version pinning: a team or key pinned to one deployment of a model gets that one, or an error."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import openai
import pytest

from audit.activity.models import ActivityEvent
from audit.activity.services import Actor
from tenants import services as tenants
from tenants.auth import load_identity
from tenants.keys import hash_key
from tests.conftest import wait_for_record
from tests.support.world import build_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


@dataclass(frozen=True)
class Pinned:
    team_key: str  # the team pins canary-chat to the canary, with-fallback to its 429 deployment
    key_pinned: str  # its own pin: canary-chat to the stable version, by upstream model


@pytest.fixture(scope="module")
def pinned(world: Any, django_db_blocker: Any) -> Pinned:
    with django_db_blocker.unblock():
        pinned = build_tenant(
            f"pinned-{uuid.uuid4().hex[:6]}",
            name="Pinned",
            teams=["desk"],
            keys=["team-pins", "own-pin"],
        )
        tenants.team_pins_set(
            team=pinned.team,
            model_pins={
                "canary-chat": "mock-gpt-next",
                "with-fallback": "mock-gpt-limited",
                "demo": "gpt-retired-2024",
            },
        )
        own = pinned.keys["own-pin"].api_key
        tenants.key_pins_set(key=own, model_pins={"canary-chat": "mock-gpt-2026-01-01"})
    return Pinned(pinned.key("team-pins"), pinned.key("own-pin"))


def client(gateway: Any, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)


def ask(gateway: Any, key: str, model: str) -> Any:
    return client(gateway, key).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Which version are you?"}]
    )


def test_a_team_pin_sends_every_request_to_the_pinned_deployment(gateway, pinned):
    served = {ask(gateway, pinned.team_key, "canary-chat").headers["x-gateway-deployment"]}
    for _ in range(19):
        served.add(ask(gateway, pinned.team_key, "canary-chat").headers["x-gateway-deployment"])
    assert served == {"mock-gpt-next"}  # unpinned, the canary gets a small share


def test_a_key_pin_overrides_its_teams_and_may_name_the_upstream_model(gateway, pinned):
    raw = ask(gateway, pinned.key_pinned, "canary-chat")
    assert raw.headers["x-gateway-deployment"] == "mock-gpt"
    assert raw.parse().model == "mock-gpt-2026-01-01"


def test_a_failing_pinned_deployment_does_not_fall_back_to_another_version(gateway, pinned):
    with pytest.raises(openai.RateLimitError) as limited:
        ask(gateway, pinned.team_key, "with-fallback")  # unpinned, mock-gpt would answer
    record = wait_for_record(limited.value.response.headers["x-request-id"])
    # Only the pinned deployment was ever tried (it may also be listed as cooling down, when an
    # earlier test left it so): never another version.
    assert {a["deployment"] for a in record.attempts} == {"mock-gpt-limited"}
    assert any(a["status"] == 429 for a in record.attempts)


def test_a_pin_the_route_no_longer_has_is_a_clear_refusal(gateway, pinned):
    with pytest.raises(openai.ConflictError) as conflict:
        ask(gateway, pinned.team_key, "demo")
    error = conflict.value.body
    assert error["code"] == "pinned_deployment_unavailable" and error["param"] == "model"
    assert "gpt-retired-2024" in error["message"]
    record = wait_for_record(conflict.value.response.headers["x-request-id"])
    assert (record.status, record.attempts) == ("rejected", [])


def test_pins_are_set_by_an_actor_and_reach_the_identity(world, django_user_model):
    admin = django_user_model.objects.create_user(username=f"admin-{uuid.uuid4().hex[:6]}")
    tenant = tenants.tenant_apply(slug=f"pins-{uuid.uuid4().hex[:6]}", name="Pins")
    team = tenants.team_apply(tenant=tenant, slug="t", name="T", allowed_models=[])
    tenants.team_pins_set(
        team=team, model_pins={"chat": "a", "embed": "e"}, actor=Actor.user(admin)
    )
    key, material = tenants.key_create(team=team, name="k")
    tenants.key_pins_set(key=key, model_pins={"chat": "b"}, actor=Actor.user(admin))
    identity = load_identity(hash_key(material.plaintext))
    assert identity is not None
    assert (identity.pin("chat"), identity.pin("embed"), identity.pin("other")) == ("b", "e", None)
    actions = ActivityEvent.objects.filter(tenant_id=tenant.pk, action__endswith="pins_set")
    assert sorted(r.action for r in actions) == ["key.pins_set", "team.pins_set"]
    with pytest.raises(ValueError, match="model pin"):
        tenants.key_pins_set(key=key, model_pins={"chat": " "})
    successor, _ = tenants.key_rotate(key=key, grace=timedelta(0))
    assert successor.model_pins == {"chat": "b"}
