"""Drill: a prompt holding a NUL character is served, recorded and charged like any other.

`"a\\u0000b"` is legal JSON. It used to reach the provider, be answered, then fail to be stored
(PostgreSQL refuses NUL in text and jsonb): the client got 503, the provider had been paid, there
was no audit record and no ledger row, and the Redis budget counter had been charged anyway.
Now every proxy endpoint, streamed or not, serves it, records it (stored escaped, read back
exactly), writes its ledger row, and the chain verifies; arbitrary strings thrown at every
endpoint never reach a provider without a record, and the counter always equals the ledger.

Run alone: `pytest tests/drills/test_nul_storability.py` (the live gateway and a mock provider).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditRecord, AuditStatus
from audit.storable import original
from tenants.quotas.models import SpendEntry
from tests.conftest import wait_for_record
from tests.support.live import wait_for_config
from tests.support.spend import Budgeted, build_budgeted, ledger_nanos, settled_counter

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

NUL_TEXT = "a\x00b"
VARIANTS = [
    ("chat", False),
    ("chat", True),
    ("responses", False),
    ("responses", True),
    ("messages", False),
    ("messages", True),
    ("embeddings", False),
]
PATHS = {
    "chat": "/v1/chat/completions",
    "responses": "/v1/responses",
    "messages": "/v1/messages",
    "embeddings": "/v1/embeddings",
}


@pytest.fixture(scope="module")
def own_mock() -> Iterator[Any]:
    """A provider only this drill talks to, so its request log counts this drill's calls."""
    from mock_provider.testing import run_mock_server

    with run_mock_server() as server:
        yield server


@pytest.fixture(scope="module")
def budgeted(
    gateway: Any, own_mock: Any, django_db_setup: None, django_db_blocker: Any
) -> Budgeted:
    with django_db_blocker.unblock():
        treasury = build_budgeted(own_mock.base_url, "nul")
    wait_for_config(gateway, treasury.key, treasury.chat_model)
    return treasury


def body_for(endpoint: str, text: str, treasury: Budgeted, *, stream: bool) -> dict[str, Any]:
    """`text` where each endpoint carries prompt text (and in the client context)."""
    model = treasury.chat_model
    if endpoint == "chat":
        return {
            "model": model,
            "messages": [
                {"role": "system", "content": text},
                {"role": "user", "content": "q " + text},
            ],
            "metadata": {"note": text},
            "max_tokens": 16,
            "stream": stream,
        }
    if endpoint == "responses":
        return {
            "model": model,
            "instructions": text,
            "input": "q " + text,
            "metadata": {"note": text},
            "max_output_tokens": 16,
            "stream": stream,
        }
    if endpoint == "messages":
        return {
            "model": model,
            "system": "s " + text,
            "messages": [{"role": "user", "content": "q " + text}],
            "max_tokens": 16,
            "stream": stream,
        }
    return {"model": treasury.embed_model, "input": text}


def send(gateway: Any, treasury: Budgeted, endpoint: str, body: dict[str, Any]) -> httpx.Response:
    # ensure_ascii: NUL goes as \u0000, a lone surrogate as \ud800 (legal JSON text, either).
    content = json.dumps(body, ensure_ascii=True).encode()
    headers = {"authorization": f"Bearer {treasury.key}", "content-type": "application/json"}
    return httpx.post(
        gateway.url + PATHS[endpoint], content=content, headers=headers, timeout=30
    )  # the whole body, a stream included


def holds(value: Any, text: str) -> bool:
    """Whether some string (or object key) in `value` contains `text`."""
    if isinstance(value, str):
        return text in value
    if isinstance(value, dict):
        return any(holds(k, text) or holds(v, text) for k, v in value.items())
    if isinstance(value, list):
        return any(holds(item, text) for item in value)
    return False


def read_back(record: AuditRecord, column: str) -> Any:
    return original(getattr(record, column), escaped=column in record.stored_escaped)


