from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from quotas import services as quotas
from routing import services as routing
from tenants import services as tenants
from tenants.models import Team, Tenant
from tests.support.live import wait_for_config


@dataclass
class QuotaWorld:
    tenant: Tenant
    team: Team
    key: str  # key "burst": 3 requests per minute
    budget_key: str  # team "thrifty": $0.0005 per month
    tokens_key: str  # key "small-tpm": 50 tokens per minute
    free_key: str  # no limits at all


@pytest.fixture(scope="session")
def quota_world(world: Any, gateway: Any, django_db_blocker: Any, mock_server: Any) -> QuotaWorld:
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
    for key in (burst_material, budget_material, small_material, free_material):
        wait_for_config(gateway, key.plaintext, "quota-chat")
    return QuotaWorld(
        tenant=tenant,
        team=team,
        key=burst_material.plaintext,
        budget_key=budget_material.plaintext,
        tokens_key=small_material.plaintext,
        free_key=free_material.plaintext,
    )
