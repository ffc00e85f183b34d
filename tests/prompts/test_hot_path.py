"""A warm request that names a prompt still reads nothing: its only statements are the writes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.test import AsyncClient

from audit.activity.services import Actor
from routing.prompts import services
from tenants.models import Tenant
from tests.routing.test_hot_path_queries import (  # noqa: F401  (fixtures)
    only_the_record_and_its_charge,
    statements,
)

pytestmark = [pytest.mark.django_db]


@pytest.fixture(scope="module")
def hot_prompt(world: Any, django_db_blocker: Any) -> None:
    with django_db_blocker.unblock():
        prompt = services.prompt_declare(
            actor=Actor("system", "tests"), tenant=Tenant.objects.get(slug="acme"), name="hot"
        )
        services.prompt_publish(
            actor=Actor("system", "tests"),
            prompt=prompt,
            messages=[{"role": "system", "content": "Answer {{ client }} briefly."}],
        )
        services.prompt_label_move(
            actor=Actor("system", "tests"), prompt=prompt, label="production", version=1
        )


async def test_a_warm_prompt_request_reads_nothing_from_the_database(
    world,
    hot_prompt,
    statements,  # noqa: F811
    in_process_proxy,
):
    client = AsyncClient()
    headers = {"authorization": f"Bearer {world.key}", "x-gateway-prompt": "hot@production"}
    body = orjson.dumps(
        {
            "model": "demo",
            "messages": [{"role": "user", "content": "warm up"}],
            "prompt_variables": {"client": "C-1"},
        }
    )
    first = await client.post(
        "/v1/chat/completions", body, content_type="application/json", headers=headers
    )
    assert first.status_code == 200, first.content
    statements.clear()

    second = await client.post(
        "/v1/chat/completions", body, content_type="application/json", headers=headers
    )

    assert second.status_code == 200
    assert second.headers["x-gateway-prompt-version"] == "1"
    # The same writes as any request (the audit record and what it carries), no reads at all.
    assert only_the_record_and_its_charge(statements), statements
    assert not any("prompts_" in s for s in statements)
