"""`/v1/messages/count_tokens` and the Anthropic protocol headers, with the `anthropic` SDK."""

from __future__ import annotations

import uuid
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import wait_for_record
from tests.guardrails.support import EMAIL, SSN

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

BETA = "token-efficient-tools-2025-02-19"


def client(gateway: Any, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


def sent_upstream(mock_server: Any, marker: str) -> list[dict[str, Any]]:
    return [r for r in mock_server.requests() if marker in str(r.get("body"))]


def test_an_anthropic_route_asks_the_provider_and_audits_without_cost(gateway, world, mock_server):
    marker = uuid.uuid4().hex
    raw = client(gateway, world.key).messages.with_raw_response.count_tokens(
        model="claude-fallback",
        system="Be brief.",
        messages=[{"role": "user", "content": f"How is the Smith portfolio allocated? {marker}"}],
        extra_headers={"anthropic-beta": BETA},
    )
    count = raw.parse()
    assert count.input_tokens > 0
    assert raw.headers["x-gateway-token-count"] == "provider"
    (upstream,) = sent_upstream(mock_server, marker)
    assert upstream["path"] == "/v1/messages/count_tokens"
    assert upstream["body"]["model"] == "mock-claude"
    assert upstream["headers"]["anthropic-beta"] == BETA
    record = wait_for_record(raw.headers["x-request-id"])
    assert (record.endpoint, record.status, record.cost_usd) == (
        "messages.count_tokens",
        "success",
        0,
    )
    assert record.response_body == {"input_tokens": count.input_tokens}


def test_an_openai_format_route_is_counted_locally_and_says_so(gateway, world, mock_server):
    marker = uuid.uuid4().hex
    raw = client(gateway, world.key).messages.with_raw_response.count_tokens(
        model="demo", messages=[{"role": "user", "content": f"Count me {marker}"}]
    )
    assert raw.parse().input_tokens > 0
    assert raw.headers["x-gateway-token-count"] in ("exact", "estimate")
    assert sent_upstream(mock_server, marker) == []


def test_a_count_for_an_unknown_model_is_refused_in_anthropics_format(gateway, world):
    with pytest.raises(anthropic.NotFoundError) as unknown:
        client(gateway, world.key).messages.count_tokens(
            model="gpt-17", messages=[{"role": "user", "content": "hi"}]
        )
    assert unknown.value.body["error"]["type"] == "not_found_error"


def test_anthropic_headers_reach_anthropic_providers_only(gateway, world, mock_server):
    marker = uuid.uuid4().hex
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": BETA}
    for model in ("claude-fallback", "demo"):
        client(gateway, world.key).messages.create(
            model=model,
            max_tokens=20,
            messages=[{"role": "user", "content": f"Hello {marker}"}],
            extra_headers=headers,
        )
    openai.OpenAI(base_url=gateway.api_url, api_key=world.key, max_retries=0).responses.create(
        model="claude-fallback", input=f"Hello again {marker}", extra_headers=headers
    )
    sent = {r["path"]: r["headers"] for r in sent_upstream(mock_server, marker)}
    assert sent["/v1/messages"]["anthropic-beta"] == BETA
    assert sent["/v1/messages"]["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in sent["/v1/chat/completions"]
    assert "anthropic-version" not in sent["/v1/chat/completions"]


@pytest.fixture(scope="module")
def guarded_key(gateway: Any, world: Any, django_db_blocker: Any) -> str:
    """A key under a policy that masks e-mail addresses and blocks US social security numbers."""
    from routing.guardrails import services as guardrails
    from routing.guardrails.core.policy import PolicySpec
    from tests.support.live import wait_for_config
    from tests.support.world import build_tenant

    with django_db_blocker.unblock():
        built = build_tenant(
            "count-guard", name="Counted Carefully", teams=["desk"], keys=["guarded"]
        )
        key, material = built.keys["guarded"].api_key, built.keys["guarded"]
        policy = guardrails.guardrail_policy_upsert(
            name="count-guard",
            spec=PolicySpec.model_validate(
                {"pii": {"entities": {"EMAIL_ADDRESS": "mask", "US_SSN": "block"}}}
            ),
        )
        guardrails.guardrail_policy_attach(policy=policy, api_key=key)
    wait_for_config(gateway, material.plaintext, "claude-fallback")
    blocked = None
    for _ in range(50):  # until the workers' policy tables have the new policy
        try:
            client(gateway, material.plaintext).messages.count_tokens(
                model="claude-fallback", messages=[{"role": "user", "content": f"SSN {SSN}"}]
            )
        except anthropic.BadRequestError as refused:
            blocked = refused
            break
    assert blocked is not None, "the policy never reached the gateway"
    return material.plaintext


def test_pii_in_a_token_count_never_reaches_the_provider(gateway, guarded_key, mock_server):
    marker = uuid.uuid4().hex
    raw = client(gateway, guarded_key).messages.with_raw_response.count_tokens(
        model="claude-fallback",
        messages=[{"role": "user", "content": f"Write to {EMAIL} about it {marker}"}],
    )

    assert raw.parse().input_tokens > 0
    # Masked: counted by the gateway from the masked text, not asked of the provider.
    assert raw.headers["x-gateway-token-count"] in ("exact", "estimate")
    assert sent_upstream(mock_server, marker) == []
    record = wait_for_record(raw.headers["x-request-id"])
    assert EMAIL not in str(record.request_body) and marker in str(record.request_body)
    assert record.guardrail_findings


def test_a_token_count_of_a_blocked_body_is_refused(gateway, guarded_key):
    with pytest.raises(anthropic.BadRequestError) as refused:
        client(gateway, guarded_key).messages.count_tokens(
            model="claude-fallback", messages=[{"role": "user", "content": f"my SSN is {SSN}"}]
        )
    assert refused.value.body["type"] == "error"  # Anthropic's error format
    record = wait_for_record(refused.value.response.headers["x-request-id"])
    assert record.status == "rejected" and SSN not in str(record.request_body)
