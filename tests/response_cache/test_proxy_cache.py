"""The response cache through the live gateway, with the official openai SDK.

Exact and semantic hits, and what must never happen: an answer crossing tenants, a new prompt
version served the old version's answer, a `no-store` request kept.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from io import StringIO
from typing import Any

import anthropic
import openai
import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from audit.activity.services import Actor
from routing import services as routing
from routing.cache.models import SemanticEntry
from routing.models import Deployment
from routing.prompts import services as prompts
from routing.prompts.models import Prompt
from tenants import services as tenants
from tenants.models import Tenant
from tenants.quotas import services as quotas
from tests.conftest import wait_for_record
from tests.support.live import wait_for_config

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

EXACT, SEMANTIC = "cached-chat", "semantic-chat"
STRICT = "strict-semantic-chat"  # a route of its own threshold: 0.999
PROMPT = "cache-advisor"
OPS = Actor("user", "ops-lead")


@pytest.fixture(scope="module")
def routes(world: Any, gateway: Any, django_db_blocker: Any) -> None:
    with django_db_blocker.unblock():
        chat = Deployment.objects.get(name="mock-gpt")
        routing.route_upsert(alias=EXACT, description="", deployments=[chat], cache_mode="exact")
        routing.route_upsert(
            alias=SEMANTIC, description="", deployments=[chat], cache_mode="semantic"
        )
        routing.route_upsert(
            alias=STRICT,
            description="",
            deployments=[chat],
            cache_mode="semantic",
            cache_similarity=0.999,
        )
        prompt = prompts.prompt_declare(
            actor=OPS, tenant=Tenant.objects.get(slug="acme"), name=PROMPT
        )
        for text in ("You are a careful advisor.", "You are a careful, concise advisor."):
            prompts.prompt_publish(
                actor=OPS, prompt=prompt, messages=[{"role": "system", "content": text}]
            )
        prompts.prompt_label_move(actor=OPS, prompt=prompt, label="production", version=1)
    wait_for_config(gateway, world.key, SEMANTIC)
    wait_for_config(gateway, world.other_tenant_key, SEMANTIC)
    wait_for_config(gateway, world.key, STRICT)
    # The gateway's prompt table reloads on its own schedule: wait until it knows the prompt.
    deadline = time.monotonic() + 20
    while True:
        try:
            ask(gateway, world.key, "warm-up", extra_headers={"x-gateway-prompt": PROMPT})
            break
        except openai.NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def committed(change: Callable[[], Any]) -> Any:
    """A change the live gateway can see: on another thread, outside the test's transaction."""

    def run() -> Any:
        try:
            return change()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def move_label(version: int) -> None:
    def move() -> None:
        prompt = Prompt.objects.get(tenant__slug="acme", name=PROMPT)
        prompts.prompt_label_move(actor=OPS, prompt=prompt, label="production", version=version)

    committed(move)


def sdk(gateway: Any, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)


def ask(gateway: Any, key: str, text: str, model: str = EXACT, **kwargs: Any) -> Any:
    return sdk(gateway, key).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs
    )


def upstream_calls(mock_server: Any, marker: str) -> int:
    return sum(marker in json.dumps(r, default=str) for r in mock_server.requests())


def settled(seconds: float = 0.3) -> None:
    """Answers are kept in the background once their record is written."""
    time.sleep(seconds)


def test_a_repeated_request_is_served_from_the_cache_at_no_cost(
    gateway, world, routes, mock_server
):
    question = f"What is the Smith allocation? {uuid.uuid4().hex}"
    first = ask(gateway, world.key, question)
    assert first.headers["x-gateway-cache"] == "miss"
    settled()
    again = ask(gateway, world.key, question)
    assert again.headers["x-gateway-cache"] == "hit"
    assert again.headers["x-gateway-cache-match"] == "exact"
    assert again.headers["x-gateway-cost-usd"] == "0"
    assert again.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert upstream_calls(mock_server, question) == 1

    original = wait_for_record(first.headers["x-request-id"])
    record = wait_for_record(again.headers["x-request-id"])
    assert original.routing["cache"] == {"status": "miss"}
    assert record.cost_usd == 0 and record.status == "success"
    assert record.routing["cache"]["source_request_id"] == original.request_id
    assert Decimal(record.routing["cache"]["saved_usd"]) == original.cost_usd > 0
    assert record.routing["cache"]["deployment"] == "mock-gpt"


