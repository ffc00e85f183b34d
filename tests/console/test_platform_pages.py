"""Platform pages: providers, deployments and routes in the console (platform admins only)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from audit.activity.models import ActivityEvent
from routing import services
from routing.models import Deployment, Provider, Route
from tests.console.conftest import Acme

pytestmark = pytest.mark.django_db

SECRET = "sk-live-do-not-show-0123456789"
PAGES = [
    "platform/providers/",
    "platform/providers/new/",
    "platform/providers/mock-a/",
    "platform/deployments/",
    "platform/deployments/new/",
    "platform/deployments/dep-a/",
    "platform/routes/",
    "platform/routes/new/",
    "platform/routes/chat/",
]


@pytest.fixture
def platform(acme: Acme) -> Client:
    services.provider_upsert(
        name="mock-a", kind="openai", base_url="http://127.0.0.1:9/v1", credential=SECRET, region=""
    )
    provider = Provider.objects.get(name="mock-a")
    for name in ("dep-a", "dep-b"):
        services.deployment_upsert(
            name=name,
            provider=provider,
            upstream_model=f"up-{name}",
            input_price_per_mtok=1,
            output_price_per_mtok=2,
        )
    services.route_upsert(
        alias="chat", description="", deployments=[Deployment.objects.get(name="dep-a")]
    )
    client = Client()
    client.force_login(acme.users["platform_admin"])
    return client


def _url(acme: Acme, page: str) -> str:
    return f"/console/t/{acme.tenant.slug}/{page}"


def _provider(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "upstream-x",
        "kind": "openai",
        "base_url": "http://127.0.0.1:9100/v1",
        "credential": "",
        "region": "eu",
        "requests_per_minute": "600",
        "tokens_per_minute": "100000",
        "capacity_queue_seconds": "2",
        **overrides,
    }


def _route(**overrides: Any) -> dict[str, Any]:
    return {
        "alias": "safe-chat",
        "description": "with a fallback",
        "strategy": "ordered",
        "hosted_tools": "refuse",
        "cache_mode": "off",
        "cache_ttl_seconds": "3600",
        "cache_scope": "tenant",
        "target_0": "dep-a",
        "target_1": "dep-b",
        **overrides,
    }


@pytest.mark.parametrize("role", ["developer", "tenant_admin", "finance", "compliance"])
def test_only_platform_admins_reach_the_platform_pages(
    acme: Acme, platform: Client, role: str
) -> None:
    client = Client()
    client.force_login(acme.users[role])
    for page in PAGES:
        assert client.get(_url(acme, page)).status_code == 403, page
    response = client.post(_url(acme, "platform/providers/new/"), _provider())
    assert response.status_code == 403
    assert not Provider.objects.filter(name="upstream-x").exists()
    home = client.get(_url(acme, "")).content.decode()
    assert "/platform/routes/" not in home


def test_every_platform_page_renders_and_is_in_the_navigation(acme: Acme, platform: Client) -> None:
    for page in PAGES:
        assert platform.get(_url(acme, page)).status_code == 200, page
    home = platform.get(_url(acme, "")).content.decode()
    for page in ("providers", "deployments", "routes"):
        assert f"/platform/{page}/" in home


def test_a_provider_is_created_with_its_capacity_and_logged(acme: Acme, platform: Client) -> None:
    response = platform.post(_url(acme, "platform/providers/new/"), _provider(credential="sk-1"))
    assert response.status_code == 302
    provider = Provider.objects.get(name="upstream-x")
    assert (provider.requests_per_minute, provider.tokens_per_minute) == (600, 100_000)
    assert provider.get_credential() == "sk-1"
    event = ActivityEvent.objects.get(action="provider.create", target_id=str(provider.pk))
    assert event.actor_label == "acme-platform_admin"
    assert "sk-1" not in str(event.details)


def test_the_credential_is_never_rendered_back(acme: Acme, platform: Client) -> None:
    for page in ("platform/providers/", "platform/providers/mock-a/"):
        body = platform.get(_url(acme, page)).content.decode()
        assert SECRET not in body and SECRET[-10:] not in body
    # Nor after a failed save that carried a new one.
    body = platform.post(
        _url(acme, "platform/providers/mock-a/"),
        _provider(name="mock-a", base_url="http://169.254.169.254/", credential="sk-new-secret"),
    ).content.decode()
    assert "sk-new-secret" not in body and SECRET not in body


def test_an_empty_credential_keeps_the_stored_one(acme: Acme, platform: Client) -> None:
    response = platform.post(
        _url(acme, "platform/providers/mock-a/"),
        _provider(name="mock-a", base_url="http://127.0.0.1:9/v2", requests_per_minute="5"),
    )
    assert response.status_code == 302
    provider = Provider.objects.get(name="mock-a")
    assert provider.get_credential() == SECRET and provider.requests_per_minute == 5
    assert provider.base_url == "http://127.0.0.1:9/v2"


def test_an_egress_refused_url_is_the_services_error_on_the_field(
    acme: Acme, platform: Client
) -> None:
    response = platform.post(
        _url(acme, "platform/providers/new/"),
        _provider(base_url="http://169.254.169.254/latest/meta-data/"),
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert "egress policy" in form.errors["base_url"][0]
    assert not Provider.objects.filter(name="upstream-x").exists()


def test_moving_a_provider_to_another_host_needs_the_credential_again(
    acme: Acme, platform: Client
) -> None:
    response = platform.post(
        _url(acme, "platform/providers/mock-a/"),
        _provider(name="mock-a", base_url="http://localhost:9100/v1"),
    )
    assert response.status_code == 400
    assert "credential" in response.context["form"].errors
    assert Provider.objects.get(name="mock-a").base_url == "http://127.0.0.1:9/v1"


def test_create_never_overwrites(acme: Acme, platform: Client) -> None:
    response = platform.post(
        _url(acme, "platform/providers/new/"),
        _provider(name="mock-a", base_url="http://127.0.0.1:1/v1", credential="sk-other"),
    )
    assert response.status_code == 409
    assert "already exists" in response.context["form"].errors["name"][0]
    provider = Provider.objects.get(name="mock-a")
    assert provider.base_url == "http://127.0.0.1:9/v1" and provider.get_credential() == SECRET

    response = platform.post(
        _url(acme, "platform/deployments/new/"),
        {
            "name": "dep-a",
            "provider": "mock-a",
            "upstream_model": "changed",
            "input_price_per_mtok": "9",
            "output_price_per_mtok": "9",
        },
    )
    assert response.status_code == 409
    assert Deployment.objects.get(name="dep-a").upstream_model == "up-dep-a"

    response = platform.post(_url(acme, "platform/routes/new/"), _route(alias="chat"))
    assert response.status_code == 409
    assert [t.deployment.name for t in Route.objects.get(alias="chat").targets.all()] == ["dep-a"]


def test_update_never_creates(acme: Acme, platform: Client) -> None:
    assert platform.get(_url(acme, "platform/providers/nope/")).status_code == 404
    response = platform.post(_url(acme, "platform/providers/nope/"), _provider(name="nope"))
    assert response.status_code == 404
    response = platform.post(_url(acme, "platform/routes/nope/"), _route(alias="nope"))
    assert response.status_code == 404
    response = platform.post(
        _url(acme, "platform/deployments/nope/"),
        {
            "name": "nope",
            "provider": "mock-a",
            "upstream_model": "m",
            "input_price_per_mtok": "1",
            "output_price_per_mtok": "1",
        },
    )
    assert response.status_code == 404
    assert not Provider.objects.filter(name="nope").exists()
    assert not Route.objects.filter(alias="nope").exists()
    assert not Deployment.objects.filter(name="nope").exists()


def test_a_deployment_is_created_and_edited_with_its_prices(acme: Acme, platform: Client) -> None:
    data = {
        "name": "dep-c",
        "provider": "mock-a",
        "upstream_model": "gpt-x",
        "input_price_per_mtok": "0.5",
        "output_price_per_mtok": "1.5",
    }
    assert platform.post(_url(acme, "platform/deployments/new/"), data).status_code == 302
    data.update(upstream_model="gpt-y", output_price_per_mtok="2.25", name="ignored")
    assert platform.post(_url(acme, "platform/deployments/dep-c/"), data).status_code == 302
    deployment = Deployment.objects.get(name="dep-c")
    assert (
        deployment.upstream_model == "gpt-y" and str(deployment.output_price_per_mtok) == "2.250000"
    )
    assert not Deployment.objects.filter(name="ignored").exists()
    actions = ActivityEvent.objects.filter(
        target_id=str(deployment.pk), action__startswith="deployment."
    ).values_list("action", flat=True)
    assert sorted(actions) == ["deployment.create", "deployment.update"]


def test_a_route_with_a_fallback_is_created_in_one_form(acme: Acme, platform: Client) -> None:
    response = platform.post(
        _url(acme, "platform/routes/new/"),
        _route(timeout_seconds="20", cache_mode="exact", hosted_tools="drop"),
    )
    assert response.status_code == 302
    route = Route.objects.get(alias="safe-chat")
    assert [t.deployment.name for t in route.targets.all()] == ["dep-a", "dep-b"]
    assert (route.timeout_seconds, route.cache_mode, route.hosted_tools) == (20, "exact", "drop")
    assert ActivityEvent.objects.filter(action="route.create", target_id=str(route.pk)).exists()
    listing = platform.get(_url(acme, "platform/routes/")).content.decode()
    assert "safe-chat" in listing and "dep-b" in listing


def test_a_route_lists_the_hosted_tools_it_forwards(acme: Acme, platform: Client) -> None:
    created = platform.post(
        _url(acme, "platform/routes/new/"),
        _route(forward_hosted_tools="web_search, file_search"),
    )
    assert created.status_code == 302
    assert Route.objects.get(alias="safe-chat").forward_hosted_tools == [
        "web_search",
        "file_search",
    ]
    page = platform.get(_url(acme, "platform/routes/safe-chat/"))
    assert page.context["form"].initial["forward_hosted_tools"] == "web_search, file_search"

    refused = platform.post(
        _url(acme, "platform/routes/safe-chat/"), _route(forward_hosted_tools="function")
    )
    assert refused.status_code == 400
    assert "run by the client" in str(refused.context["form"].errors["forward_hosted_tools"])
    assert Route.objects.get(alias="safe-chat").forward_hosted_tools == [
        "web_search",
        "file_search",
    ]


def test_a_route_edit_reorders_and_weights_its_targets(acme: Acme, platform: Client) -> None:
    response = platform.post(
        _url(acme, "platform/routes/chat/"),
        _route(
            alias="chat",
            strategy="weighted",
            target_0="dep-b",
            weight_0="9",
            weight_1="1",
            target_1="dep-a",
        ),
    )
    assert response.status_code == 302
    targets = list(Route.objects.get(alias="chat").targets.all())
    assert [(t.deployment.name, t.weight) for t in targets] == [("dep-b", 9), ("dep-a", 1)]
    assert ActivityEvent.objects.filter(action="route.update").exists()


def test_a_route_refuses_a_bad_alias_and_a_repeated_target(acme: Acme, platform: Client) -> None:
    response = platform.post(_url(acme, "platform/routes/new/"), _route(alias="bad alias!"))
    assert response.status_code == 400 and "alias" in response.context["form"].errors
    response = platform.post(_url(acme, "platform/routes/new/"), _route(target_1="dep-a"))
    assert response.status_code == 400 and "target_1" in response.context["form"].errors
    assert not Route.objects.filter(alias__in=["bad alias!", "safe-chat"]).exists()


def test_editing_a_route_with_many_targets_keeps_them_all(acme: Acme, platform: Client) -> None:
    provider = Provider.objects.get(name="mock-a")
    many = [
        services.deployment_upsert(
            name=f"many-{i}",
            provider=provider,
            upstream_model="m",
            input_price_per_mtok=1,
            output_price_per_mtok=1,
        )
        for i in range(8)
    ]
    services.route_upsert(alias="wide", description="", deployments=many)
    page = platform.get(_url(acme, "platform/routes/wide/"))
    form = page.context["form"]
    data = {name: field.initial for name, field in form.fields.items() if field.initial is not None}
    data.update({k: v for k, v in form.initial.items() if v is not None})
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}
    data["description"] = "edited"
    assert platform.post(_url(acme, "platform/routes/wide/"), data).status_code == 302
    route = Route.objects.get(alias="wide")
    assert route.description == "edited"
    assert [t.deployment.name for t in route.targets.all()] == [d.name for d in many]
