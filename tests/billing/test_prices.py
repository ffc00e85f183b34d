"""Versioned prices: picked when the routing table loads; a change never rewrites past costs."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient
from django.utils import timezone

from audit.activity.models import ActivityEvent
from audit.activity.services import SYSTEM
from audit.models import AuditRecord
from billing import services as billing
from billing.models import Price
from billing.prices import effective_prices
from gateway_site.db_threads import run_db
from routing import services as routing
from routing.models import Deployment, Provider
from routing.runtime import close_runtime
from routing.table import load_routing_table

pytestmark = [pytest.mark.django_db]


def _deployment(name: str, upstream: str, price: str = "0") -> Deployment:
    provider = Provider.objects.get(name="mock-ok")
    return routing.deployment_upsert(
        name=name,
        provider=provider,
        upstream_model=upstream,
        input_price_per_mtok=Decimal(price),
        output_price_per_mtok=Decimal(price),
    )


def test_the_catalog_prices_a_dated_snapshot_of_a_listed_model(world):
    mini = _deployment("mini-snapshot", "gpt-4o-mini-2024-07-18")
    sonnet = _deployment("sonnet", "claude-sonnet-4-5-20250929")
    unknown = _deployment("local-llama", "llama-3.1-8b")

    prices = effective_prices([mini, sonnet, unknown], at=timezone.now())

    assert (prices[mini.id].input_per_mtok, prices[mini.id].output_per_mtok) == (
        Decimal("0.15"),
        Decimal("0.60"),
    )
    assert prices[mini.id].cached_input_per_mtok == Decimal("0.075")
    assert prices[sonnet.id].output_per_mtok == Decimal("15")  # claude-sonnet-4-5, not -4
    assert prices[unknown.id].input_per_mtok == 0


def test_the_latest_version_in_force_wins_and_a_future_one_waits(world):
    deployment = _deployment("versioned", "gpt-4o", price="1")
    now = timezone.now()
    billing.price_set(
        actor=SYSTEM,
        deployment=deployment,
        input_per_mtok=Decimal("3"),
        output_per_mtok=Decimal("12"),
        effective_from=now - timedelta(days=1),
    )
    billing.price_set(
        actor=SYSTEM,
        deployment=deployment,
        input_per_mtok=Decimal("9"),
        output_per_mtok=Decimal("9"),
        effective_from=now + timedelta(days=1),
    )

    target = load_routing_table().resolve("versioned").targets[0]  # type: ignore[union-attr]
    assert (target.input_price_per_mtok, target.output_price_per_mtok) == (3, 12)
    tomorrow = effective_prices([deployment], at=now + timedelta(days=2))[deployment.id]
    assert tomorrow.input_per_mtok == 9
    assert (
        ActivityEvent.objects.filter(action="price.set", target_type="billing.price").count() == 2
    )


def test_declaring_the_same_price_twice_adds_one_version(world):
    deployment = _deployment("declared", "gpt-4o")
    for _ in range(2):
        billing.price_declare(
            actor=SYSTEM,
            deployment=deployment,
            input_per_mtok=Decimal("2"),
            output_per_mtok=Decimal("8"),
        )
    assert Price.objects.filter(deployment=deployment).count() == 1


def test_a_negative_price_is_refused(world):
    with pytest.raises(ValueError, match="negative"):
        billing.price_set(
            actor=SYSTEM,
            model="x",
            input_per_mtok=Decimal("-1"),
            output_per_mtok=Decimal(0),
        )


# The proxy loads its table on its own threads: the data it sees must be committed.
_committed = run_db


async def _ask(client: AsyncClient, key: str) -> AuditRecord:
    body = orjson.dumps({"model": "priced-live", "messages": [{"role": "user", "content": "hi"}]})
    response = await client.post(
        "/v1/chat/completions",
        body,
        content_type="application/json",
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.content
    request_id = response["x-request-id"]
    return await _committed(lambda: AuditRecord.objects.get(request_id=request_id))


async def test_a_price_change_applies_to_new_requests_and_never_rewrites_past_ones(world):
    deployment = await _committed(lambda: _deployment("priced-live", "gpt-4o-2024-08-06"))
    await close_runtime()  # a runtime left by an earlier test would serve its older table
    client = AsyncClient()
    try:
        before = await _ask(client, world.key)
        assert before.cost_usd > 0  # the catalog's gpt-4o price: $2.50 / $10
        expected = (
            Decimal(before.prompt_tokens) * Decimal("2.5") + Decimal(before.completion_tokens) * 10
        ) / 10**6
        assert before.cost_usd == expected

        await _committed(
            lambda: billing.price_set(
                actor=SYSTEM,
                deployment=deployment,
                input_per_mtok=Decimal("5"),
                output_per_mtok=Decimal("20"),
            )
        )
        await close_runtime()  # the next request loads a fresh table, as a refresh would
        after = await _ask(client, world.key)

        assert after.cost_usd == 2 * before.cost_usd
        reread = await _committed(lambda: AuditRecord.objects.get(pk=before.pk))
        assert reread.cost_usd == before.cost_usd
    finally:
        await close_runtime()
        await _committed(lambda: Price.objects.filter(deployment=deployment).delete())
        await _committed(lambda: Deployment.objects.filter(pk=deployment.pk).delete())
        await sync_to_async(connections.close_all)()


def test_a_gpu_priced_deployment_charges_its_last_day_of_gpu_cost_over_its_tokens(world):
    from billing.gpu import gpu_prices_amortise
    from tests.billing.support import make_ledger, record

    deployment = _deployment("local-vllm-gpu", "llama-3.1-70b")
    now = timezone.now()
    billing.price_set(
        actor=SYSTEM,
        deployment=deployment,
        input_per_mtok=Decimal("0.5"),
        output_per_mtok=Decimal("0.5"),
        gpu_hour_usd=Decimal("2"),
        effective_from=now - timedelta(days=2),
    )
    ledger = make_ledger("gpu")
    AuditRecord.objects.bulk_create(
        record(
            ledger.keys[i % 3],
            now - timedelta(hours=i + 1),
            cost=Decimal(0),
            model="local-vllm-gpu",
            prompt_tokens=15_000,
            completion_tokens=5_000,
        )
        for i in range(24)
    )  # 480,000 tokens in the last day

    (price,) = gpu_prices_amortise(now=now)

    # $2 x 24 h = $48 over 480,000 tokens = $100 per 1M tokens.
    assert (price.input_per_mtok, price.output_per_mtok) == (Decimal(100), Decimal(100))
    assert price.gpu_hour_usd == 2 and price.source == "gpu"
    assert effective_prices([deployment], at=now)[deployment.id].input_per_mtok == 100


def test_a_new_token_price_keeps_the_tool_fees_unless_it_says_otherwise(world):
    """The console's form and the GPU amortisation set token prices only: the fees per
    provider-run tool call in force carry over to the new version; an explicit {} drops them."""
    deployment = _deployment("searching-4-1", "gpt-4.1")
    first = billing.price_set(
        actor=SYSTEM,
        deployment=deployment,
        input_per_mtok=Decimal(2),
        output_per_mtok=Decimal(8),
        per_tool_call_usd={"web_search": Decimal("0.025")},
        effective_from=timezone.now() - timedelta(minutes=2),
    )
    console = billing.price_set(
        actor=SYSTEM,
        deployment=deployment,
        input_per_mtok=Decimal("1.5"),
        output_per_mtok=Decimal(6),
        effective_from=timezone.now() - timedelta(minutes=1),
    )
    dropped = billing.price_set(
        actor=SYSTEM,
        deployment=deployment,
        input_per_mtok=Decimal("1.5"),
        output_per_mtok=Decimal(6),
        per_tool_call_usd={},
    )

    assert first.per_tool_call_usd == console.per_tool_call_usd == {"web_search": "0.025"}
    assert dropped.per_tool_call_usd == {}
    assert effective_prices([deployment], at=timezone.now())[deployment.id].per_tool_call_usd == ()
