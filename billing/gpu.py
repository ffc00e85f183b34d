"""Self-hosted deployments priced by the GPU-hour, charged back by the tokens they serve.

A deployment whose price declares `gpu_hour_usd` gets, once a day, a new token price: the GPU
cost of the last day spread evenly over the tokens it served then. Local traffic is thus charged
to the teams that used it, in proportion to their use, at roughly what the hardware costs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from audit.activity.services import SYSTEM
from billing.models import Price, PriceSource
from billing.records import records_between
from billing.services import current_price, price_set
from routing.models import Deployment

_QUANTUM = Decimal("0.000001")


def gpu_prices_amortise(*, now: datetime | None = None, hours: int = 24) -> list[Price]:
    now = now or timezone.now()
    added = []
    for deployment in Deployment.objects.filter(is_active=True):
        price = current_price(deployment, at=now)
        if price is None or price.gpu_hour_usd is None:
            continue
        served = (
            records_between(now - timedelta(hours=hours), now)
            .filter(deployment_name=deployment.name)
            .aggregate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
        )
        tokens = (served["prompt"] or 0) + (served["completion"] or 0)
        if not tokens:
            continue  # no traffic to spread the cost over: keep the rate in force
        per_mtok = (price.gpu_hour_usd * hours * 1_000_000 / Decimal(tokens)).quantize(_QUANTUM)
        added.append(
            price_set(
                actor=SYSTEM,
                deployment=deployment,
                input_per_mtok=per_mtok,
                output_per_mtok=per_mtok,
                gpu_hour_usd=price.gpu_hour_usd,
                effective_from=now,
                source=PriceSource.GPU,
                note=f"{tokens} tokens in {hours} h at ${price.gpu_hour_usd}/GPU-hour",
            )
        )
    return added
