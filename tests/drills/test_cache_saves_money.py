"""Drill: a day of advisor traffic with repeats and paraphrases, through two gateway processes.

Advisors ask the same questions again and in other words; the route caches answers by meaning.
Repeats and paraphrases are answered from the cache by either process (the second finds what the
first stored within a second), cost nothing, and their audit records name the request that paid
for the answer; the finance page shows the money saved. No answer crosses tenants, near misses
(another account, another year) go to the provider, and once the prompt's label moves to a new
version no answer made with the old one is served. Run alone:
`pytest tests/drills/test_cache_saves_money.py`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.db import connections
from django.test import Client

from audit.activity.services import Actor
from audit.models import AuditRecord
from routing import services as routing
from routing.models import Deployment
from routing.prompts import services as prompts
from routing.prompts.models import Prompt
from tenants import services as tenant_services
from tenants.models import Role, Tenant
from tests.conftest import wait_for_record
from tests.support.live import LiveGateway, start_gateway, wait_for_config

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

ROUTE = "drill-cache-chat"
PROMPT = "drill-cache-advisor"
OPS = Actor("user", "ops-lead")
FINANCE_USER = "drill-cache-finance"
# Each question, then the same question in other words.
QUESTIONS = (
    (
        "What is the current asset allocation of the Smith portfolio?",
        "What's the current asset allocation of the Smith portfolio?",
    ),
    (
        "What were the fees on account 1234 in 2024?",
        "What fees did account 1234 pay in 2024?",
    ),
    ("Explain what an ETF is.", "What is an ETF?"),
    ("How are dividends taxed?", "How is dividend income taxed?"),
)
# Alike in words, different in what they ask: never served a cached answer.
NEAR_MISSES = (
    "What were the fees on account 1234 in 2023?",
    "What were the fees on account 4321 in 2024?",
    "What is the current asset allocation of the Jones portfolio?",
)


def committed(change: Any) -> Any:
    """A change the gateways can see: on another thread, outside the test's transaction."""

    def run() -> Any:
        try:
            return change()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


@pytest.fixture(scope="module")
def gateways(world: Any, django_db_blocker: Any) -> Iterator[tuple[LiveGateway, LiveGateway]]:
    with django_db_blocker.unblock():
        chat = Deployment.objects.get(name="mock-gpt")
        routing.route_upsert(alias=ROUTE, description="", deployments=[chat], cache_mode="semantic")
        acme = Tenant.objects.get(slug="acme")
        prompt = prompts.prompt_declare(actor=OPS, tenant=acme, name=PROMPT)
        for text in ("You are a precise advisor.", "You are a precise advisor. Cite sources."):
            prompts.prompt_publish(
                actor=OPS, prompt=prompt, messages=[{"role": "system", "content": text}]
            )
        prompts.prompt_label_move(actor=OPS, prompt=prompt, label="production", version=1)
        tenant_services.member_apply(
            tenant=acme,
            username=FINANCE_USER,
            email="finance@acme.example",
            role=Role.FINANCE,
            teams=[],
            password=None,
        )
    first, second = start_gateway(), start_gateway()
    try:
        for gateway in (first, second):
            wait_for_config(gateway, world.key, ROUTE)
            wait_for_config(gateway, world.other_tenant_key, ROUTE)
        yield first, second
    finally:
        first.stop()
        second.stop()


