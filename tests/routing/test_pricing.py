from decimal import Decimal

from billing.pricing import request_cost_usd
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
