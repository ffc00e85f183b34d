"""A fault of the gateway's own never leaves a call without a record: an exception no step
expected, before the provider is asked or after it answered, is answered 500 in the API's own
format with the request id, and the call is on the record as failed with `internal_error`.

In process, against the mock provider, with a step made to fail."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from audit.models import AuditRecord, AuditStatus
from routing import pipeline

pytestmark = [pytest.mark.django_db]


def _broken(*args: Any, **kwargs: Any) -> Any:
    raise TypeError("a step of the gateway's own broke")


async def _post(key: str, path: str, body: dict[str, Any]) -> Any:
    return await AsyncClient().post(
        path,
        orjson.dumps(body),
        content_type="application/json",
        headers={"authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"},
    )


@pytest.mark.parametrize(
    ("step", "asked"),
    [("_model_named", False), ("guard_reply", True), ("client_body", True)],
    ids=["before-the-provider", "after-the-provider", "translating-the-answer"],
)
async def test_a_fault_of_the_gateways_own_is_a_recorded_500(
    world, mock_server, in_process_proxy, monkeypatch, step, asked
) -> None:
    monkeypatch.setattr(pipeline, step, _broken)
    before = len(mock_server.requests())
    body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}

    response = await _post(world.key, "/v1/chat/completions", body)

    assert response.status_code == 500
    error = orjson.loads(response.content)["error"]
    assert (error["type"], error["code"]) == ("server_error", "internal_error")
    assert "TypeError" not in error["message"] and "broke" not in error["message"]
    assert len(mock_server.requests()) == before + asked
    record = await sync_to_async(AuditRecord.objects.get)(request_id=response["x-request-id"])
    assert (record.status, record.http_status) == (AuditStatus.FAILED, 500)
    assert record.error_type == "internal_error" and "TypeError" in record.error_message


async def test_an_anthropic_client_gets_the_fault_in_anthropics_format(
    world, mock_server, in_process_proxy, monkeypatch
) -> None:
    monkeypatch.setattr(pipeline, "_model_named", _broken)
    body = {"model": "demo", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}

    response = await _post(world.key, "/v1/messages", body)

    assert response.status_code == 500
    answer = orjson.loads(response.content)
    assert answer["type"] == "error" and answer["error"]["type"] == "api_error"
    record = await sync_to_async(AuditRecord.objects.get)(request_id=response["x-request-id"])
    assert record.error_type == "internal_error"
