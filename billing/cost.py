"""What a request cost, from the usage the provider reported and the deployment's prices.

Plain Python on purpose: it runs on the proxy's hot path. The prices on the target are the ones
in force when the routing table was loaded (billing/prices.py picks them).
"""

from collections.abc import Sequence
from decimal import Decimal

from routing.core.types import Target, Usage

_PER_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
_QUANTUM = Decimal("0.0000000001")  # matches AuditRecord.cost_usd's 10 decimal places


def request_cost_usd(usage: Usage, target: Target, tool_calls: Sequence[str] = ()) -> Decimal:
    """Tokens at the deployment's prices, its fee per request, and a fee per call of each
    provider-run tool it prices (`tool_calls`: the tools' types, one entry per call, as the
    answer lists them; `usage.tool_runs`: as the provider's usage counts them)."""
    # Prompt tokens include the cached ones (OpenAI's convention, which the Anthropic adapter
    # follows): only the rest is charged at the full input price.
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    cached_price = target.cached_input_price_per_mtok
    if cached_price is None:
        cached_price = target.input_price_per_mtok
    tokens = (
        Decimal(usage.prompt_tokens - cached) * target.input_price_per_mtok
        + Decimal(cached) * cached_price
        + Decimal(usage.completion_tokens) * target.output_price_per_mtok
    )
    fees = target.request_price_usd
    if (tool_calls or usage.tool_runs) and target.tool_call_prices:
        prices = dict(target.tool_call_prices)
        fees += sum((prices.get(tool, _ZERO) for tool in tool_calls), _ZERO)
        # Tools the provider ran and counted in its usage (Anthropic's server tools).
        fees += sum((prices.get(tool, _ZERO) * runs for tool, runs in usage.tool_runs), _ZERO)
    return (tokens / _PER_MILLION + fees).quantize(_QUANTUM)