def test_tenant_a_answer_is_never_served_to_tenant_b(gateway, world, routes, mock_server):
    question = f"How are the Jones holdings split? {uuid.uuid4().hex}"
    for model in (EXACT, SEMANTIC):
        ask(gateway, world.key, question, model=model)
        settled()
        assert ask(gateway, world.key, question, model=model).headers["x-gateway-cache"] == "hit"
        other = ask(gateway, world.other_tenant_key, question, model=model)
        assert other.headers["x-gateway-cache"] == "miss"
        record = wait_for_record(other.headers["x-request-id"])
        assert record.tenant.slug == "globex" and record.routing["cache"]["status"] == "miss"
    # Twice per route for acme (the miss, then nothing), once per route for globex.
    assert upstream_calls(mock_server, question) == 4


def test_a_paraphrase_hits_the_semantic_cache_of_its_own_tenant_only(
    gateway, world, routes, mock_server
):
    nonce = uuid.uuid4().hex[:8]
    first = ask(
        gateway,
        world.key,
        f"What is the current asset allocation of the Smith{nonce} portfolio?",
        model=SEMANTIC,
    )
    assert first.headers["x-gateway-cache"] == "miss"
    settled()
    paraphrase = f"What's the current asset allocation of the Smith{nonce} portfolio?"
    hit = ask(gateway, world.key, paraphrase, model=SEMANTIC)
    assert hit.headers["x-gateway-cache"] == "hit"
    assert hit.headers["x-gateway-cache-match"] == "semantic"
    assert 0.9 <= float(hit.headers["x-gateway-cache-similarity"]) < 1
    assert hit.headers["x-gateway-cache-source"] == first.headers["x-request-id"]
    record = wait_for_record(hit.headers["x-request-id"])
    assert record.routing["cache"]["kind"] == "semantic"
    assert record.routing["cache"]["similarity"] >= 0.9
    # Another account is another question, however alike the words.
    other_account = ask(
        gateway,
        world.key,
        f"What is the current asset allocation of the Jones{nonce} portfolio?",
        model=SEMANTIC,
    )
    assert other_account.headers["x-gateway-cache"] == "miss"
    foreign = ask(gateway, world.other_tenant_key, paraphrase, model=SEMANTIC)
    assert foreign.headers["x-gateway-cache"] == "miss"
    assert SemanticEntry.objects.filter(tenant__slug="acme", route_alias=SEMANTIC).exists()


def test_each_route_keeps_its_own_similarity_threshold(gateway, world, routes, mock_server):
    nonce = uuid.uuid4().hex[:8]
    question = f"What is the current asset allocation of the Brown{nonce} portfolio?"
    paraphrase = f"What's the current asset allocation of the Brown{nonce} portfolio?"
    for model in (SEMANTIC, STRICT):
        assert ask(gateway, world.key, question, model=model).headers["x-gateway-cache"] == "miss"
    settled()
    lenient = ask(gateway, world.key, paraphrase, model=SEMANTIC)
    assert lenient.headers["x-gateway-cache"] == "hit"
    similarity = float(lenient.headers["x-gateway-cache-similarity"])
    assert 0.9 <= similarity < 0.999
    # The same pair, as alike, on the route that asks for 0.999: the provider answers.
    assert ask(gateway, world.key, paraphrase, model=STRICT).headers["x-gateway-cache"] == "miss"
    assert ask(gateway, world.key, question, model=STRICT).headers["x-gateway-cache"] == "hit"


