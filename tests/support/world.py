"""The committed data the live-server tests share: tenants, keys, providers and routes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from routing import services as routing
from tenants import services as tenants
from tenants.models import Team


@dataclass
class World:
    key: str  # acme/advisors: may use every model
    limited_key: str  # acme/advisors: may use only "demo"
    revoked_key: str
    expired_key: str
    other_tenant_key: str  # globex/ops
    eu_key: str  # tenant with residency "eu": no EU deployment exists
    team: Team


def build_world(*, mock_url: str, failing_mock_url: str, slow_mock_url: str) -> World:
    ok = routing.provider_upsert(
        name="mock-ok",
        kind="openai",
        base_url=mock_url + "/v1",
        credential="sk-upstream-secret",
        region="us",
    )
    failing = routing.provider_upsert(
        name="mock-429",
        kind="openai",
        base_url=failing_mock_url + "/v1",
        credential="sk-other",
        region="us",
    )
    chat = routing.deployment_upsert(
        name="mock-gpt",
        provider=ok,
        upstream_model="mock-gpt-2026-01-01",
        input_price_per_mtok=Decimal("2.5"),
        output_price_per_mtok=Decimal("10"),
    )
    limited = routing.deployment_upsert(
        name="mock-gpt-limited",
        provider=failing,
        upstream_model="mock-gpt",
        input_price_per_mtok=Decimal("1"),
        output_price_per_mtok=Decimal("1"),
    )
    routing.deployment_upsert(
        name="mock-embed",
        provider=ok,
        upstream_model="mock-embedding-1",
        input_price_per_mtok=Decimal("0.02"),
        output_price_per_mtok=Decimal(0),
    )
    anthropic = routing.provider_upsert(
        name="mock-anthropic",
        kind="anthropic",
        base_url=mock_url,
        credential="sk-ant-upstream",
        region="us",
    )
    claude = routing.deployment_upsert(
        name="claude-fallback",
        provider=anthropic,
        upstream_model="mock-claude",
        input_price_per_mtok=Decimal("3"),
        output_price_per_mtok=Decimal("15"),
    )
    routing.route_upsert(alias="advisor-chat", description="", deployments=[limited, claude])
    routing.route_upsert(alias="demo", description="", deployments=[chat])
    slow_provider = routing.provider_upsert(
        name="mock-slow",
        kind="openai",
        base_url=slow_mock_url + "/v1",
        credential="sk-slow",
        region="us",
    )
    slow = routing.deployment_upsert(
        name="mock-gpt-slow",
        provider=slow_provider,
        upstream_model="mock-gpt",
        input_price_per_mtok=Decimal("1"),
        output_price_per_mtok=Decimal("1"),
    )
    routing.route_upsert(
        alias="latency-contract",
        description="",
        deployments=[slow, chat],
        timeout_seconds=0.3,
        first_token_timeout_seconds=0.3,
    )
    canary = routing.deployment_upsert(
        name="mock-gpt-next",
        provider=ok,
        upstream_model="mock-gpt",
        input_price_per_mtok=Decimal("2.5"),
        output_price_per_mtok=Decimal("10"),
    )
    routing.route_upsert(
        alias="canary-chat",
        description="",
        deployments=[chat, canary],
        weights=[50, 50],
        strategy="weighted",
        sticky=True,
    )
    routing.route_upsert(alias="with-fallback", description="", deployments=[limited, chat])
    routing.route_upsert(alias="always-limited", description="", deployments=[limited])

    acme = tenants.tenant_apply(slug="acme", name="Acme Wealth")
    advisors = tenants.team_apply(tenant=acme, slug="advisors", name="Advisors", allowed_models=[])
    globex = tenants.tenant_apply(slug="globex", name="Globex")
    ops = tenants.team_apply(tenant=globex, slug="ops", name="Ops", allowed_models=[])
    euro = tenants.tenant_apply(slug="euro", name="Euro Bank", residency_region="eu")
    euro_team = tenants.team_apply(tenant=euro, slug="desk", name="Desk", allowed_models=[])

    _, key = tenants.key_create(team=advisors, name="e2e")
    _, limited_key = tenants.key_create(team=advisors, name="e2e-limited", allowed_models=["demo"])
    revoked, revoked_key = tenants.key_create(team=advisors, name="e2e-revoked")
    tenants.key_revoke(key=revoked)
    _, expired_key = tenants.key_create(
        team=advisors, name="e2e-expired", expires_at=timezone.now() - timedelta(days=1)
    )
    _, other_key = tenants.key_create(team=ops, name="e2e-globex")
    _, eu_key = tenants.key_create(team=euro_team, name="e2e-eu")
    return World(
        key=key.plaintext,
        limited_key=limited_key.plaintext,
        revoked_key=revoked_key.plaintext,
        expired_key=expired_key.plaintext,
        other_tenant_key=other_key.plaintext,
        eu_key=eu_key.plaintext,
        team=advisors,
    )
