"""A cache hit touches the database only to write its own record: no ledger row, no lookup."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
from django.db import connections
from django.test import AsyncClient

from routing import services as routing
from routing.models import Deployment
from tests.routing.test_hot_path_queries import (  # noqa: F401 - fixtures
    only_the_record_and_its_charge,
    statements,
)

pytestmark = [pytest.mark.django_db]


async def test_a_warm_miss_and_a_hit_each_make_one_statement(world, statements, in_process_proxy):  # noqa: F811
    def route() -> None:  # committed on a thread of its own: the proxy's threads must see it
        try:
            chat = Deployment.objects.get(name="mock-gpt")
            routing.route_upsert(
                alias="hot-path-cached", description="", deployments=[chat], cache_mode="exact"
            )
        finally:
            connections.close_all()

    await asyncio.to_thread(route)
    client, auth = AsyncClient(), {"authorization": f"Bearer {world.key}"}

    async def ask(text: str) -> object:
        body = {"model": "hot-path-cached", "messages": [{"role": "user", "content": text}]}
        return await client.post(
            "/v1/chat/completions",
            orjson.dumps(body),
            content_type="application/json",
            headers=auth,
        )

    warm = await ask("warm up")
    assert warm.status_code == 200, warm.content  # type: ignore[attr-defined]
    question = f"Smith allocation {uuid.uuid4().hex}"
    statements.clear()
    miss = await ask(question)
    assert miss["x-gateway-cache"] == "miss"  # type: ignore[index]
    assert only_the_record_and_its_charge(statements), statements
    await asyncio.sleep(0.2)  # the answer is kept in the background (Redis only)
    statements.clear()

    hit = await ask(question)

    assert hit["x-gateway-cache"] == "hit"  # type: ignore[index]
    assert len(statements) == 1 and 'INSERT INTO "audit_auditrecord"' in statements[0], statements
    assert "quotas_spendentry" not in statements[0]


class BrokenStore:
    """Redis stopped: every read and write fails."""

    name = "broken"

    async def get(self, key: str) -> bytes | None:
        raise ConnectionError("the cache store is down")

    async def put(self, key: str, value: bytes, ttl_s: int) -> None:
        raise ConnectionError("the cache store is down")

    async def purge(self, pattern: str) -> int:
        raise ConnectionError("the cache store is down")


async def test_a_cache_that_cannot_be_read_is_a_miss_and_the_provider_answers(
    world,
    in_process_proxy,
):
    from routing.runtime import get_runtime

    def route() -> None:
        try:
            chat = Deployment.objects.get(name="mock-gpt")
            routing.route_upsert(
                alias="hot-path-broken-cache",
                description="",
                deployments=[chat],
                cache_mode="semantic",
            )
        finally:
            connections.close_all()

    await asyncio.to_thread(route)
    get_runtime().cache.store = BrokenStore()
    client, auth = AsyncClient(), {"authorization": f"Bearer {world.key}"}
    body = {"model": "hot-path-broken-cache", "messages": [{"role": "user", "content": "Hi?"}]}
    for _ in range(2):
        answer = await client.post(
            "/v1/chat/completions",
            orjson.dumps(body),
            content_type="application/json",
            headers=auth,
        )
        assert answer.status_code == 200, answer.content
        assert answer["x-gateway-cache"] == "miss"
        assert orjson.loads(answer.content)["choices"][0]["message"]["content"]
