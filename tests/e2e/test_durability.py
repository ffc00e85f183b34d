"""Nothing is lost: a gateway killed mid-stream leaves an unfinished record, not a missing one."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from audit.journal import recover_orphans
from audit.models import AuditRecord
from tests.conftest import wait_for_record
from tests.support.live import start_gateway
from tests.support.world import World

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
            # Held, not a temporary: a generator dropped after one chunk closes the response,
            # and the gateway would record the client leaving before the kill lands.
            chunks = response.iter_bytes()
            assert next(chunks).startswith(b"data: ")
            doomed.process.send_signal(signal.SIGKILL)
            doomed.process.wait(timeout=10)
        record = wait_for_record(request_id, finished=False)
        assert record.status == "in_progress"
        assert record.completed_at is None
        assert record.deployment_name == "mock-gpt" and record.stream
    finally:
        doomed.stop()


def test_a_stream_that_fell_over_names_in_its_start_record_the_deployment_that_answers(
    world: World, tmp_path: Path
) -> None:
    # The start record is inserted while the first deployment is asked (ADR 0014). Here that
    # one answers 429 (breaker off: it is always asked first) and the next one streams: the
    # record must say so before the first byte, and keep saying so once recovered.
    doomed = start_gateway(GATEWAY_BREAKER_FAILURES="0", GATEWAY_JOURNAL_DIR=str(tmp_path))
    try:
        body = {
            "model": "with-fallback",
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
            chunks = response.iter_bytes()  # held: see the test above
            assert next(chunks).startswith(b"data: ")
            doomed.process.send_signal(signal.SIGKILL)
            doomed.process.wait(timeout=10)
        started = wait_for_record(request_id, finished=False)
        assert started.status == "in_progress"
        assert started.deployment_name == "mock-gpt"
        assert [(a["deployment"], a["status"]) for a in started.attempts] == [
            ("mock-gpt-limited", 429),
            ("mock-gpt", 200),
        ]
        with ThreadPoolExecutor(1) as pool:  # what the next gateway on this machine does
            pool.submit(recover_orphans, tmp_path).result()
        recovered = AuditRecord.objects.get(request_id=request_id)
        assert recovered.status == "interrupted"
        assert (recovered.deployment_name, recovered.attempts) == ("mock-gpt", started.attempts)
        assert recovered.request_body == started.request_body
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
