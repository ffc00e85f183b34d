from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from quotas import services as quotas
from routing import services as routing
from tenants import services as tenants
from tenants.models import Team, Tenant

# The live gateway reloads limits and budgets every 0.5 s (GATEWAY_ROUTES_CACHE_SECONDS).
RULES_RELOAD_S = 0.7


@dataclass
class QuotaWorld:
    tenant: Tenant
    team: Team
    key: str  # key "burst": 3 requests per minute
    budget_key: str  # team "thrifty": $0.0005 per month
    tokens_key: str  # key "small-tpm": 50 tokens per minute
    free_key: str  # no limits at all


@pytest.fixture(scope="session")
def quota_world(world: Any, django_db_blocker: Any, mock_server: Any, gateway: Any) -> QuotaWorld:
    with django_db_blocker.unblock():
        provider = routing.provider_upsert(
            name="quota-mock",
            kind="openai",
            base_url=mock_server.base_url + "/v1",
            credential="sk-q",
            region="us",
        )
        deployment = routing.deployment_upsert(
            name="quota-gpt",
            provider=provider,
            upstream_model="quota-gpt-1",
            input_price_per_mtok=Decimal("2.5"),
            output_price_per_mtok=Decimal("10"),
        )
        routing.route_upsert(alias="quota-chat", description="", deployments=[deployment])
        tenant = tenants.tenant_upsert(slug="quota-co", name="Quota Co")
        team = tenants.team_upsert(tenant=tenant, slug="desk", name="Desk", allowed_models=[])
        thrifty = tenants.team_upsert(
            tenant=tenant, slug="thrifty", name="Thrifty", allowed_models=[]
        )
        burst, burst_material = tenants.key_create(team=team, name="burst")
        _, budget_material = tenants.key_create(team=thrifty, name="thrifty-key")
        small, small_material = tenants.key_create(team=team, name="small-tpm")
        _, free_material = tenants.key_create(team=team, name="free")
        quotas.rate_limit_set(tenant=tenant, scope="key", api_key=burst, requests_per_minute=3)
        quotas.rate_limit_set(tenant=tenant, scope="key", api_key=small, tokens_per_minute=50)
        quotas.budget_set(tenant=tenant, scope="team", team=thrifty, amount_usd=Decimal("0.0005"))
    _wait_until_the_gateway_knows(gateway, budget_material.plaintext)
    return QuotaWorld(
        tenant=tenant,
        team=team,
        key=burst_material.plaintext,
        budget_key=budget_material.plaintext,
        tokens_key=small_material.plaintext,
        free_key=free_material.plaintext,
    )


def _wait_until_the_gateway_knows(gateway: Any, budget_key: str) -> None:
    """A warm gateway answers once from its previous tables while it reloads them in the
    background, so a fixed sleep is not enough: ask (a dry run, nothing counted) until the
    route and the budget made above are both in force."""
    deadline = time.monotonic() + 10
    while True:
        time.sleep(RULES_RELOAD_S)
        answer = httpx.post(
            gateway.api_url + "/chat/completions",
            headers={"authorization": f"Bearer {budget_key}", "x-gateway-dry-run": "1"},
            json={"model": "quota-chat", "messages": [{"role": "user", "content": "hi"}]},
        )
        if answer.status_code == 200 and answer.json().get("allowed") is False:
            return
        assert time.monotonic() < deadline, (
            f"the gateway never loaded the quota world: {answer.text}"
        )
