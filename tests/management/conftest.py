"""Two tenants with the same shape, ours and theirs, and admin keys for each and the platform.

The slugs differ from the session `world` so that both can live in one database.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from audit.activity.services import SYSTEM
from gateway_site.api.services import admin_key_create
from tenants.models import ApiKey, Role, Team, Tenant
from tenants.quotas import services as quota_services
from tests.support.world import Key, Member, build_tenant


@dataclass
class Side:
    tenant: Tenant
    team: Team
    key: ApiKey
    key_plaintext: str
    admin_key: str  # plaintext, scoped to this tenant
    admin_key_id: int
    username: str
    email: str
    limit_id: int
    budget_id: int
    approval_rule_id: int = 0
    approval_id: str = ""

    def secrets(self) -> list[str]:
        """What must never reach a caller outside this tenant: names they did not send us."""
        return [
            self.tenant.name,
            self.team.name,
            self.key.name,
            self.key.prefix,
            self.key_plaintext,
            self.admin_key,
            self.admin_key[:10],
            self.email,
        ]


def build_side(slug: str, title: str) -> Side:
    username = f"{slug}-dev"
    email = f"lead.developer@{slug}.example"
    side = build_tenant(
        slug,
        name=f"{title} Incorporated",
        teams={f"{slug}-research": f"{title} Research Lab"},
        members=[Member(Role.DEVELOPER, username, email)],
        keys=[Key(f"{title} production backend", owner=username)],
    )
    tenant, team = side.tenant, side.team
    key = side.keys[f"{title} production backend"]
    limit = quota_services.rate_limit_set(
        tenant=tenant, scope="team", team=team, requests_per_minute=60
    )
    budget = quota_services.budget_set(tenant=tenant, scope="tenant", amount_usd=Decimal("250"))
    from routing.mcp_gateway import services as mcp

    mcp_server = mcp.mcp_server_upsert(
        tenant=tenant, name=f"{slug}-crm", url=f"https://mcp.{slug}.example/mcp", credential=slug
    )
    mcp.mcp_grant_set(server=mcp_server, team=team, tools=["lookup_customer"])
    from datetime import timedelta

    from django.utils import timezone

    from tenants.quotas import approvals
    from tenants.quotas.models import CostApproval

    approval_rule = approvals.approval_rule_set(
        tenant=tenant, scope="team", team=team, threshold_usd=Decimal("0.5"), actor=SYSTEM
    )
    held = CostApproval.objects.create(
        public_id=f"apr_{slug}",
        tenant=tenant,
        team=team,
        api_key=key.api_key,
        body_sha256="0" * 64,
        predicted_cost_usd=Decimal("1"),
        threshold_usd=Decimal("0.5"),
        created_at=timezone.now(),
        expires_at=timezone.now() + timedelta(hours=1),
    )
    admin, admin_material = admin_key_create(
        name=f"{title} terraform", tenant=tenant, created_by="test", actor=SYSTEM
    )
    return Side(
        tenant=tenant,
        team=team,
        key=key.api_key,
        key_plaintext=key.plaintext,
        admin_key=admin_material.plaintext,
        admin_key_id=admin.pk,
        username=username,
        email=email,
        limit_id=limit.pk,
        budget_id=budget.pk,
        approval_rule_id=approval_rule.pk,
        approval_id=held.public_id,
    )


@pytest.fixture
def ours(db: None) -> Side:
    return build_side("hooli", "Hooli")


@pytest.fixture
def theirs(db: None) -> Side:
    return build_side("piedpiper", "Pied Piper")


@pytest.fixture
def platform_key(db: None) -> str:
    _, material = admin_key_create(name="ops", tenant=None, created_by="test", actor=SYSTEM)
    return material.plaintext


class Api:
    """The management API through Django's test client, as one admin key."""

    def __init__(self, key: str | None) -> None:
        self.client = Client()
        self.headers = {"authorization": f"Bearer {key}"} if key else {}

    def call(self, method: str, path: str, body: Any = None) -> Any:
        kwargs: dict[str, Any] = {"headers": self.headers}
        if body is not None:
            kwargs.update(data=body, content_type="application/json")
        return getattr(self.client, method.lower())("/api/v1" + path, **kwargs)

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body if body is not None else {})

    def put(self, path: str, body: Any) -> Any:
        return self.call("PUT", path, body)

    def patch(self, path: str, body: Any) -> Any:
        return self.call("PATCH", path, body)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)


@pytest.fixture
def platform(platform_key: str) -> Api:
    return Api(platform_key)


@pytest.fixture
def as_ours(ours: Side) -> Api:
    return Api(ours.admin_key)
