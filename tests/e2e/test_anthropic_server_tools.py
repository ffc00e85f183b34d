"""Anthropic's server tools (web search…) through `/v1/messages`: passed to the provider as sent,
its answer relayed whole, and each run it reports charged at the deployment's price per call, on
top of the tokens, streamed or not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import anthropic
import pytest

from tests.conftest import wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

ROUTE = "claude-search"
CACHED = "claude-search-cached"
WEB_SEARCH_USD = Decimal("0.01")  # Anthropic's price per web search
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}


@pytest.fixture(scope="module")
def searching(world: Any, gateway: Any, django_db_blocker: Any) -> Iterator[None]:
    from django.utils import timezone

    from audit.activity.services import SYSTEM
    from billing import services as billing
    from routing import services as routing
    from routing.models import Deployment, Provider, Route
    from tests.support.live import wait_for_config

    with django_db_blocker.unblock():
        provider = Provider.objects.get(name="mock-anthropic")
        deployment = routing.deployment_upsert(
            name="claude-searching",
            provider=provider,
            upstream_model="mock-claude",
            input_price_per_mtok=Decimal("3"),
            output_price_per_mtok=Decimal("15"),
        )
        billing.price_set(
            actor=SYSTEM,
            deployment=deployment,
            input_per_mtok=Decimal("3"),
            output_per_mtok=Decimal("15"),
            per_tool_call_usd={"web_search": WEB_SEARCH_USD},
            effective_from=timezone.now() - timedelta(seconds=1),
        )
        routing.route_upsert(alias=ROUTE, description="", deployments=[deployment])
        routing.route_upsert(
            alias=CACHED, description="", deployments=[deployment], cache_mode="exact"
        )
    wait_for_config(gateway, world.key, ROUTE)
    wait_for_config(gateway, world.key, CACHED)
    yield
    with django_db_blocker.unblock():
        Route.objects.filter(alias__in=[ROUTE, CACHED]).delete()
        Deployment.objects.filter(pk=deployment.pk).update(is_active=False)


def _client(gateway: Any, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


def _tokens_usd(record: Any) -> Decimal:
    return (Decimal(record.prompt_tokens) * 3 + Decimal(record.completion_tokens) * 15) / 10**6


def test_a_web_search_anthropic_ran_is_relayed_and_charged(gateway, world, searching):
    raw = _client(gateway, world.key).messages.with_raw_response.create(
        model=ROUTE,
        max_tokens=100,
        tools=[WEB_SEARCH],
        messages=[{"role": "user", "content": "What moved the bond markets today?"}],
    )
    message = raw.parse()

    assert [block.type for block in message.content] == [
        "server_tool_use",
        "web_search_tool_result",
        "text",
    ]
    assert message.usage.server_tool_use is not None
    assert message.usage.server_tool_use.web_search_requests == 1
    record = wait_for_record(raw.headers["x-request-id"])
    assert record.cost_usd == _tokens_usd(record) + WEB_SEARCH_USD
    assert record.response_body["usage"]["server_tool_use"] == {"web_search_requests": 1}


def test_a_streamed_web_search_is_charged_once(gateway, world, searching):
    with _client(gateway, world.key).messages.stream(
        model=ROUTE,
        max_tokens=100,
        tools=[WEB_SEARCH],
        messages=[{"role": "user", "content": "And the currency markets?"}],
    ) as stream:
        final = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]

    assert final.content[0].type == "server_tool_use"
    assert final.content[-1].type == "text" and final.content[-1].text
    record = wait_for_record(request_id)
    assert record.status == "success"
    assert record.cost_usd == _tokens_usd(record) + WEB_SEARCH_USD


def test_a_message_without_server_tools_pays_tokens_only(gateway, world, searching):
    raw = _client(gateway, world.key).messages.with_raw_response.create(
        model=ROUTE,
        max_tokens=100,
        messages=[{"role": "user", "content": "Summarise the week."}],
    )
    record = wait_for_record(raw.headers["x-request-id"])
    assert record.cost_usd == _tokens_usd(record) > 0


def test_the_reservation_covers_every_search_the_request_allows(gateway, world, searching):
    """A budget's reservation is the request's worst case: its tokens, and each server tool as
    many times as its `max_uses` lets it run (once when it sets none). The dry run says it."""
    client = _client(gateway, world.key)

    def worst_case(tools: list[dict[str, Any]]) -> Decimal:
        raw = client.messages.with_raw_response.create(
            model=ROUTE,
            max_tokens=100,
            tools=tools,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": "What moved the bond markets today?"}],
            extra_headers={"x-gateway-dry-run": "1"},
        )
        return Decimal(raw.http_response.json()["max_cost_usd"])

    tokens_only = worst_case([])
    assert worst_case([{**WEB_SEARCH, "max_uses": 5}]) == tokens_only + 5 * WEB_SEARCH_USD
    uncapped = {k: v for k, v in WEB_SEARCH.items() if k != "max_uses"}
    assert worst_case([uncapped]) == tokens_only + WEB_SEARCH_USD


def test_a_stream_cut_after_its_search_ran_still_pays_for_the_search(gateway, world, searching):
    import httpx

    body = {
        "model": ROUTE,
        "max_tokens": 100,
        "stream": True,
        "tools": [WEB_SEARCH],
        "messages": [{"role": "user", "content": "[mock chunk_delay_ms=300] markets today?"}],
    }
    headers = {"x-api-key": world.key, "anthropic-version": "2023-06-01"}
    with httpx.stream(
        "POST", gateway.url + "/v1/messages", json=body, headers=headers, timeout=10
    ) as response:
        request_id = response.headers["x-request-id"]
        lines = response.iter_lines()  # held: a dropped generator would close the response
        for line in lines:
            if "web_search_tool_result" in line:
                break  # the search ran; the client leaves before Anthropic's usage comes
    record = wait_for_record(request_id)

    assert (record.status, record.error_type) == ("failed", "client_disconnected")
    assert record.usage_estimated
    assert record.cost_usd == _tokens_usd(record) + WEB_SEARCH_USD


def test_a_request_offering_a_server_tool_is_never_answered_from_the_cache(
    gateway, world, searching
):
    client = _client(gateway, world.key)
    question = [{"role": "user", "content": "What did the central bank decide this morning?"}]
    plain = client.messages.with_raw_response.create(
        model=CACHED, max_tokens=100, messages=question
    )
    again = client.messages.with_raw_response.create(
        model=CACHED, max_tokens=100, messages=question
    )
    assert again.headers["x-gateway-cache"] == "hit"  # the route caches: the same ask is a hit

    searched = client.messages.with_raw_response.create(
        model=CACHED, max_tokens=100, messages=question, tools=[WEB_SEARCH]
    )

    assert searched.headers.get("x-gateway-cache") != "hit"
    assert searched.parse().content[0].type == "server_tool_use"  # the search ran
    record = wait_for_record(searched.headers["x-request-id"])
    assert record.cost_usd == _tokens_usd(record) + WEB_SEARCH_USD
    assert plain.headers["x-request-id"] != searched.headers["x-request-id"]


def test_an_absurd_or_nonsense_cap_is_reserved_within_bounds(gateway, world, searching):
    client = _client(gateway, world.key)

    def worst_case(max_uses: Any) -> Decimal:
        raw = client.messages.with_raw_response.create(
            model=ROUTE,
            max_tokens=100,
            tools=[{**WEB_SEARCH, "max_uses": max_uses}],
            messages=[{"role": "user", "content": "What moved the bond markets today?"}],
            extra_headers={"x-gateway-dry-run": "1"},
        )
        return Decimal(raw.http_response.json()["max_cost_usd"])

    once = worst_case(1)
    for nonsense in (0, -3, True, "5", 2.5):
        assert worst_case(nonsense) == once
    assert worst_case(10**12) == once + (10_000 - 1) * WEB_SEARCH_USD
