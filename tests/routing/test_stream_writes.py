"""A stream's events leave the gateway as they arrived: those the provider sent together in one
write go to the client together, byte for byte; none is held back waiting for the next."""

from __future__ import annotations

import time
from itertools import pairwise
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

pytestmark = [pytest.mark.django_db]


async def _stream(key: str, prompt: str) -> list[tuple[float, bytes]]:
    """Each part the gateway hands to the server to write, with when it was handed over."""
    body = {"model": "demo", "stream": True, "messages": [{"role": "user", "content": prompt}]}
    response = await AsyncClient().post(
        "/v1/chat/completions",
        orjson.dumps(body),
        content_type="application/json",
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200
    started = time.perf_counter()
    return [(time.perf_counter() - started, part) async for part in response.streaming_content]


def _events(parts: list[tuple[float, bytes]]) -> list[bytes]:
    return [e for e in b"".join(part for _, part in parts).split(b"\n\n") if e]


async def test_events_that_arrived_together_are_written_together(world: Any, in_process_proxy):
    # The mock sends an unpaced stream in one write.
    parts = await _stream(world.key, "one two three four five six seven eight")

    events = _events(parts)
    assert events[-1] == b"data: [DONE]" and len(events) >= 6
    assert len(parts) <= 2  # was one write per event
    assert all(part.endswith(b"\n\n") for _, part in parts)  # whole events only


async def test_events_that_arrive_apart_are_not_held_back(world: Any, in_process_proxy):
    parts = await _stream(world.key, "[mock chunk_delay_ms=80] one two three four five six")

    assert len(parts) >= 5  # each paced event is written as it comes
    assert all(part.endswith(b"\n\n") for _, part in parts)
    gaps = [later - earlier for (earlier, _), (later, _) in pairwise(parts)]
    assert sum(gap >= 0.05 for gap in gaps) >= 4


async def _answered_stream(key: str) -> Any:
    body = {
        "model": "demo",
        "stream": True,
        "messages": [{"role": "user", "content": "[mock chunk_delay_ms=50] one two three four"}],
    }
    response = await AsyncClient().post(
        "/v1/chat/completions",
        orjson.dumps(body),
        content_type="application/json",
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200
    return response


async def test_a_stream_answered_but_never_relayed_is_ended_when_its_response_closes(
    world: Any, in_process_proxy
):
    """The client left between the answer and its first read: nothing relays the stream, and
    the server closes the response unread. The record must not stay in progress."""
    from tests.conftest import wait_for_record

    response = await _answered_stream(world.key)
    response.close()

    record = await sync_to_async(wait_for_record)(response["x-request-id"])
    assert (record.status, record.error_type) == ("failed", "client_disconnected")
    assert record.prompt_tokens > 0 and record.cost_usd > 0


async def test_a_stream_nobody_relays_or_closes_is_ended_by_a_timer(
    world: Any, in_process_proxy, monkeypatch: pytest.MonkeyPatch
):
    from routing import call as call_module
    from tests.conftest import wait_for_record

    monkeypatch.setattr(call_module, "UNRELAYED_STREAM_S", 0.2)
    response = await _answered_stream(world.key)  # neither read nor closed: the response lost

    record = await sync_to_async(wait_for_record)(response["x-request-id"])
    assert (record.status, record.error_type) == ("failed", "client_disconnected")
