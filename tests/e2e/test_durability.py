"""Nothing is lost: a gateway killed mid-stream leaves an unfinished record, not a missing one."""

from __future__ import annotations

import signal

import httpx
import pytest

from tests.conftest import wait_for_record
from tests.support.live import start_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def test_sigkill_during_a_stream_leaves_an_unfinished_record(world):
    doomed = start_gateway()
    try:
        body = {
            "model": "demo",
            "stream": True,
            "messages": [
                {"role": "user", "content": "[mock chunk_delay_ms=200] a slow and long answer"}
            ],
        }
        headers = {"authorization": f"Bearer {world.key}"}
        with httpx.stream(
            "POST", doomed.api_url + "/chat/completions", json=body, headers=headers, timeout=10
        ) as response:
            assert response.status_code == 200
            request_id = response.headers["x-request-id"]
            first = next(response.iter_bytes())
            assert first.startswith(b"data: ")
            doomed.process.send_signal(signal.SIGKILL)
            doomed.process.wait(timeout=10)
        record = wait_for_record(request_id, finished=False)
        assert record.status == "in_progress"
        assert record.completed_at is None
        assert record.deployment_name == "mock-gpt" and record.stream
    finally:
        doomed.stop()


def test_a_client_that_leaves_mid_stream_is_recorded_as_such(gateway, world):
    body = {
        "model": "demo",
        "stream": True,
        "messages": [
            {"role": "user", "content": "[mock chunk_delay_ms=100] another slow answer here"}
        ],
    }
    headers = {"authorization": f"Bearer {world.key}"}
    with httpx.stream(
        "POST", gateway.api_url + "/chat/completions", json=body, headers=headers, timeout=10
    ) as response:
        request_id = response.headers["x-request-id"]
        next(response.iter_bytes())
    record = wait_for_record(request_id)
    assert (record.status, record.error_type) == ("failed", "client_disconnected")
