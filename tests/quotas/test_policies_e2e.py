"""Cost ceilings, shadow rules, soft alerts, capacity queueing and cut streams, end to end."""

from __future__ import annotations

import time

import openai
import pytest

from audit.models import AuditRecord
from tenants.quotas.models import BudgetAlert, SpendEntry
from tests.conftest import wait_for_record

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def sdk(gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)


def ask(client: openai.OpenAI, model: str = "quota-chat", text: str = "hello", **kwargs):
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kwargs
    )


def test_a_request_over_the_cost_ceiling_is_refused_before_any_provider_call(
    gateway, policy_world, mock_server
) -> None:
    before = len(mock_server.requests())
    with pytest.raises(openai.BadRequestError) as caught:
        ask(sdk(gateway, policy_world.ceiling_key))  # 4,096 default output tokens at $10/M
    error = caught.value.response.json()["error"]
    assert error["code"] == "cost_ceiling_exceeded" and error["param"] == "max_tokens"
    assert "$0.0010" in error["message"]
    assert len(mock_server.requests()) == before
    # A request whose worst case fits goes through.
    assert ask(sdk(gateway, policy_world.ceiling_key), max_tokens=10).status_code == 200


def test_a_request_over_the_ceiling_is_downgraded_when_the_policy_says_so(
    gateway, policy_world
) -> None:
    response = ask(sdk(gateway, policy_world.downgrade_key))
    assert response.status_code == 200
    assert response.headers["x-gateway-deployment"] == "cheap-gpt"
    record = wait_for_record(response.headers["x-request-id"])
    assert record.quota["downgraded_from"] == "quota-chat"
    assert record.route_alias == "quota-cheap"


def test_a_shadow_limit_records_what_it_would_refuse_and_refuses_nothing(
    gateway, policy_world
) -> None:
    client = sdk(gateway, policy_world.shadow_key)
    responses = [ask(client) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    records = [wait_for_record(r.headers["x-request-id"]) for r in responses]
    would = [r.quota["checks"][0]["would_refuse"] for r in records]
    assert would == [False, True, True]
    assert "x-ratelimit-limit-requests" not in responses[0].headers  # shadow: not advertised


def test_a_budget_crossing_an_alert_threshold_raises_one_alert(gateway, policy_world) -> None:
    client = sdk(gateway, policy_world.alert_key)
    for _ in range(3):  # each reserves about $0.04 of $0.50: above 5%, so the first one alerts
        ask(client)
    deadline = time.monotonic() + 5
    while not BudgetAlert.objects.filter(budget__tenant__slug="alert-co").exists():
        assert time.monotonic() < deadline, "no budget alert was recorded"
        time.sleep(0.1)
    time.sleep(0.3)  # a second alert, if one were wrongly raised, would be written by now
    alerts = BudgetAlert.objects.filter(budget__tenant__slug="alert-co")
    assert [a.threshold_pct for a in alerts] == [5]  # once, and 95% was never reached


def test_a_request_waits_briefly_for_provider_capacity_instead_of_failing(
    gateway, policy_world
) -> None:
    client = sdk(gateway, policy_world.queue_key)
    # The account allows 2 per minute and lets a request wait 3 s: the third one waits, then is
    # refused with 429 (a minute is longer than the queue), with the wait in its latency.
    assert ask(client, "quota-queued").status_code == 200
    assert ask(client, "quota-queued").status_code == 200
    began = time.monotonic()
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client, "quota-queued")
    assert time.monotonic() - began >= 2.5
    error = caught.value.response.json()["error"]
    assert error["code"] == "provider_capacity"
    assert "provider account 'queued-mock'" in error["message"]


def test_a_stream_cut_short_is_charged_from_the_tokens_the_gateway_counted(
    gateway, quota_world
) -> None:
    client = sdk(gateway, quota_world.free_key)
    with client.chat.completions.with_streaming_response.create(
        model="quota-chat",
        messages=[{"role": "user", "content": "tell me a story [mock break_after_chunks=3]"}],
        stream=True,
    ) as streamed:
        request_id = streamed.headers["x-request-id"]
        list(streamed.iter_lines())
    record = wait_for_record(request_id)
    assert record.status == "failed"
    assert record.usage_estimated
    assert record.completion_tokens > 0 and record.cost_usd > 0
    entry = SpendEntry.objects.get(request_id=request_id)
    assert entry.estimated and entry.amount_usd == record.cost_usd
    assert AuditRecord.objects.get(request_id=request_id).prompt_tokens > 0
