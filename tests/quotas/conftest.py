from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from routing import services as routing
from tenants import services as tenants
from tenants.models import Team, Tenant
from tenants.quotas import services as quotas
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
        tenant = tenants.tenant_apply(slug="quota-co", name="Quota Co")
        team = tenants.team_apply(tenant=tenant, slug="desk", name="Desk", allowed_models=[])
        thrifty = tenants.team_apply(
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


@dataclass
class PolicyWorld:
    ceiling_key: str  # tenant "ceiling-co": $0.001 per request ceiling, rejected
    downgrade_key: str  # tenant "downgrade-co": over $0.001 goes to route "quota-cheap"
    shadow_key: str  # key under a shadow limit of 1 request per minute
    alert_key: str  # team with a $0.50 budget, soft alert at 5%
    queue_key: str  # routed to a provider of 2 requests per minute that queues up to 3 s


@pytest.fixture(scope="session")
def policy_world(
    quota_world: QuotaWorld, gateway: Any, django_db_blocker: Any, mock_server: Any
) -> PolicyWorld:
    with django_db_blocker.unblock():
        cheap_provider = routing.provider_upsert(
            name="cheap-mock",
            kind="openai",
            base_url=mock_server.base_url + "/v1",
            credential="sk-c",
            region="us",
        )
        cheap = routing.deployment_upsert(
            name="cheap-gpt",
            provider=cheap_provider,
            upstream_model="cheap-gpt-1",
            input_price_per_mtok=Decimal("0.01"),
            output_price_per_mtok=Decimal("0.01"),
        )
        routing.route_upsert(alias="quota-cheap", description="", deployments=[cheap])
        queued_provider = routing.provider_upsert(
            name="queued-mock",
            kind="openai",
            base_url=mock_server.base_url + "/v1",
            credential="sk-q2",
            region="us",
            requests_per_minute=2,
            capacity_queue_seconds=3,
        )
        queued = routing.deployment_upsert(
            name="queued-gpt",
            provider=queued_provider,
            upstream_model="queued-gpt-1",
            input_price_per_mtok=Decimal("1"),
            output_price_per_mtok=Decimal("1"),
        )
        routing.route_upsert(alias="quota-queued", description="", deployments=[queued])

        def tenant_key(slug: str) -> tuple[Tenant, Team, Any, str]:
            tenant = tenants.tenant_apply(slug=slug, name=slug)
            team = tenants.team_apply(tenant=tenant, slug="t", name="T", allowed_models=[])
            key, material = tenants.key_create(team=team, name=f"{slug}-key")
            return tenant, team, key, material.plaintext

        ceiling, _, _, ceiling_key = tenant_key("ceiling-co")
        quotas.quota_policy_set(tenant=ceiling, max_request_cost_usd=Decimal("0.001"))
        downgrade, _, _, downgrade_key = tenant_key("downgrade-co")
        quotas.quota_policy_set(
            tenant=downgrade,
            max_request_cost_usd=Decimal("0.001"),
            over_ceiling="downgrade",
            downgrade_route="quota-cheap",
        )
        shadow, _, shadow_api_key, shadow_key = tenant_key("shadow-co")
        quotas.rate_limit_set(
            tenant=shadow, scope="key", api_key=shadow_api_key, requests_per_minute=1, shadow=True
        )
        alert, alert_team, _, alert_key = tenant_key("alert-co")
        quotas.budget_set(
            tenant=alert,
            scope="team",
            team=alert_team,
            amount_usd=Decimal("0.5"),
            alert_thresholds_pct=[5, 95],
        )
        _, _, _, queue_key = tenant_key("queue-co")
    for key in (ceiling_key, downgrade_key, shadow_key, alert_key, queue_key):
        wait_for_config(gateway, key, "quota-cheap")
    return PolicyWorld(ceiling_key, downgrade_key, shadow_key, alert_key, queue_key)
