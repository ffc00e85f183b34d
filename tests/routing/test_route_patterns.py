"""Route name patterns through the live gateway: the names Claude Code and Codex default to are
served by `claude-*` and `gpt-5*` routes, with allowed models, pins and residency kept."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import openai
import pytest

from routing import services as routing
from routing.models import Deployment, Route
from tenants import services as tenants
from tests.conftest import wait_for_record
from tests.support.world import Key, TeamSpec, build_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

PATTERNS = ("claude-*", "claude-opus-*", "gpt-5*")


@dataclass(frozen=True)
class Keys:
    pattern_team: str  # its team may use "claude-*" only
    named_key: str  # same team, the key itself lists "claude-sonnet-4-5"
    pinned: str  # its team pins "claude-*" to mock-gpt


@pytest.fixture(scope="module")
def keys(world: Any, gateway: Any, django_db_blocker: Any) -> Any:
    with django_db_blocker.unblock():
        claude, gpt = (
            Deployment.objects.get(name="claude-fallback"),
            Deployment.objects.get(name="mock-gpt"),
        )
        routing.route_upsert(alias="claude-*", description="", deployments=[claude, gpt])
        routing.route_upsert(alias="claude-opus-*", description="", deployments=[gpt])
        routing.route_upsert(alias="gpt-5*", description="", deployments=[gpt])
        patterns = build_tenant(
            f"patterns-{uuid.uuid4().hex[:6]}",
            name="Patterns",
            teams=[TeamSpec("coders", allowed_models=["claude-*"]), "pins"],
            keys=[
                "pattern",
                Key("named", allowed_models=["claude-sonnet-4-5"]),
                Key("pinned", team="pins"),
            ],
        )
        tenants.team_pins_set(team=patterns.teams["pins"], model_pins={"claude-*": "mock-gpt"})
    _wait_until_served(gateway, world.key, "gpt-5.1-codex")
    yield Keys(patterns.key("pattern"), patterns.key("named"), patterns.key("pinned"))
    with django_db_blocker.unblock():
        Route.objects.filter(alias__in=PATTERNS).delete()
    time.sleep(0.6)  # the live gateway's routing table forgets them (GATEWAY_ROUTES_CACHE_SECONDS)


def _wait_until_served(gateway: Any, key: str, name: str) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        answer = httpx.get(
            f"{gateway.api_url}/models/{name}", headers={"authorization": f"Bearer {key}"}
        )
        if answer.status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(f"the gateway never served {name}")


def chat(gateway: Any, key: str, model: str) -> Any:
    client = openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Which model are you?"}]
    )


def test_claude_codes_default_name_is_served_natively_by_the_claude_pattern(gateway, world, keys):
    client = anthropic.Anthropic(base_url=gateway.url, api_key=world.key, max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5-20250929",
        max_tokens=64,
        messages=[{"role": "user", "content": "Hello"}],
    )
    assert raw.headers["x-gateway-route"] == "claude-*"
    assert raw.headers["x-gateway-deployment"] == "claude-fallback"
    record = wait_for_record(raw.headers["x-request-id"])
    # The record keeps the name the client asked for and the route that served it.
    assert record.model_requested == "claude-sonnet-4-5-20250929"
    assert record.route_alias == "claude-*"
    assert record.request_body["model"] == "mock-claude"  # the deployment's, not the client's


def test_codexs_default_name_is_served_by_the_gpt5_pattern(gateway, world, keys):
    client = openai.OpenAI(base_url=gateway.api_url, api_key=world.key, max_retries=0)
    raw = client.responses.with_raw_response.create(model="gpt-5.1-codex", input="Hi")
    assert raw.parse().status == "completed"
    assert raw.headers["x-gateway-route"] == "gpt-5*"
    record = wait_for_record(raw.headers["x-request-id"])
    assert (record.model_requested, record.route_alias) == ("gpt-5.1-codex", "gpt-5*")


def test_the_most_specific_pattern_wins_and_exact_names_come_first(gateway, world, keys):
    assert chat(gateway, world.key, "claude-opus-4-1").headers["x-gateway-route"] == (
        "claude-opus-*"
    )
    # A deployment's own name matches "claude-*" too, but an exact name always wins.
    exact = chat(gateway, world.key, "claude-fallback")
    assert exact.headers["x-gateway-route"] == "claude-fallback"
    assert wait_for_record(exact.headers["x-request-id"]).route_alias == ""
    with pytest.raises(openai.NotFoundError):
        chat(gateway, world.key, "gemini-2.5-pro")


def test_an_allowed_list_admits_a_name_it_lists_or_the_pattern_route_serving_it(gateway, keys):
    assert chat(gateway, keys.pattern_team, "claude-haiku-4-5").status_code == 200
    for refused in ("gpt-5", "demo"):
        with pytest.raises(openai.NotFoundError):
            chat(gateway, keys.pattern_team, refused)
    # The team lists the pattern, the key the name: both admit "claude-sonnet-4-5" only.
    assert chat(gateway, keys.named_key, "claude-sonnet-4-5").status_code == 200
    with pytest.raises(openai.NotFoundError):
        chat(gateway, keys.named_key, "claude-haiku-4-5")


def test_a_pin_on_the_pattern_route_holds_every_name_it_serves(gateway, keys):
    for name in ("claude-sonnet-4-5", "claude-haiku-4-5"):
        assert chat(gateway, keys.pinned, name).headers["x-gateway-deployment"] == "mock-gpt"


def test_residency_applies_to_pattern_routes(gateway, world, keys):
    with pytest.raises(openai.PermissionDeniedError) as refused:
        chat(gateway, world.eu_key, "claude-sonnet-4-5")
    assert refused.value.body["code"] == "residency_unavailable"


def test_models_lists_exact_names_and_retrieves_a_name_a_pattern_serves(gateway, world, keys):
    client = openai.OpenAI(base_url=gateway.api_url, api_key=world.key, max_retries=0)
    listed = {model.id for model in client.models.list()}
    assert "demo" in listed and not {name for name in listed if "*" in name}
    assert client.models.retrieve("claude-sonnet-4-5").id == "claude-sonnet-4-5"
    restricted = openai.OpenAI(base_url=gateway.api_url, api_key=keys.pattern_team, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        restricted.models.retrieve("gpt-5.1-codex")