@pytest.mark.parametrize(("endpoint", "stream"), VARIANTS)
def test_a_nul_in_the_prompt_is_served_recorded_exactly_and_charged(
    gateway, budgeted, own_mock, django_db_blocker, endpoint, stream
) -> None:
    calls_before = len(own_mock.requests())

    response = send(
        gateway, budgeted, endpoint, body_for(endpoint, NUL_TEXT, budgeted, stream=stream)
    )

    assert response.status_code == 200, response.text
    assert len(own_mock.requests()) == calls_before + 1
    with django_db_blocker.unblock():
        record = wait_for_record(response.headers["x-request-id"])
        charge = SpendEntry.objects.get(request_id=record.request_id)
    assert record.status == AuditStatus.SUCCESS
    assert "request_body" in record.stored_escaped
    assert holds(read_back(record, "request_body"), NUL_TEXT)
    if endpoint != "embeddings":
        # The mock echoes the prompt: the answer held a NUL too, and reads back as answered.
        assert "response_body" in record.stored_escaped
        assert holds(read_back(record, "response_body"), NUL_TEXT)
        assert read_back(record, "client_context") == (
            {"note": NUL_TEXT} if endpoint != "messages" else {}
        )
    if endpoint == "chat" and not stream:
        assert response.json() == read_back(record, "response_body")
    assert charge.amount_usd == record.cost_usd > Decimal(0)
    with django_db_blocker.unblock():
        assert settled_counter(budgeted.budget) == ledger_nanos(budgeted.tenant)
        call_command("audit_verify", tenant=budgeted.tenant.slug)  # raises if the chain breaks


# Pieces of text: any code point (surrogates, which the parser refuses, included), and often the
# characters that matter here: NUL, the escaping's own backslash and `\\u0000`, lone surrogates,
# other control and odd characters. Joined, and sometimes repeated into a long text.
_CHARS = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
_ODD = st.sampled_from(
    [
        "\x00",
        "\\",
        "\\u0000",
        "\ud800",
        "\udfff",
        "\x01",
        "\x1b",
        "\x7f",
        "\u2028",
        "\ufeff",
        "\ue000",
    ]
)
_SHORT = st.lists(st.text(alphabet=_CHARS, max_size=6) | _ODD, max_size=10).map("".join)
TEXTS = _SHORT | st.builds(lambda unit, n: unit * n, _SHORT, st.integers(100, 3000))


@pytest.mark.parametrize(("endpoint", "stream"), VARIANTS)
def test_arbitrary_text_never_reaches_a_provider_without_a_record_or_a_ledger_match(
    gateway, budgeted, own_mock, django_db_blocker, endpoint, stream
) -> None:
    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(text=TEXTS)
    def one(text: str) -> None:
        calls_before = len(own_mock.requests())

        response = send(
            gateway, budgeted, endpoint, body_for(endpoint, text, budgeted, stream=stream)
        )

        called = len(own_mock.requests()) > calls_before
        assert response.status_code < 500, response.text
        assert called == (response.status_code == 200), response.text
        with django_db_blocker.unblock():
            # Every request of an authenticated caller leaves a record, refusals included.
            record = wait_for_record(response.headers["x-request-id"])
            if called:
                assert record.status == AuditStatus.SUCCESS
                # As JSON carries it: two surrogates that form a pair arrive as one character.
                assert holds(read_back(record, "request_body"), json.loads(json.dumps(text)))
                # Charged in the ledger with the record (a request that cost nothing is not).
                charged = SpendEntry.objects.filter(request_id=record.request_id)
                assert list(charged.values_list("amount_usd", flat=True)) == (
                    [record.cost_usd] if record.cost_usd else []
                )
            else:
                assert record.status == AuditStatus.REJECTED
            assert settled_counter(budgeted.budget) == ledger_nanos(budgeted.tenant)

    one()
