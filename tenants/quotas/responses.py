"""What a limited client sees: OpenAI's 429 format and its x-ratelimit-* headers."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from routing.errors import GatewayError
from tenants.quotas.core.checks import BudgetCheck, Check, Verdict

if TYPE_CHECKING:
    from tenants.quotas.table import Meter

_NANOS = Decimal(1_000_000_000)


def duration(seconds: int) -> str:
    """OpenAI's reset format: "1s", "6m0s"."""
    seconds = max(0, seconds)
    minutes, rest = divmod(seconds, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def rate_headers(meters: list[Meter], verdict: Verdict) -> dict[str, str]:
    """The tightest enforced requests and tokens limits and budget, and which scope each
    belongs to (the first of equals)."""
    tightest: dict[str, tuple[int, Meter, int]] = {}  # kind → remaining, meter, reset
    for meter, outcome in zip(meters, verdict.outcomes, strict=False):
        if meter.shadow:
            continue
        found = tightest.get(meter.kind)
        if found is None or outcome.remaining < found[0]:
            tightest[meter.kind] = (outcome.remaining, meter, outcome.reset_s)
    headers: dict[str, str] = {}
    for kind in ("requests", "tokens"):
        if (found := tightest.get(kind)) is not None:
            remaining, meter, reset_s = found
            headers[f"x-ratelimit-limit-{kind}"] = str(meter.limit)
            headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, remaining))
            headers[f"x-ratelimit-reset-{kind}"] = duration(reset_s)
            headers[f"x-gateway-ratelimit-scope-{kind}"] = meter.label
    if (found := tightest.get("budget")) is not None:
        remaining, meter, _ = found
        headers["x-gateway-budget-remaining-usd"] = f"{Decimal(max(0, remaining)) / _NANOS:.4f}"
        headers["x-gateway-budget-scope"] = meter.label
    return headers


def limit_exceeded(meter: Meter, verdict: Verdict, headers: dict[str, str]) -> GatewayError:
    what = {
        "requests": f"{meter.limit} requests per minute",
        "tokens": f"{meter.limit} tokens per minute",
        "concurrent": f"{meter.limit} requests at a time",
    }[meter.kind]
    if verdict.retry_after_s is None:
        return GatewayError(
            429,
            f"This request alone needs more than the {what} allowed for {meter.label}; "
            "it can never fit. Send a shorter prompt or a lower max_tokens.",
            type="requests",
            code="request_exceeds_limit",
            headers={**headers, "x-should-retry": "false"},
        )
    wait = max(1, verdict.retry_after_s)
    return GatewayError(
        429,
        f"Rate limit reached for {meter.label}: {what}. Retry in {wait} s.",
        type="requests" if meter.kind != "tokens" else "tokens",
        code="rate_limit_exceeded",
        headers={**headers, "retry-after": str(wait), "x-gateway-limit-scope": meter.label},
    )


def budget_exhausted(meter: Meter, check: Check, verdict: Verdict) -> GatewayError:
    assert isinstance(check, BudgetCheck) and meter.window is not None
    amount = Decimal(check.limit) / _NANOS
    resets = meter.window.end.isoformat()
    return GatewayError(
        429,
        f"The {meter.label} of ${amount:,.2f} is used up (this request could cost up to "
        f"${Decimal(check.amount) / _NANOS:,.4f}); it renews at {resets}. "
        "Ask your administrator to raise it.",
        type="insufficient_quota",
        code="budget_exceeded",
        headers={
            "x-should-retry": "false",
            "x-gateway-budget-scope": meter.label,
            "x-gateway-budget-resets-at": resets,
        },
    )


def store_unavailable(what: str) -> GatewayError:
    return GatewayError(
        503,
        f"The gateway cannot check your {what} right now, and your organisation's policy is to "
        "refuse requests until it can. Retry in a few seconds.",
        type="server_error",
        code="quota_unavailable",
        headers={"retry-after": "2"},
    )


def store_busy() -> GatewayError:
    # The counters are up but every connection to them stayed busy: refusing is the only answer
    # that keeps the limits (serving unchecked is for a store that is down, by policy).
    return GatewayError(
        503,
        "The gateway is too busy to check your limits right now. Retry in a second.",
        type="server_error",
        code="gateway_busy",
        headers={"retry-after": "1"},
    )
