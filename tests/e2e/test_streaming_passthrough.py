"""Streams reach the client as the provider sends them: nothing buffers them on the way."""

from __future__ import annotations

import time

import httpx
import pytest
from django.conf import settings
from django.utils.module_loading import import_string

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def test_every_middleware_runs_natively_under_asgi():
    # A sync-only middleware would make Django hop threads per request, and buffer async streams.
    # Django treats a middleware without the `async_capable` flag as sync-only.
    sync_only = [
        m for m in settings.MIDDLEWARE if not getattr(import_string(m), "async_capable", False)
    ]
    assert sync_only == []


def test_the_first_chunk_arrives_long_before_the_stream_ends(gateway, world):
    body = {
        "model": "demo",
        "stream": True,
        "messages": [
            {"role": "user", "content": "[mock chunk_delay_ms=100] one two three four five six"}
        ],
    }
    headers = {"authorization": f"Bearer {world.key}"}
    started = time.perf_counter()
    arrivals = []
    with httpx.stream(
        "POST", gateway.api_url + "/chat/completions", json=body, headers=headers, timeout=10
    ) as response:
        for _ in response.iter_raw():
            arrivals.append(time.perf_counter() - started)
    assert len(arrivals) >= 5  # one network write per event, not one blob
    assert arrivals[-1] - arrivals[0] >= 0.4
    assert arrivals[0] < arrivals[-1] / 2
