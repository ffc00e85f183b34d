"""A provider's usage report is read as counts the gateway can charge: a garbled one (text, a
fraction, a negative, an absurd number, the wrong type) reads as 0 and is logged, never failing
the call (a 500 with no record) or crediting the ledger."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from billing.cost import request_cost_usd
from routing.core.translate.anthropic_common import openai_usage
from routing.core.translate.responses_native import chat_usage
from routing.core.translate.responses_response import responses_usage
from routing.core.types import MAX_TOKENS, Target, Usage, usage_count

TARGET = Target(
    deployment_id=1,
    deployment_name="d",
    provider_name="p",
    kind="openai",
    base_url="http://127.0.0.1:1/v1",
    api_key="",
    upstream_model="m",
    input_price_per_mtok=Decimal(3),
    output_price_per_mtok=Decimal(15),
    tool_call_prices=(("web_search", Decimal("0.01")),),
)


@pytest.mark.parametrize(
    ("value", "count"),
    [
        (12, 12),
        (12.0, 12),
        (0, 0),
        (None, 0),
        ("12", 12),
        ("12x", 0),
        ("-12", 0),
        ("\uff11\uff12", 0),  # full-width digits
        (12.5, 0),
        (-5, 0),
        (True, 0),
        (MAX_TOKENS + 1, 0),
        (float("nan"), 0),
        (float("inf"), 0),
        ([3], 0),
    ],
)
def test_a_count_is_a_whole_number_in_range_or_zero(value: Any, count: int) -> None:
    assert usage_count(value, "output_tokens") == count


def test_a_garbled_report_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    usage_count("12x", "output_tokens")
    assert "output_tokens='12x' is not a count" in caplog.text


def test_garbled_reports_of_every_format_read_without_raising_and_never_charge_less_than_0() -> (
    None
):
    garbled: dict[str, Any] = {
        "prompt_tokens": "12x",
        "completion_tokens": -5_000_000,
        "prompt_tokens_details": "cached",
        "server_tool_use": {"web_search_requests": 3.0, "web_fetch_requests": 10**12},
    }
    usage = Usage.from_openai(garbled)
    assert usage == Usage(0, 0, 0, (("web_search", 3),))
    assert request_cost_usd(usage, TARGET) == Decimal("0.03")

    anthropic = openai_usage(
        {"input_tokens": "12x", "output_tokens": -5, "cache_read_input_tokens": 7.0}
    )
    assert (anthropic["prompt_tokens"], anthropic["completion_tokens"]) == (7, 0)
    responses = chat_usage({"input_tokens": 10, "output_tokens": "x", "input_tokens_details": []})
    assert (responses["prompt_tokens"], responses["completion_tokens"]) == (10, 0)
    assert (
        responses_usage({"prompt_tokens": None, "completion_tokens_details": 5})["input_tokens"]
        == 0
    )
    assert Usage.from_openai("not a report") == Usage()  # type: ignore[arg-type]
