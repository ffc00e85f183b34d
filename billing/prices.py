"""The price in force for each deployment, picked when the routing table loads (never per request).

Order: the deployment's own latest price that has taken effect; else the price declared on the
deployment itself (older configurations); else the catalog price of its upstream model (exact
name, or the longest catalog name it starts with, so "gpt-4o-2024-08-06" finds "gpt-4o").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from billing.models import Price
from routing.models import Deployment

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class EffectivePrice:
    input_per_mtok: Decimal = _ZERO
    output_per_mtok: Decimal = _ZERO
    cached_input_per_mtok: Decimal | None = None
    per_request_usd: Decimal = _ZERO
    per_tool_call_usd: tuple[tuple[str, Decimal], ...] = ()  # (tool type, USD per call)

    @classmethod
    def of(cls, price: Price) -> EffectivePrice:
        return cls(
            price.input_per_mtok,
            price.output_per_mtok,
            price.cached_input_per_mtok,
            price.per_request_usd,
            tuple(sorted((tool, Decimal(usd)) for tool, usd in price.per_tool_call_usd.items())),
        )


def catalog_match(catalog: dict[str, Price], upstream_model: str) -> Price | None:
    if upstream_model in catalog:
        return catalog[upstream_model]
    # Dated snapshots and provider prefixes: "gpt-4o-2024-08-06", "openai/gpt-4o".
    name = upstream_model.rsplit("/", 1)[-1]
    best = ""
    for model in catalog:
        if (name == model or name.startswith(model + "-")) and len(model) > len(best):
            best = model
    return catalog.get(best) if best else None


def next_price_change(*, after: datetime) -> datetime | None:
    """When the earliest price not yet in effect takes effect."""
    return (
        Price.objects.filter(effective_from__gt=after)
        .order_by("effective_from")
        .values_list("effective_from", flat=True)
        .first()
    )


def effective_prices(
    deployments: Iterable[Deployment], *, at: datetime
) -> dict[int, EffectivePrice]:
    """One query for every price that has taken effect; the latest per subject wins."""
    own: dict[int, Price] = {}
    catalog: dict[str, Price] = {}
    for price in Price.objects.filter(effective_from__lte=at).order_by("effective_from", "id"):
        if price.deployment_id is not None:
            own[price.deployment_id] = price
        else:
            catalog[price.model] = price
    result = {}
    for deployment in deployments:
        if deployment.id in own:
            result[deployment.id] = EffectivePrice.of(own[deployment.id])
        elif deployment.input_price_per_mtok or deployment.output_price_per_mtok:
            result[deployment.id] = EffectivePrice(
                deployment.input_price_per_mtok, deployment.output_price_per_mtok
            )
        elif listed := catalog_match(catalog, deployment.upstream_model):
            result[deployment.id] = EffectivePrice.of(listed)
        else:
            result[deployment.id] = EffectivePrice()
    return result
