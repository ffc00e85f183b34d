"""Limits and budgets as an SDK user meets them, against the live gateway and real Redis."""

from __future__ import annotations

from decimal import Decimal

import httpx
import openai
import pytest
from django.db.models import Sum

from audit.models import AuditRecord
from tenants.quotas.models import SpendEntry
from tests.conftest import wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def client(gateway, key: str, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0, **kwargs)


def ask(sdk: openai.OpenAI, text: str = "hello there", **kwargs):
    return sdk.chat.completions.with_raw_response.create(
        model="quota-chat", messages=[{"role": "user", "content": text}], **kwargs
    )


def test_a_key_over_its_rpm_gets_a_429_that_names_the_limit_and_when_to_retry(
    gateway, quota_world
) -> None:
    sdk = client(gateway, quota_world.key)
    remaining = [ask(sdk).headers["x-ratelimit-remaining-requests"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]

    with pytest.raises(openai.RateLimitError) as caught:
        ask(sdk)

    response = caught.value.response
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert "key 'burst'" in response.json()["error"]["message"]
    assert response.headers["x-ratelimit-limit-requests"] == "3"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert 1 <= int(response.headers["retry-after"]) <= 61
    assert response.headers["x-gateway-limit-scope"] == "key 'burst'"
    record = wait_for_record(response.headers["x-request-id"])
    assert record.status == "rejected" and record.error_type == "rate_limit_exceeded"


def test_a_spent_budget_stops_the_request_and_tells_the_sdk_not_to_retry(
    gateway, quota_world, mock_server
) -> None:
    sdk = openai.OpenAI(base_url=gateway.api_url, api_key=quota_world.budget_key)  # SDK retries on
    before = len(mock_server.requests())
    with pytest.raises(openai.RateLimitError) as caught:
        # The reservation (prompt + the 4,096-token default at $10/M) is above $0.0005.
        ask(sdk)
    response = caught.value.response
    error = response.json()["error"]
    assert error["code"] == "budget_exceeded" and error["type"] == "insufficient_quota"
    assert "team 'thrifty'" in error["message"] and "renews at" in error["message"]
    assert response.headers["x-should-retry"] == "false"
    assert len(mock_server.requests()) == before  # no provider call, and the SDK did not retry

    # A request whose worst case fits is served.
    small = ask(sdk, "hi", max_tokens=20)
    assert small.status_code == 200
    assert Decimal(small.headers["x-gateway-budget-remaining-usd"]) < Decimal("0.0005")


def test_a_prompt_larger_than_the_tpm_limit_is_refused_as_never_fitting(
    gateway, quota_world
) -> None:
    sdk = client(gateway, quota_world.tokens_key)
    with pytest.raises(openai.RateLimitError) as caught:
        ask(sdk, "word " * 200)
    response = caught.value.response
    assert response.json()["error"]["code"] == "request_exceeds_limit"
    assert response.headers["x-should-retry"] == "false"


def test_a_streamed_request_is_charged_exactly_as_the_same_request_unstreamed(
    gateway, quota_world
) -> None:
    sdk = client(gateway, quota_world.free_key)
    prompt = "count the cost of this request in both ways please"
    plain = ask(sdk, prompt, max_tokens=30)
    with sdk.chat.completions.with_streaming_response.create(
        model="quota-chat",
        messages=[{"role": "user", "content": prompt}],
        max_tokens=30,
        stream=True,
    ) as streamed:
        request_id = streamed.headers["x-request-id"]
        chunks = list(streamed.iter_lines())
    assert chunks  # the client did not ask for usage: it gets none, the gateway still does
    assert not any('"usage":{' in line for line in chunks)
    charged_plain = SpendEntry.objects.get(request_id=plain.headers["x-request-id"]).amount_usd
    wait_for_record(request_id)
    charged_stream = SpendEntry.objects.get(request_id=request_id).amount_usd
    assert charged_plain > 0
    assert charged_stream == charged_plain


def test_the_ledger_holds_exactly_the_audited_costs(gateway, quota_world) -> None:
    sdk = client(gateway, quota_world.free_key)
    ids = [ask(sdk, f"ledger check {i}").headers["x-request-id"] for i in range(5)]
    records = [wait_for_record(request_id) for request_id in ids]
    ledger = SpendEntry.objects.filter(request_id__in=ids).aggregate(total=Sum("amount_usd"))
    assert ledger["total"] == sum(r.cost_usd for r in records)
    # Each record says what was reserved for it, even with no rule to check.
    assert all(Decimal(r.quota["reserved_usd"]) > 0 for r in records)


def test_the_record_of_a_limited_key_lists_the_checks_that_applied(gateway, quota_world) -> None:
    sdk = client(gateway, quota_world.tokens_key)
    response = ask(sdk, "short one")
    record = AuditRecord.objects.get(request_id=response.headers["x-request-id"])
    assert record.quota["store"] == "redis"
    [check] = record.quota["checks"]
    assert check["meter"] == "tokens" and check["scope"] == "key 'small-tpm'"
    assert check["limit"] == 50


def test_a_dry_run_says_what_would_stop_a_request_and_counts_nothing(
    gateway, quota_world, mock_server
) -> None:
    before = len(mock_server.requests())
    answer = httpx.post(
        gateway.api_url + "/chat/completions",
        headers={"authorization": f"Bearer {quota_world.budget_key}", "x-gateway-dry-run": "1"},
        json={"model": "quota-chat", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["allowed"] is False
    assert body["would_stop"]["meter"] == "budget"
    assert body["would_stop"]["scope"].startswith("monthly budget of team 'thrifty'")
    assert Decimal(body["max_cost_usd"]) > Decimal("0.0005")
    assert len(mock_server.requests()) == before