def test_a_new_prompt_version_never_gets_the_old_versions_answers(
    gateway, world, routes, mock_server
):
    question = f"Summarise the Smith account. {uuid.uuid4().hex}"
    headers = {"x-gateway-prompt": f"{PROMPT}@production"}
    first = ask(gateway, world.key, question, extra_headers=headers)
    assert (first.headers["x-gateway-cache"], first.headers["x-gateway-prompt-version"]) == (
        "miss",
        "1",
    )
    settled()
    assert (
        ask(gateway, world.key, question, extra_headers=headers).headers["x-gateway-cache"] == "hit"
    )
    move_label(2)
    deadline = time.monotonic() + 10
    while True:  # until the gateway's prompt table has the move
        after = ask(gateway, world.key, question, extra_headers=headers)
        if after.headers["x-gateway-prompt-version"] == "2" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert after.headers["x-gateway-prompt-version"] == "2"
    assert after.headers["x-gateway-cache"] == "miss"
    move_label(1)


def test_no_store_keeps_nothing_and_no_cache_skips_the_cache(gateway, world, routes, mock_server):
    question = f"Is the Smith account balanced? {uuid.uuid4().hex}"
    kept_nothing = ask(gateway, world.key, question, extra_headers={"cache-control": "no-store"})
    assert kept_nothing.headers["x-gateway-cache"] == "miss"
    settled()
    assert ask(gateway, world.key, question).headers["x-gateway-cache"] == "miss"
    settled()
    fresh = ask(gateway, world.key, question, extra_headers={"cache-control": "no-cache"})
    assert fresh.headers["x-gateway-cache"] == "bypass"
    old = ask(gateway, world.key, question, extra_headers={"cache-control": "max-age=0"})
    assert old.headers["x-gateway-cache"] == "bypass"
    assert ask(gateway, world.key, question).headers["x-gateway-cache"] == "hit"
    assert upstream_calls(mock_server, question) == 4
    # On a semantic route, no-store keeps no question to be found by meaning either.
    reworded = f"Is the Smith{uuid.uuid4().hex[:8]} account balanced?"
    unkept = ask(
        gateway, world.key, reworded, model=SEMANTIC, extra_headers={"cache-control": "no-store"}
    )
    settled()
    assert not SemanticEntry.objects.filter(request_id=unkept.headers["x-request-id"]).exists()
    assert ask(gateway, world.key, reworded, model=SEMANTIC).headers["x-gateway-cache"] == "miss"