def ask(gateway: LiveGateway, key: str, text: str, **headers: str) -> httpx.Response:
    response = httpx.post(
        gateway.api_url + "/chat/completions",
        headers={"authorization": f"Bearer {key}", **headers},
        json={"model": ROUTE, "messages": [{"role": "user", "content": text}]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


def status(response: httpx.Response) -> str:
    return response.headers["x-gateway-cache"]


def test_a_day_of_advisor_traffic_costs_less_and_never_serves_a_wrong_answer(gateways, world):
    one, two = gateways
    hits: list[httpx.Response] = []
    for question, _ in QUESTIONS:
        assert status(ask(one, world.key, question)) == "miss"
    time.sleep(1.0)  # another process finds an entry within a second
    for question, paraphrase in QUESTIONS:
        again = ask(two, world.key, question)
        assert (status(again), again.headers["x-gateway-cache-match"]) == ("hit", "exact")
        reworded = ask(two, world.key, paraphrase)
        assert status(reworded) == "hit", paraphrase
        assert reworded.headers["x-gateway-cache-match"] in ("exact", "semantic")
        hits += [again, reworded]
    assert any(h.headers["x-gateway-cache-match"] == "semantic" for h in hits)

    for near_miss in NEAR_MISSES:
        assert status(ask(one, world.key, near_miss)) == "miss", near_miss
    for question, paraphrase in QUESTIONS:  # the same words from another tenant
        assert status(ask(two, world.other_tenant_key, question)) == "miss"
        assert status(ask(one, world.other_tenant_key, paraphrase)) in ("miss", "hit")

    # Every cached answer's record names the request that paid for it, in its own tenant.
    saved = Decimal(0)
    for hit in hits:
        record = wait_for_record(hit.headers["x-request-id"])
        cache = record.routing["cache"]
        source = AuditRecord.objects.get(request_id=cache["source_request_id"])
        assert hit.headers["x-gateway-cache-source"] == source.request_id
        assert source.tenant_id == record.tenant_id and source.status == "success"
        assert record.cost_usd == 0 and Decimal(cache["saved_usd"]) == source.cost_usd > 0
        saved += source.cost_usd
    foreign = AuditRecord.objects.filter(
        tenant__slug="globex", route_alias=ROUTE, routing__cache__status="hit"
    )
    for record in foreign:
        source = AuditRecord.objects.get(request_id=record.routing["cache"]["source_request_id"])
        assert source.tenant.slug == "globex"

    # The finance page shows what the cache saved on the route.
    client = Client()
    client.force_login(
        Tenant.objects.get(slug="acme").memberships.get(user__username=FINANCE_USER).user
    )
    page = client.get("/console/t/acme/finance/").content.decode()
    row = re.search(rf'<tr data-route="{ROUTE}">(.*?)</tr>', page, re.S)
    assert row is not None
    shown = re.search(r'data-testid="cache-saved">([\d.]+)<', row.group(1))
    assert shown is not None and Decimal(shown.group(1)) == saved.quantize(Decimal("0.0001"))


def test_a_new_prompt_version_stops_hits_on_the_old_versions_answers(gateways, world):
    one, two = gateways
    question, paraphrase = QUESTIONS[0]
    named = {"x-gateway-prompt": f"{PROMPT}@production"}
    first = ask(one, world.key, question, **named)
    assert (status(first), first.headers["x-gateway-prompt-version"]) == ("miss", "1")
    time.sleep(1.0)
    assert status(ask(two, world.key, paraphrase, **named)) == "hit"

    def move() -> None:
        prompt = Prompt.objects.get(tenant__slug="acme", name=PROMPT)
        prompts.prompt_label_move(actor=OPS, prompt=prompt, label="production", version=2)

    committed(move)
    for gateway in (one, two):
        deadline = time.monotonic() + 10
        while True:  # until this process's prompt table has the move
            after = ask(gateway, world.key, question, **named)
            if after.headers["x-gateway-prompt-version"] == "2":
                break
            assert time.monotonic() < deadline, "the label move did not arrive"
            time.sleep(0.3)
        # The first v2 request anywhere is a miss; later ones may hit v2's own answer only.
        if gateway is one:
            assert status(after) == "miss"
        elif source := after.headers.get("x-gateway-cache-source"):
            assert AuditRecord.objects.get(request_id=source).prompt_version == 2
    later = ask(two, world.key, paraphrase, **named)
    assert later.headers["x-gateway-prompt-version"] == "2"
    if status(later) == "hit":
        source = AuditRecord.objects.get(request_id=later.headers["x-gateway-cache-source"])
        assert source.prompt_version == 2
