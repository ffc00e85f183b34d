"""A client that leaves while its call is being admitted (limits and budgets asked): the call is
never sent, what the admission reserved is given back, and the record says the client left."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from audit.models import AuditRecord
from tenants.quotas import gate

pytestmark = [pytest.mark.django_db]


async def test_a_client_that_leaves_during_admission_is_not_sent_and_gives_back_its_reservation(
    world: Any, in_process_proxy, mock_server: Any, monkeypatch: pytest.MonkeyPatch
):
    admitted: list[Any] = []
    released: list[Any] = []
    admitting = asyncio.Event()
    real_admit, real_settle = gate.admit, gate.settle

    async def slow_admit(*args: Any, **kwargs: Any) -> Any:
        admitting.set()
        await asyncio.sleep(0.3)  # a slow limits store; the client gives up meanwhile
        admitted.append(await real_admit(*args, **kwargs))
        return admitted[-1]

    def settle(runtime: Any, admission: Any, entry: Any, *, recorded: bool = True) -> None:
        released.append((admission, recorded))
        real_settle(runtime, admission, entry, recorded=recorded)

    monkeypatch.setattr(gate, "admit", slow_admit)
    monkeypatch.setattr(gate, "settle", settle)
    marker = "leaves-during-admission"
    body = {"model": "demo", "user": marker, "messages": [{"role": "user", "content": marker}]}
    asked = len(mock_server.requests())

    request = asyncio.ensure_future(
        AsyncClient().post(
            "/v1/chat/completions",
            orjson.dumps(body),
            content_type="application/json",
            headers={"authorization": f"Bearer {world.key}"},
        )
    )
    await asyncio.wait_for(admitting.wait(), 10)
    request.cancel()  # the client goes away
    with pytest.raises(asyncio.CancelledError):
        await request
    for _ in range(100):
        await asyncio.sleep(0.05)
        record = await sync_to_async(AuditRecord.objects.filter(end_user=marker).first)()
        if record is not None:
            break

    assert record is not None
    assert (record.status, record.http_status, record.error_type) == (
        "rejected",
        499,
        "client_disconnected",
    )
    assert len(mock_server.requests()) == asked  # never sent
    assert [a for a, _ in released] == admitted  # what it reserved is given back
