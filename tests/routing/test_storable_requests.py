"""Nothing is forwarded that could not be recorded, and no spend is counted that the ledger lacks.

In process, against the mock provider: a request whose record could not be written is refused
before any provider is called; a call the provider answered whose record could not be written is
recorded later, with its ledger row, and charged once then, so the budget counter and the ledger
still agree.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from audit.models import AuditRecord, AuditStatus
from audit.writer import AuditWriteError, AuditWriter
from tenants.quotas.models import SpendEntry
from tests.support.spend import Budgeted, build_budgeted, ledger_nanos, settled_counter

pytestmark = [pytest.mark.django_db]


@pytest.fixture(scope="module")
def budgeted(django_db_setup: None, django_db_blocker: Any, mock_server: Any) -> Budgeted:
    with django_db_blocker.unblock():
        return build_budgeted(mock_server.base_url, "storable")


async def _post(key: str, path: str, body: dict[str, Any] | bytes) -> Any:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return await AsyncClient().post(
        path, data, content_type="application/json", headers={"authorization": f"Bearer {key}"}
    )


def _record(request_id: str) -> AuditRecord:
    return AuditRecord.objects.get(request_id=request_id)


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"user": "a\x00b"}, "user"),
        ({"user": "u" * 201}, "user"),
        ({"metadata": {"feature": "f\x00"}}, "metadata.feature"),
        ({"metadata": {"feature": "f" * 201}}, "metadata.feature"),
    ],
)
async def test_it_refuses_an_end_user_or_feature_it_could_not_store_exactly(
    world, mock_server, in_process_proxy, change, param
) -> None:
    before = len(mock_server.requests())
    body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], **change}

    response = await _post(world.key, "/v1/chat/completions", body)

    assert response.status_code == 400, response.content
    error = orjson.loads(response.content)["error"]
    assert (error["code"], error["param"]) == ("invalid_value", param)
    assert len(mock_server.requests()) == before  # no provider was called
    record = await sync_to_async(_record)(response["x-request-id"])
    assert record.status == AuditStatus.REJECTED


async def test_it_refuses_a_body_nested_too_deep_to_record_before_calling_a_provider(
    world, mock_server, in_process_proxy
) -> None:
    before = len(mock_server.requests())
    deep = b"[" * 300 + b"]" * 300
    body = b'{"model":"demo","messages":[{"role":"user","content":"hi"}],"extra":' + deep + b"}"

    response = await _post(world.key, "/v1/chat/completions", body)

    assert response.status_code == 400, response.content
    assert orjson.loads(response.content)["error"]["code"] == "invalid_json"
    assert len(mock_server.requests()) == before
    record = await sync_to_async(_record)(response["x-request-id"])
    assert record.status == AuditStatus.REJECTED


async def test_a_nul_in_a_prompt_is_served_and_recorded(world, in_process_proxy) -> None:
    body = {"model": "demo", "messages": [{"role": "user", "content": "a\x00b"}]}

    response = await _post(world.key, "/v1/chat/completions", body)

    assert response.status_code == 200, response.content
    record = await sync_to_async(_record)(response["x-request-id"])
    assert record.status == AuditStatus.SUCCESS
    assert "request_body" in record.stored_escaped


def _recorded_late(request_id: str, *, timeout: float = 5.0) -> AuditRecord:
    deadline = time.monotonic() + timeout
    while True:
        record = AuditRecord.objects.filter(request_id=request_id).first()
        if record is not None and record.status != AuditStatus.IN_PROGRESS:
            return record
        assert time.monotonic() < deadline, f"{request_id} was never recorded"
        time.sleep(0.05)


async def test_a_call_the_provider_answered_is_recorded_late_and_charged_once(
    budgeted, mock_server, in_process_proxy, monkeypatch
) -> None:
    async def fails(self: AuditWriter, entry: Any) -> None:
        raise AuditWriteError(entry.request_id)

    before = len(mock_server.requests())
    monkeypatch.setattr(AuditWriter, "insert", fails)  # the deferred write goes round it
    body = {"model": budgeted.chat_model, "messages": [{"role": "user", "content": "pay"}]}

    response = await _post(budgeted.key, "/v1/chat/completions", body)

    assert response.status_code == 503
    assert orjson.loads(response.content)["error"]["code"] == "audit_unavailable"
    assert len(mock_server.requests()) == before + 1  # it was answered, then not released
    rid = response["x-request-id"]
    record = await sync_to_async(_recorded_late)(rid)
    assert (record.status, record.http_status) == (AuditStatus.FAILED, 503)
    assert record.error_type == "audit_unavailable" and record.cost_usd > 0
    charges = await sync_to_async(SpendEntry.objects.filter(request_id=rid).count)()
    assert charges == 1
    counter = await sync_to_async(settled_counter)(budgeted.budget)
    assert counter == await sync_to_async(ledger_nanos)(budgeted.tenant)


async def test_a_stream_whose_completion_failed_is_completed_later_and_charged_once(
    budgeted, in_process_proxy, monkeypatch
) -> None:
    async def fails(self: AuditWriter, entry: Any) -> None:
        raise AuditWriteError(entry.request_id)

    monkeypatch.setattr(AuditWriter, "complete", fails)
    body = {
        "model": budgeted.chat_model,
        "messages": [{"role": "user", "content": "stream and pay"}],
        "stream": True,
    }

    response = await _post(budgeted.key, "/v1/chat/completions", body)
    assert response.status_code == 200
    streamed = b"".join([chunk async for chunk in response.streaming_content])
    assert b"[DONE]" in streamed

    rid = response["x-request-id"]
    record = await sync_to_async(_recorded_late)(rid)
    assert record.status == AuditStatus.SUCCESS
    counter = await sync_to_async(settled_counter)(budgeted.budget)
    assert counter == await sync_to_async(ledger_nanos)(budgeted.tenant)
    charges = await sync_to_async(SpendEntry.objects.filter(request_id=rid).count)()
    assert charges == 1
