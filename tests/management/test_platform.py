"""Providers, deployments and routes through the management API (platform keys only)."""

from __future__ import annotations

import pytest

from audit.activity.models import ActivityEvent
from routing.cache.core.policy import DEFAULT_SIMILARITY, CachePolicy
from routing.models import Provider, Route
from routing.table import load_routing_table
from tests.management.conftest import Api

pytestmark = pytest.mark.django_db

SECRET = "sk-live-upstream-credential-0123456789"


def test_a_provider_credential_goes_in_and_never_comes_out(platform: Api) -> None:
    put = platform.put(
        "/providers/vendor-x",
        {"kind": "openai", "base_url": "https://llm.example/v1", "credential": SECRET},
    )

    assert put.status_code == 200, put.content
    assert put.json()["has_credential"] is True
    assert Provider.objects.get(name="vendor-x").get_credential() == SECRET
    for response in (put, platform.get("/providers"), platform.get("/providers/vendor-x")):
        assert SECRET not in response.content.decode()
        assert "credential_encrypted" not in response.content.decode()
    assert SECRET not in str(list(ActivityEvent.objects.values_list("details", flat=True)))


def test_omitting_the_credential_keeps_it(platform: Api) -> None:
    body = {"kind": "openai", "base_url": "https://llm.example/v1"}
    platform.put("/providers/vendor-x", {**body, "credential": SECRET})

    updated = platform.put(
        "/providers/vendor-x", {**body, "region": "eu", "requests_per_minute": 600}
    )

    provider = Provider.objects.get(name="vendor-x")
    assert provider.get_credential() == SECRET and provider.region == "eu"
    assert updated.json()["requests_per_minute"] == provider.requests_per_minute == 600


def test_a_route_is_built_from_deployments_in_order(platform: Api) -> None:
    platform.put("/providers/vendor-x", {"kind": "anthropic", "base_url": "https://a.example"})
    for name in ("primary-model", "backup-model"):
        created = platform.put(
            f"/deployments/{name}",
            {"provider": "vendor-x", "upstream_model": name, "input_price_per_mtok": "2.5"},
        )
        assert created.status_code == 200, created.content

    route = platform.put(
        "/routes/smart-chat",
        {
            "strategy": "weighted",
            "sticky": True,
            "targets": [
                {"deployment": "primary-model", "weight": 90},
                {"deployment": "backup-model", "weight": 10},
            ],
        },
    )

    assert route.status_code == 200, route.content
    assert route.json()["targets"] == [
        {"deployment": "primary-model", "weight": 90},
        {"deployment": "backup-model", "weight": 10},
    ]
    assert Route.objects.get(alias="smart-chat").strategy == "weighted"
    assert platform.get("/deployments/primary-model").json()["provider"] == "vendor-x"
    assert ActivityEvent.objects.filter(
        action="route.create", actor_kind="admin_key", target_label="smart-chat"
    ).exists()


def test_a_route_naming_an_unknown_deployment_says_which(platform: Api) -> None:
    response = platform.put(
        "/routes/smart-chat", {"targets": [{"deployment": "nope"}], "strategy": "ordered"}
    )

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [
        {"field": "targets[0].deployment", "message": "no deployment 'nope'"}
    ]
    assert not Route.objects.filter(alias="smart-chat").exists()


def test_a_route_alias_may_be_a_star_pattern_and_nothing_else(platform: Api) -> None:
    platform.put("/providers/vendor-x", {"kind": "openai", "base_url": "https://a.example"})
    platform.put("/deployments/coder", {"provider": "vendor-x", "upstream_model": "coder"})
    targets = {"targets": [{"deployment": "coder"}]}

    assert platform.put("/routes/claude-*", targets).status_code == 200
    for alias, why in (("*", "literal text"), ("gpt-%3F", "only '*'"), ("gpt-**", "'**'")):
        refused = platform.put(f"/routes/{alias}", targets)
        assert refused.status_code == 422, alias
        assert refused.json()["error"]["fields"][0]["field"] == "alias"
        assert why in refused.json()["error"]["message"]
    assert Route.objects.filter(alias="claude-*").exists()
    assert not Route.objects.filter(alias__in=["*", "gpt-?", "gpt-**"]).exists()


def test_the_route_service_refuses_an_invalid_alias_too(platform: Api) -> None:
    from routing.services import RouteRefused, route_upsert

    with pytest.raises(RouteRefused, match="only '\\*' is a wildcard"):
        route_upsert(alias="gpt-[45]", description="", deployments=[])
    assert not Route.objects.filter(alias="gpt-[45]").exists()


