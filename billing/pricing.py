"""What a request cost, from the usage the provider reported and the deployment's prices.

Plain Python on purpose: it runs on the proxy's hot path.
"""

from decimal import Decimal

from routing.core.types import Target, Usage

_PER_MILLION = Decimal(1_000_000)
_QUANTUM = Decimal("0.0000000001")  # matches AuditRecord.cost_usd's 10 decimal places


def request_cost_usd(usage: Usage, target: Target) -> Decimal:
    cost = (
        Decimal(usage.prompt_tokens) * target.input_price_per_mtok
        + Decimal(usage.completion_tokens) * target.output_price_per_mtok
    ) / _PER_MILLION
    return cost.quantize(_QUANTUM)
