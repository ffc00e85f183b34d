"""A key in its rotation grace and its successor are one key to the limits and budgets: calls
through either count against the same key-level counters, so rotating never doubles a key's
rate limit or its budget."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tenants import services as tenants
from tenants.quotas import services as quotas
from tests.support.live import wait_for_config

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def chat(gateway: Any, key: str, **extra: Any) -> httpx.Response:
    body = {"model": "demo", "messages": [{"role": "user", "content": "Hi"}], **extra}
    return httpx.post(
        gateway.api_url + "/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


def _rotated(gateway: Any, django_db_blocker: Any, **rules: Any) -> tuple[str, str]:
    """A key under key-level `rules`, rotated with a day's grace: (old key, successor),
    committed for the live gateway (from a module fixture, outside any test's transaction)."""
    with django_db_blocker.unblock():
        tenant = tenants.tenant_apply(slug=f"rot-{uuid.uuid4().hex[:6]}", name="Rotation")
        team = tenants.team_apply(tenant=tenant, slug="desk", name="Desk", allowed_models=[])
        old, created = tenants.key_create(team=team, name="agent")
        if "requests_per_minute" in rules:
            quotas.rate_limit_set(tenant=tenant, scope="key", api_key=old, **rules)
        else:
            quotas.budget_set(tenant=tenant, scope="key", api_key=old, **rules)
        _, successor = tenants.key_rotate(key=old, grace=timedelta(days=1))
    for key in (created.plaintext, successor.plaintext):
        wait_for_config(gateway, key, "demo")
    return created.plaintext, successor.plaintext


@pytest.fixture(scope="module")
def limited(gateway: Any, world: Any, django_db_blocker: Any) -> tuple[str, str]:
    return _rotated(gateway, django_db_blocker, requests_per_minute=3)


@pytest.fixture(scope="module")
def budgeted(gateway: Any, world: Any, django_db_blocker: Any) -> tuple[str, str]:
    return _rotated(gateway, django_db_blocker, amount_usd=Decimal("0.0002"))


def test_the_old_key_and_its_successor_share_one_rate_limit(
    gateway: Any, limited: tuple[str, str]
) -> None:
    old, new = limited

    answers = [chat(gateway, key).status_code for key in (old, old, new, new, old)]

    assert answers == [200, 200, 200, 429, 429]


def test_the_old_key_and_its_successor_share_one_budget(
    gateway: Any, budgeted: tuple[str, str]
) -> None:
    old, new = budgeted

    # Three small calls through the old key spend the budget of the two keys together.
    for _ in range(3):
        chat(gateway, old, max_tokens=8)
    after = chat(gateway, new, max_tokens=8)

    assert after.status_code == 429, after.text
    assert after.json()["error"]["code"] == "budget_exceeded"
