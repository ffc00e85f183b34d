from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from tenants.models import Team, Tenant
from tenants.quotas import services as quotas
from tests.support.live import wait_for_config
from tests.support.world import Key, build_route, build_tenant


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
        build_route(
            "quota-chat",
            base_url=mock_server.base_url + "/v1",
            provider="quota-mock",
            deployment="quota-gpt",
            upstream_model="quota-gpt-1",
            input_price="2.5",
            output_price="10",
            credential="sk-q",
        )
        co = build_tenant(
            "quota-co",
            teams=["desk", "thrifty"],
            keys=["burst", Key("thrifty-key", team="thrifty"), "small-tpm", "free"],
        )
        tenant = co.tenant
        burst, small = co.keys["burst"].api_key, co.keys["small-tpm"].api_key
        quotas.rate_limit_set(tenant=tenant, scope="key", api_key=burst, requests_per_minute=3)
        quotas.rate_limit_set(tenant=tenant, scope="key", api_key=small, tokens_per_minute=50)
        quotas.budget_set(
            tenant=tenant, scope="team", team=co.teams["thrifty"], amount_usd=Decimal("0.0005")
        )
    for key in ("burst", "thrifty-key", "small-tpm", "free"):
        wait_for_config(gateway, co.key(key), "quota-chat")
    return QuotaWorld(
        tenant=tenant,
        team=co.team,
        key=co.key("burst"),
        budget_key=co.key("thrifty-key"),
        tokens_key=co.key("small-tpm"),
        free_key=co.key("free"),
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
        build_route(
            "quota-cheap",
            base_url=mock_server.base_url + "/v1",
            provider="cheap-mock",
            deployment="cheap-gpt",
            upstream_model="cheap-gpt-1",
            input_price="0.01",
            output_price="0.01",
            credential="sk-c",
        )
        build_route(
            "quota-queued",
            base_url=mock_server.base_url + "/v1",
            provider="queued-mock",
            deployment="queued-gpt",
            upstream_model="queued-gpt-1",
            credential="sk-q2",
            requests_per_minute=2,
            capacity_queue_seconds=3,
        )

        def tenant_key(slug: str) -> tuple[Tenant, Team, Any, str]:
            one = build_tenant(slug, name=slug, teams=["t"], keys=[f"{slug}-key"])
            key = one.keys[f"{slug}-key"]
            return one.tenant, one.team, key.api_key, key.plaintext

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
