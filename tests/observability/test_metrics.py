"""`/metrics` as Prometheus scrapes it, after real traffic through the live gateway."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def _scrape(gateway) -> tuple[str, dict[str, list]]:
    text = httpx.get(gateway.url + "/metrics", timeout=10).text
    families = {f.name: f.samples for f in text_string_to_metric_families(text)}
    return text, families


def _value(samples: list, name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_metrics_carry_requests_latency_tokens_cost_errors_and_breaker_state(gateway, world):
    api = openai.OpenAI(base_url=gateway.api_url, api_key=world.key, max_retries=0)
    messages = [{"role": "user", "content": "metrics please"}]
    api.chat.completions.create(model="demo", messages=messages, user="alice-private-id")
    stream = api.chat.completions.create(
        model="demo", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    for _ in stream:
        pass
    with pytest.raises(openai.NotFoundError):
        api.chat.completions.create(model="no-such-model-xyz", messages=messages)
    # The primary answers 429: one upstream error, one fallback, a cooling deployment. An earlier
    # test may have left the primary cooling down (then it is tried last and nothing falls
    # over), so ask until its cooldown (at most the breaker's 30 s) has passed and it is tried
    # first again.
    deadline = time.monotonic() + 35
    while True:
        api.chat.completions.create(model="with-fallback", messages=messages)
        text, families = _scrape(gateway)
        fell_over = _value(
            families["gateway_fallbacks"], "gateway_fallbacks_total", route="with-fallback"
        )
        if fell_over >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    requests = families["gateway_requests"]
    assert _value(requests, "gateway_requests_total", route="demo", status="success") >= 2
    assert _value(requests, "gateway_requests_total", status="rejected") >= 1
    duration = families["gen_ai_client_operation_duration_seconds"]
    assert (
        _value(duration, "gen_ai_client_operation_duration_seconds_count", deployment="mock-gpt")
        >= 2
    )
    ttft = families["gen_ai_server_time_to_first_token_seconds"]
    assert (
        _value(ttft, "gen_ai_server_time_to_first_token_seconds_count", deployment="mock-gpt") >= 1
    )
    tokens = families["gen_ai_client_token_usage"]
    assert _value(tokens, "gen_ai_client_token_usage_total", token_type="output") > 0
    assert _value(families["gateway_cost_usd"], "gateway_cost_usd_total", deployment="mock-gpt") > 0
    errors = families["gateway_upstream_errors"]
    assert (
        _value(
            errors,
            "gateway_upstream_errors_total",
            deployment="mock-gpt-limited",
            cause="rate_limited",
        )
        >= 1
    )
    fallbacks = families["gateway_fallbacks"]
    assert _value(fallbacks, "gateway_fallbacks_total", route="with-fallback") >= 1
    assert _value(families["gateway_rejections"], "gateway_rejections_total") >= 1
    cooling = families["gateway_deployment_cooling"]
    assert _value(cooling, "gateway_deployment_cooling", deployment="mock-gpt-limited") == 1
    for family in ("gateway_cache_hits", "gateway_guardrail_findings"):
        assert family in families
    # Bounded labels: no end user, no model name a caller made up.
    assert "alice-private-id" not in text
    assert "no-such-model-xyz" not in text
