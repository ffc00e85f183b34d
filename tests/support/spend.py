"""A tenant with a budget, and what its Redis counter and its ledger each say it spent."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

import redis
from django.conf import settings
from django.db.models import Sum

from routing import services as routing
from tenants.models import Tenant
from tenants.quotas import services as quotas
from tenants.quotas.core.redis_store import budget_counters
from tenants.quotas.engine import to_nanos
from tenants.quotas.models import Budget, SpendEntry
from tests.support.world import build_tenant

# $1 per 1,000 tokens each way: every cost is a whole number of nano-dollars, so the counter
# (nanos) and the ledger (10 decimal places) can be compared exactly.
PRICE_PER_MTOK = Decimal(1000)


@dataclass(frozen=True)
class Budgeted:
    tenant: Tenant
    budget: Budget
    key: str
    chat_model: str
    embed_model: str


def build_budgeted(mock_url: str, label: str) -> Budgeted:
    """A tenant with a generous monthly budget, served by the mock at `mock_url`."""
    suffix = uuid.uuid4().hex[:6]
    provider = routing.provider_upsert(
        name=f"{label}-llm-{suffix}",
        kind="openai",
        base_url=mock_url + "/v1",
        credential="sk-t",
        region="",
    )
    chat = routing.deployment_upsert(
        name=f"{label}-gpt-{suffix}",
        provider=provider,
        upstream_model="mock-gpt",
        input_price_per_mtok=PRICE_PER_MTOK,
        output_price_per_mtok=PRICE_PER_MTOK,
    )
    embed = routing.deployment_upsert(
        name=f"{label}-embed-{suffix}",
        provider=provider,
        upstream_model="mock-embedding-1",
        input_price_per_mtok=PRICE_PER_MTOK,
        output_price_per_mtok=Decimal(0),
    )
    routing.route_upsert(alias=f"{label}-chat-{suffix}", description="", deployments=[chat])
    built = build_tenant(
        f"{label}-{suffix}", name=f"{label} {suffix}", teams=["desk"], keys=[f"{label}-app"]
    )
    tenant = built.tenant
    material = built.keys[f"{label}-app"]
    budget = quotas.budget_set(tenant=tenant, scope="tenant", amount_usd=Decimal(1_000_000))
    return Budgeted(tenant, budget, material.plaintext, f"{label}-chat-{suffix}", embed.name)


def counter_nanos(budget: Budget) -> tuple[int, int]:
    """(spent, still reserved) in the budget's Redis counter for this month, in nano-dollars."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    pattern = f"gw:b:{budget.pk}:{{t{budget.tenant_id}}}::*"
    assert len(list(client.scan_iter(pattern))) <= 1
    return redis_budget_nanos(client, pattern)


def redis_budget_nanos(client: redis.Redis, pattern: str) -> tuple[int, int]:
    """(spent, still reserved) in nano-USD, summed over the budget hashes matching `pattern`:
    each read in one command, so a settlement is never seen half applied."""
    spent = reserved = 0
    for key in client.scan_iter(pattern):
        one, held = budget_counters(client.hgetall(key))
        spent += one or 0
        reserved += held
    return spent, reserved


def ledger_nanos(tenant: Tenant) -> int:
    total = SpendEntry.objects.filter(tenant=tenant).aggregate(total=Sum("amount_usd"))["total"]
    return to_nanos(total or Decimal(0))


def settled_counter(budget: Budget, *, timeout: float = 5.0) -> int:
    """The counter's spend once no reservation is left (settlement runs in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        spent, reserved = counter_nanos(budget)
        if reserved == 0 or time.monotonic() > deadline:
            assert reserved == 0, f"{reserved} nano-dollars still reserved"
            return spent
        time.sleep(0.02)
