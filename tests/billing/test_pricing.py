import dataclasses
from decimal import Decimal

from billing.cost import request_cost_usd
from routing.core.types import Target, Usage


def _target(input_price: str, output_price: str) -> Target:
    return Target(
        deployment_id=1,
        deployment_name="d",
        provider_name="p",
        kind="openai",
        base_url="http://x",
        api_key="",
        upstream_model="m",
        input_price_per_mtok=Decimal(input_price),
        output_price_per_mtok=Decimal(output_price),
    )


def test_cost_is_exact_to_the_fraction_of_a_cent():
    cost = request_cost_usd(
        Usage(prompt_tokens=1234, completion_tokens=567), _target("2.50", "10.00")
    )
    assert cost == Decimal("0.008755")


def test_a_free_deployment_costs_nothing():
    assert (
        request_cost_usd(Usage(prompt_tokens=10**6, completion_tokens=10**6), _target("0", "0"))
        == 0
    )


def test_cache_reads_are_charged_at_the_cached_price_and_requests_at_their_fee():
    target = Target(
        deployment_id=1,
        deployment_name="d",
        provider_name="p",
        kind="openai",
        base_url="http://x",
        api_key="",
        upstream_model="m",
        input_price_per_mtok=Decimal("2.50"),
        output_price_per_mtok=Decimal("10"),
        cached_input_price_per_mtok=Decimal("1.25"),
        request_price_usd=Decimal("0.001"),
    )
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=0, cached_tokens=400_000)
    # 600k fresh at $2.50 + 400k cached at $1.25 + the per-request fee
    assert request_cost_usd(usage, target) == Decimal("2.001")


def test_without_a_cached_price_cache_reads_cost_as_input():
    usage = Usage(prompt_tokens=1000, completion_tokens=0, cached_tokens=1000)
    assert request_cost_usd(usage, _target("2", "0")) == Decimal("0.002")


def test_each_provider_run_tool_call_adds_its_price_and_an_unpriced_tool_nothing():
    target = dataclasses.replace(
        _target("2", "8"),
        tool_call_prices=(("file_search", Decimal("0.0025")), ("web_search", Decimal("0.025"))),
    )
    usage = Usage(prompt_tokens=1000, completion_tokens=500)
    tokens = Decimal("0.006")  # 1k in at $2 + 500 out at $8, per 1M
    assert request_cost_usd(usage, target) == tokens
    calls = ["web_search", "web_search", "file_search", "code_interpreter"]
    assert request_cost_usd(usage, target, calls) == tokens + Decimal("0.0525")


def test_tool_runs_a_provider_counts_in_its_usage_are_charged_per_run():
    target = dataclasses.replace(
        _target("3", "15"), tool_call_prices=(("web_search", Decimal("0.01")),)
    )
    # Anthropic's usage, as the internal form carries it (routing/core/translate).
    usage = Usage.from_openai(
        {
            "prompt_tokens": 1000,
            "completion_tokens": 100,
            "server_tool_use": {
                "web_search_requests": 3,
                "web_fetch_requests": 2,  # not priced on this deployment: tokens only
                "code_execution_requests": True,  # not a count: ignored
                "bogus": 7,  # not a `<tool>_requests` count: ignored
            },
        }
    )
    assert usage.tool_runs == (("web_fetch", 2), ("web_search", 3))
    tokens = Decimal("0.0045")  # 1k in at $3 + 100 out at $15, per 1M
    assert request_cost_usd(usage, target) == tokens + Decimal("0.03")
    # A schema retry's answer was paid for too: its runs add up with the first answer's.
    again = usage.plus(Usage(10, 10, 0, (("web_search", 1),)))
    assert again.tool_runs == (("web_fetch", 2), ("web_search", 4))
    assert again.usage_json()["server_tool_use"] == {
        "web_fetch_requests": 2,
        "web_search_requests": 4,
    }