def test_validation_errors_carry_nested_field_paths(platform: Api) -> None:
    response = platform.put(
        "/routes/smart-chat", {"targets": [{"deployment": "d", "weight": -1}], "timeout_seconds": 0}
    )

    assert response.status_code == 422
    fields = {f["field"] for f in response.json()["error"]["fields"]}
    assert fields == {"targets[0].weight", "timeout_seconds"}


def test_an_unknown_thing_is_a_404_in_the_same_format(platform: Api) -> None:
    for path in ("/providers/nope", "/deployments/nope", "/routes/nope", "/no-such-endpoint"):
        response = platform.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"


def test_a_conditional_put_creates_only_or_updates_only(platform: Api) -> None:
    body = {"kind": "openai", "base_url": "https://llm.example/v1", "credential": SECRET}
    create_only = {"If-None-Match": "*"}

    created = platform.client.put(
        "/api/v1/providers/vendor-x",
        {**body, "region": "us"},
        content_type="application/json",
        headers={**platform.headers, **create_only},
    )
    again = platform.client.put(
        "/api/v1/providers/vendor-x",
        {**body, "region": "eu"},
        content_type="application/json",
        headers={**platform.headers, **create_only},
    )
    absent = platform.client.put(
        "/api/v1/providers/vendor-y",
        body,
        content_type="application/json",
        headers={**platform.headers, "If-Match": "*"},
    )

    assert created.status_code == 200, created.content
    assert again.status_code == 412 and again.json()["error"]["code"] == "precondition_failed"
    assert Provider.objects.get(name="vendor-x").region == "us"
    assert absent.status_code == 412
    assert not Provider.objects.filter(name="vendor-y").exists()


def test_the_management_api_sets_a_routes_cache(platform: Api) -> None:
    platform.put("/providers/vendor-c", {"kind": "openai", "base_url": "https://c.example/v1"})
    platform.put("/deployments/cached-model", {"provider": "vendor-c", "upstream_model": "m"})
    body = {"targets": [{"deployment": "cached-model"}], "cache_mode": "semantic"}

    put = platform.put("/routes/cached-route", {**body, "cache_scope": "team"})

    assert put.status_code == 200, put.content
    assert (put.json()["cache_mode"], put.json()["cache_scope"]) == ("semantic", "team")
    assert put.json()["cache_similarity"] is None
    policy = load_routing_table().resolve("cached-route").cache
    assert policy == CachePolicy("semantic", 3600, "team", DEFAULT_SIMILARITY)
    refused = platform.put("/routes/cached-route", {**body, "cache_similarity": 1.5})
    assert refused.status_code == 422
    assert Route.objects.get(alias="cached-route").cache_similarity is None


def test_a_route_forwards_the_hosted_tools_it_lists_to_a_responses_native_provider(
    platform: Api,
) -> None:
    provider = {"kind": "openai-responses", "base_url": "https://api.llm.example/v1"}
    assert platform.put("/providers/vendor-r", provider).status_code == 200
    platform.put("/deployments/resp", {"provider": "vendor-r", "upstream_model": "resp-1"})
    body = {"targets": [{"deployment": "resp"}], "forward_hosted_tools": ["web_search"]}

    put = platform.put("/routes/searching", body)

    assert put.status_code == 200, put.content
    assert put.json()["forward_hosted_tools"] == ["web_search"]
    plan = load_routing_table().models["searching"].plan
    assert plan.forward_hosted_tools == ("web_search",)
    assert plan.targets[0].kind == "openai-responses"
    for kind, why in (("function", "run by the client"), ("Web Search", "not a tool type")):
        refused = platform.put("/routes/searching", {**body, "forward_hosted_tools": [kind]})
        assert refused.status_code == 422, kind
        assert refused.json()["error"]["fields"][0]["field"] == "forward_hosted_tools[0]"
        assert why in refused.json()["error"]["message"]
    assert Route.objects.get(alias="searching").forward_hosted_tools == ["web_search"]


@pytest.mark.parametrize("field", ["timeout_seconds", "first_token_timeout_seconds"])
def test_an_infinite_route_timeout_is_refused_so_routes_always_read_back_as_json(
    platform: Api, field: str
) -> None:
    # Stored, Infinity would come back as a bare `Infinity`: not JSON, for every route reader.
    platform.put("/providers/vendor-x", {"kind": "anthropic", "base_url": "https://a.example"})
    platform.put("/deployments/primary-model", {"provider": "vendor-x", "upstream_model": "m"})
    body = '{"targets": [{"deployment": "primary-model"}], "' + field + '": Infinity}'
    response = platform.client.put(
        "/api/v1/routes/smart-chat",
        data=body,
        content_type="application/json",
        headers=platform.headers,
    )

    assert response.status_code == 422, response.content
    assert response.json()["error"]["fields"][0]["field"] == field
    assert not Route.objects.filter(alias="smart-chat").exists()
