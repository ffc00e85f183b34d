"""A cached answer, or a cheaper route, serves a caller only as its own request would have been
served: a hit is not checked again, so it is shared only by callers whose answers face the same
checks; an end-user scope with no end user is the key's; a narrow `top_p` is not served a wide
one's answer; a cost ceiling's downgrade route keeps the tenant's residency, and a key pinned to a
version is never downgraded to another model."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from routing import services as routing
from routing.guardrails import services as guardrails
from routing.guardrails.core.policy import PolicySpec
from routing.models import Deployment
from tenants import services as tenants
from tenants.quotas import services as quotas
from tests.conftest import wait_for_record
from tests.support.live import LiveGateway, start_gateway
from tests.support.world import Key, build_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


@pytest.fixture(scope="module")
def keys(world: Any, mock_server: Any, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    with django_db_blocker.unblock():
        chat = Deployment.objects.get(name="mock-gpt")  # its provider is in region "us"
        routing.route_upsert(
            alias="cb-exact", description="", deployments=[chat], cache_mode="exact"
        )
        routing.route_upsert(
            alias="cb-per-user",
            description="",
            deployments=[chat],
            cache_mode="exact",
            cache_scope="user",
        )
        routing.route_upsert(
            alias="cb-semantic", description="", deployments=[chat], cache_mode="semantic"
        )
        shop = build_tenant(
            "cb-shop", teams=["alpha", "beta"], keys=["open", "guarded", Key("beta", team="beta")]
        )
        rule = {"output": {"rules": [{"name": "island", "terms": ["zanzibar"]}]}}
        policy = guardrails.guardrail_policy_upsert(
            name="cb-no-island", tenant=shop.tenant, spec=PolicySpec.model_validate(rule)
        )
        guardrails.guardrail_policy_attach(policy=policy, api_key=shop.keys["guarded"].api_key)

        eu_provider = routing.provider_upsert(
            name="cb-eu-llm",
            kind="openai",
            base_url=mock_server.base_url + "/v1",
            credential="sk-eu",
            region="eu",
        )
        eu = routing.deployment_upsert(
            name="cb-eu-gpt",
            provider=eu_provider,
            upstream_model="mock-gpt",
            input_price_per_mtok=Decimal(100),
            output_price_per_mtok=Decimal(1000),
        )
        routing.route_upsert(alias="cb-eu-chat", description="", deployments=[eu])
        routing.route_upsert(alias="cb-pricey", description="", deployments=[eu])
        pinning = build_tenant("cb-pins", teams=["desk"], keys=["pinned", "free"])
        tenants.key_pins_set(
            key=pinning.keys["pinned"].api_key, model_pins={"cb-pricey": "cb-eu-gpt"}
        )
        quotas.quota_policy_set(
            tenant=pinning.tenant,
            max_request_cost_usd=Decimal("0.1"),
            over_ceiling="downgrade",
            downgrade_route="demo",
        )
        resident = build_tenant("cb-eu", residency_region="eu", teams=["desk"], keys=["eu"])
        quotas.quota_policy_set(
            tenant=resident.tenant,
            max_request_cost_usd=Decimal("0.1"),
            over_ceiling="downgrade",
            downgrade_route="demo",  # cheaper, but served in region "us" only
        )
    live = start_gateway()
    try:
        yield {
            "gateway": live,
            "open": shop.key("open"),
            "guarded": shop.key("guarded"),
            "beta": shop.key("beta"),
            "eu": resident.key("eu"),
            "pinned": pinning.key("pinned"),
            "free": pinning.key("free"),
        }
    finally:
        live.stop()


def _ask(
    keys: dict[str, Any], key: str, model: str, text: str, betas: str = "", **extra: Any
) -> httpx.Response:
    gateway: LiveGateway = keys["gateway"]
    headers = {"authorization": f"Bearer {keys[key]}"}
    if betas:
        headers["anthropic-beta"] = betas
    return httpx.post(
        gateway.api_url + "/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": text}], **extra},
        headers=headers,
        timeout=30,
    )


def _stored() -> None:
    time.sleep(0.5)  # an answer is stored in the background


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_an_answer_the_callers_output_rule_blocks_is_not_served_it_from_the_cache(
    keys: dict[str, Any], stream: bool
) -> None:
    question = f"Tell me about zanzibar {uuid.uuid4().hex[:8]}"
    first = _ask(keys, "open", "cb-exact", question, stream=stream)
    assert first.status_code == 200 and "zanzibar" in first.text.lower()
    _stored()
    assert _ask(keys, "open", "cb-exact", question).headers["x-gateway-cache"] == "hit"

    guarded = _ask(keys, "guarded", "cb-exact", question, stream=stream)

    assert guarded.headers.get("x-gateway-cache") != "hit"
    assert "zanzibar" not in guarded.text.lower()
    if not stream:
        assert guarded.status_code == 400 and "output_blocked" in guarded.text


def test_an_end_user_scope_with_no_end_user_is_the_keys(keys: dict[str, Any]) -> None:
    question = f"What is my portfolio worth {uuid.uuid4().hex[:8]}"
    assert _ask(keys, "open", "cb-per-user", question).headers["x-gateway-cache"] == "miss"
    _stored()
    assert _ask(keys, "open", "cb-per-user", question).headers["x-gateway-cache"] == "hit"

    # Another team's key, naming no end user either: not served the first key's answer.
    assert _ask(keys, "beta", "cb-per-user", question).headers["x-gateway-cache"] == "miss"


def test_a_beta_feature_the_provider_is_asked_for_is_never_answered_from_a_request_without_it(
    keys: dict[str, Any],
) -> None:
    question = f"Summarise the annual report {uuid.uuid4().hex[:8]}"
    assert _ask(keys, "open", "cb-exact", question).headers["x-gateway-cache"] == "miss"
    _stored()

    betas = "output-128k-2025-02-19, context-1m-2025-08-07"
    assert _ask(keys, "open", "cb-exact", question, betas).headers["x-gateway-cache"] == "miss"
    _stored()
    # The same features, listed in another order: the same request.
    same = "context-1m-2025-08-07,output-128k-2025-02-19"
    assert _ask(keys, "open", "cb-exact", question, same).headers["x-gateway-cache"] == "hit"
    assert _ask(keys, "open", "cb-exact", question).headers["x-gateway-cache"] == "hit"


def test_a_paraphrase_sampled_differently_by_top_p_is_not_served_by_meaning(
    keys: dict[str, Any],
) -> None:
    tag = "Q" + uuid.uuid4().hex[:6]
    narrow = _ask(keys, "open", "cb-semantic", f"What is an annuity {tag}?", top_p=0.05)
    assert narrow.headers["x-gateway-cache"] == "miss"
    _stored()

    wide = _ask(keys, "open", "cb-semantic", f"Explain what an annuity is {tag}.", top_p=1.0)

    assert wide.headers["x-gateway-cache"] == "miss"


def test_a_cost_ceilings_downgrade_never_leaves_the_tenants_residency_region(
    keys: dict[str, Any],
) -> None:
    # Above the ceiling; the downgrade route has no deployment in the tenant's region.
    answer = _ask(keys, "eu", "cb-eu-chat", "a long answer please", max_tokens=1000)

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "cost_ceiling_exceeded"
    record = wait_for_record(answer.headers["x-request-id"])
    assert record.status == "rejected" and not record.deployment_name
    # Under the ceiling it is served, in region.
    small = _ask(keys, "eu", "cb-eu-chat", "a short answer", max_tokens=20)
    assert small.status_code == 200, small.text
    assert wait_for_record(small.headers["x-request-id"]).deployment_name == "cb-eu-gpt"


def test_a_key_pinned_to_a_version_is_never_downgraded_to_another_model(
    keys: dict[str, Any],
) -> None:
    free = _ask(keys, "free", "cb-pricey", "a long answer please", max_tokens=1000)
    assert free.status_code == 200, free.text
    assert free.headers["x-gateway-route"] == "demo"  # the ceiling's downgrade, as configured

    pinned = _ask(keys, "pinned", "cb-pricey", "a long answer please", max_tokens=1000)

    assert pinned.status_code == 400, pinned.text
    assert pinned.json()["error"]["code"] == "cost_ceiling_exceeded"
