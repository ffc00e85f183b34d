"""A client that goes away while its call is with the provider: the call still ends with its
record as soon as the provider answers (what it answered and charged, and that the client left),
not only when the worker stops, as `interrupted` with nothing charged."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from audit.models import AuditRecord

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def _leave_early(gateway: Any, world: Any, stream: bool) -> str:
    """A call the mock answers after 1.5 s, from a client that gives up after 0.3 s; returns
    the end user naming it (the client never got a request id)."""
    marker = f"leaver-{uuid.uuid4().hex[:12]}"
    body = {
        "model": "demo",
        "stream": stream,
        "user": marker,
        "messages": [{"role": "user", "content": "[mock latency_ms=1500] take your time"}],
    }
    headers = {"authorization": f"Bearer {world.key}"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(gateway.api_url + "/chat/completions", json=body, headers=headers, timeout=0.3)
    return marker


def _record_of(marker: str, timeout: float = 8.0) -> AuditRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = AuditRecord.objects.filter(end_user=marker).first()
        if record is not None and record.status != "in_progress":
            return record
        time.sleep(0.05)
    raise AssertionError(f"no finished record for the call of {marker}")


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_call_whose_client_left_is_recorded_with_what_the_provider_charged(
    gateway, world, stream
):
    marker = _leave_early(gateway, world, stream)

    record = _record_of(marker)

    assert (record.status, record.error_type) == ("failed", "client_disconnected")
    assert record.prompt_tokens > 0 and record.cost_usd > 0
    if stream:  # cut at its first event: what was generated is counted, not reported
        assert record.usage_estimated
    else:  # the provider's whole answer, as it reported it
        assert record.completion_tokens > 0 and not record.usage_estimated
        assert record.response_body["choices"][0]["message"]["content"]
    assert record.deployment_name == "mock-gpt"
    assert [a["status"] for a in record.attempts] == [200]


def test_a_token_count_whose_client_left_is_recorded_when_the_provider_answers(gateway, world):
    marker = f"leaver-{uuid.uuid4().hex[:12]}"
    body = {
        "model": "claude-fallback",  # an Anthropic-format route: the provider is asked
        "messages": [{"role": "user", "content": "[mock latency_ms=1500] count me slowly"}],
    }
    headers = {"x-api-key": world.key, "x-gateway-end-user": marker}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            gateway.url + "/v1/messages/count_tokens", json=body, headers=headers, timeout=0.3
        )

    record = _record_of(marker)

    assert record.endpoint == "messages.count_tokens"
    assert (record.status, record.error_type) == ("failed", "client_disconnected")
    assert record.prompt_tokens > 0 and record.cost_usd == 0
