"""A rotated key's successor has "the same scope", never less and never wider: its key-level
limits, budget (with the spend of the key it replaced), cost approvals, guardrail policies, tool
grants (which narrow its team's) and prompt pins; and a developer who left the key's team cannot
mint a new key there by rotating."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.activity.services import SYSTEM
from routing.guardrails import services as guardrails
from routing.guardrails.core.policy import PolicySpec
from routing.guardrails.models import PolicyAttachment
from routing.mcp_gateway import services as mcp
from routing.mcp_gateway.models import McpToolGrant
from routing.prompts import services as prompts
from routing.prompts.models import PromptPin
from tenants import services as tenants
from tenants.models import ApiKey, Role
from tenants.quotas import approvals
from tenants.quotas import services as quotas
from tenants.quotas.core.windows import window_at
from tenants.quotas.ledger import window_spend
from tenants.quotas.models import ApprovalRule, Budget, RateLimit, SpendEntry
from tenants.quotas.table import budget_rule
from tests.support.world import Member, build_tenant

pytestmark = pytest.mark.django_db


def _scoped(model: Any, key: ApiKey) -> list[Any]:
    return list(model.objects.filter(api_key=key))


def test_the_successor_keeps_every_key_level_rule_and_the_spend_of_the_key_it_replaced(
    world: Any,
) -> None:
    built = build_tenant(f"rot-{uuid.uuid4().hex[:6]}", teams=["desk"], keys=["agent"])
    tenant, key = built.tenant, built.keys["agent"].api_key
    quotas.rate_limit_set(tenant=tenant, scope="key", api_key=key, requests_per_minute=1)
    budget = quotas.budget_set(tenant=tenant, scope="key", api_key=key, amount_usd=Decimal(1))
    approvals.approval_rule_set(
        tenant=tenant, scope="key", api_key=key, threshold_usd=Decimal("0.5"), actor=SYSTEM
    )
    policy = guardrails.guardrail_policy_upsert(
        name="rot-pii", tenant=tenant, spec=PolicySpec.model_validate({"pii": {}})
    )
    guardrails.guardrail_policy_attach(policy=policy, api_key=key)
    server = mcp.mcp_server_upsert(
        tenant=tenant, name="crm", url="https://mcp.example/mcp", credential=None
    )
    mcp.mcp_grant_set(server=server, team=built.team, tools=["*"])
    mcp.mcp_grant_set(server=server, api_key=key, tools=["echo"])  # narrows the team's `*`
    prompt = prompts.prompt_create(actor=SYSTEM, tenant=tenant, name="greet")
    prompts.prompt_publish(
        actor=SYSTEM, prompt=prompt, messages=[{"role": "user", "content": "hi"}]
    )
    prompts.prompt_pin_set(actor=SYSTEM, prompt=prompt, version=1, api_key=key)
    SpendEntry.objects.create(
        tenant=tenant,
        team=built.team,
        api_key=key,
        amount_usd=Decimal("0.75"),
        occurred_at=timezone.now(),
    )

    successor, _ = tenants.key_rotate(key=key, grace=timedelta(days=7))

    assert [r.requests_per_minute for r in _scoped(RateLimit, successor)] == [1]
    (carried,) = _scoped(Budget, successor)
    assert carried.amount_usd == Decimal(1) and carried.pk != budget.pk
    assert [r.threshold_usd for r in _scoped(ApprovalRule, successor)] == [Decimal("0.5")]
    assert [a.policy_id for a in _scoped(PolicyAttachment, successor)] == [policy.pk]
    assert [g.tools for g in _scoped(McpToolGrant, successor)] == [["echo"]]
    assert [p.version.number for p in _scoped(PromptPin, successor)] == [1]
    # The old key keeps its own until its grace ends.
    assert len(_scoped(Budget, key)) == len(_scoped(McpToolGrant, key)) == 1
    # Rotating does not start the budget over: the spend of the key it replaced counts.
    rule = budget_rule(carried)
    window = window_at(carried.period, carried.timezone, timezone.now())
    assert window_spend(rule, "", window) == Decimal("0.75")


def test_a_developer_who_left_the_keys_team_cannot_rotate_it(world: Any) -> None:
    built = build_tenant(
        f"rot-{uuid.uuid4().hex[:6]}",
        teams=["alpha", "beta"],
        members=[Member(Role.DEVELOPER, label="dev", teams=("alpha", "beta"))],
    )
    developer = built.users["dev"]
    key, _ = tenants.key_create(team=built.teams["beta"], name="beta-agent", owner=developer)
    tenants.member_update(
        membership=developer.memberships.get(), role=Role.DEVELOPER, teams=[built.teams["alpha"]]
    )
    client = Client()
    client.force_login(developer)

    response = client.post(
        f"/console/t/{built.tenant.slug}/keys/{key.pk}/rotate/",
        {"grace_seconds": "3600"},
        follow=True,
    )

    assert "which you are no longer in" in response.content.decode()
    assert not ApiKey.objects.filter(replaced_by__isnull=False, pk=key.pk).exists()
    assert ApiKey.objects.filter(team=built.teams["beta"], revoked_at__isnull=True).count() == 1