def test_a_cached_stream_replays_as_a_stream_the_sdk_reads(gateway, world, routes, mock_server):
    question = f"Explain the Smith rebalancing plan in detail please. {uuid.uuid4().hex}"
    client = sdk(gateway, world.key)
    first = ask(gateway, world.key, question)
    settled()
    with client.chat.completions.with_streaming_response.create(
        model=EXACT,
        messages=[{"role": "user", "content": question}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["x-gateway-cache"] == "hit"
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == first.parse().choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    # And a streamed answer is kept for the next request, streamed or not.
    streamed_question = question + " (streamed)"
    stream = client.chat.completions.create(
        model=EXACT, messages=[{"role": "user", "content": streamed_question}], stream=True
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    settled()
    again = ask(gateway, world.key, streamed_question)
    assert again.headers["x-gateway-cache"] == "hit"
    assert again.parse().choices[0].message.content == streamed
    assert upstream_calls(mock_server, question) == 2


def test_a_purge_removes_exactly_what_it_names(gateway, world, routes):
    question = f"What did the Smith account earn? {uuid.uuid4().hex}"
    prompted = {"x-gateway-prompt": f"{PROMPT}@1"}
    for key, headers in ((world.key, {}), (world.key, prompted), (world.other_tenant_key, {})):
        ask(gateway, key, question, extra_headers=headers)
    settled()
    call_command("cache_purge", "--tenant", "acme", "--prompt", f"{PROMPT}@1", stdout=StringIO())
    assert (
        ask(gateway, world.key, question, extra_headers=prompted).headers["x-gateway-cache"]
        == "miss"
    )
    assert ask(gateway, world.key, question).headers["x-gateway-cache"] == "hit"
    call_command("cache_purge", "--tenant", "acme", "--route", EXACT, stdout=StringIO())
    assert ask(gateway, world.key, question).headers["x-gateway-cache"] == "miss"
    # Another tenant's answers are not touched by a purge of acme's; a route's purge takes all.
    assert ask(gateway, world.other_tenant_key, question).headers["x-gateway-cache"] == "hit"
    call_command("cache_purge", "--route", EXACT, stdout=StringIO())
    assert ask(gateway, world.other_tenant_key, question).headers["x-gateway-cache"] == "miss"


def test_a_purge_must_name_what_it_removes():
    with pytest.raises(CommandError, match="Name a tenant, a route"):
        call_command("cache_purge", stdout=StringIO())
    with pytest.raises(CommandError, match="name the tenant too"):
        call_command("cache_purge", "--prompt", "advisor@2", stdout=StringIO())


def test_an_anthropic_client_gets_a_cached_answer_in_its_own_format(gateway, world, routes):
    question = f"How is the Smith trust invested? {uuid.uuid4().hex}"
    client = anthropic.Anthropic(base_url=gateway.url, api_key=world.key, max_retries=0)
    asked = {
        "model": EXACT,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": question}],
    }
    first = client.messages.with_raw_response.create(**asked)
    assert first.headers["x-gateway-cache"] == "miss"
    settled()
    raw = client.messages.with_raw_response.create(**asked)
    assert raw.headers["x-gateway-cache"] == "hit"
    message = raw.parse()
    assert message.type == "message" and message.stop_reason == "end_turn"
    assert message.content[0].text == first.parse().content[0].text
    with client.messages.stream(**asked) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == message.content[0].text and final.usage.output_tokens > 0


def test_n_above_one_is_not_cached(gateway, world, routes):
    question = f"Name two Smith funds. {uuid.uuid4().hex}"
    assert ask(gateway, world.key, question, n=2).headers["x-gateway-cache"] == "bypass"


def test_a_responses_client_gets_a_cached_answer_in_its_own_format(gateway, world, routes):
    question = f"Summarise the Smith trust's bond holdings. {uuid.uuid4().hex}"
    client = sdk(gateway, world.key)
    first = client.responses.with_raw_response.create(model=EXACT, input=question)
    assert first.headers["x-gateway-cache"] == "miss"
    settled()
    again = client.responses.with_raw_response.create(model=EXACT, input=question)
    assert again.headers["x-gateway-cache"] == "hit"
    answer = again.parse()
    assert answer.status == "completed" and answer.output_text == first.parse().output_text
    assert answer.id != first.parse().id
    events = list(client.responses.create(model=EXACT, input=question, stream=True))
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == answer.output_text


def test_a_cached_answer_counts_against_the_request_rate_but_spends_no_tokens(
    gateway, world, routes, mock_server
):
    def limited_key() -> str:
        tenant = Tenant.objects.get(slug="acme")
        key, material = tenants.key_create(team=world.team, name=f"cache-rpm-{uuid.uuid4().hex}")
        quotas.rate_limit_set(
            tenant=tenant, scope="key", api_key=key, requests_per_minute=2, tokens_per_minute=10_000
        )
        return material.plaintext

    key = committed(limited_key)
    wait_for_config(gateway, key, EXACT)
    question = f"What is the Smith cash position? {uuid.uuid4().hex}"
    first = ask(gateway, key, question)
    assert first.headers["x-gateway-cache"] == "miss"
    settled()
    hit = ask(gateway, key, question)
    assert hit.headers["x-gateway-cache"] == "hit"
    record = wait_for_record(hit.headers["x-request-id"])
    assert record.cost_usd == 0
    # Counted as a request, and charged no tokens.
    assert [c["meter"] for c in record.quota["checks"]] == ["requests"]
    assert hit.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError) as refused:
        ask(gateway, key, question)
    assert refused.value.code == "rate_limit_exceeded"
    assert upstream_calls(mock_server, question) == 1
