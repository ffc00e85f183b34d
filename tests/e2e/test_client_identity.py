"""Per-user limits count Claude Code's account, not each of its sessions."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tenants.quotas import services as quotas
from tenants.quotas.models import EACH_USER
from tests.conftest import wait_for_record
from tests.support.live import wait_for_config
from tests.support.world import build_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

ACCOUNT = "0d6f1e2a-3b4c-4d5e-8f60-718293a4b5c6"
DEVICE = "c" * 64


@pytest.fixture(scope="module")
def per_user_key(world: Any, gateway: Any, django_db_blocker: Any) -> str:
    """A tenant whose every end user may make two requests a minute."""
    with django_db_blocker.unblock():
        built = build_tenant("claude-code-co", name="Claude Code Co", teams=["devs"], keys=["cli"])
        tenant = built.tenant
        key = built.keys["cli"]
        quotas.rate_limit_set(
            tenant=tenant, scope="user", end_user=EACH_USER, requests_per_minute=2
        )
    wait_for_config(gateway, key.plaintext, "claude-fallback")
    return key.plaintext


def claude_code_request(gateway: Any, key: str, session: str) -> httpx.Response:
    user_id = {"device_id": DEVICE, "account_uuid": ACCOUNT, "session_id": session}
    return httpx.post(
        gateway.url + "/v1/messages",
        json={
            "model": "claude-fallback",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "hello"}],
            "metadata": {"user_id": json.dumps(user_id)},
        },
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        timeout=20,
    )


def test_it_refuses_a_third_session_of_one_account_over_a_per_user_limit(gateway, per_user_key):
    first = claude_code_request(gateway, per_user_key, "session-1")
    second = claude_code_request(gateway, per_user_key, "session-2")
    third = claude_code_request(gateway, per_user_key, "session-3")

    assert (first.status_code, second.status_code) == (200, 200)
    assert third.status_code == 429  # a new session is not a new person
    record = wait_for_record(second.headers["x-request-id"])
    assert record.end_user == ACCOUNT
    assert record.client_context["session_id"] == "session-2"
    assert record.client_context["client"] == "claude-code"
