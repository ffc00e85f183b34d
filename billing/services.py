"""Writes for prices: a new price is always a new version, never an edit of the old one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import yaml
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit.activity.services import SYSTEM, Actor, activity_record
from billing.models import Price, PriceSource
from routing.models import Deployment

CATALOG_PATH = Path(__file__).parent / "data" / "price_catalog.yaml"


@transaction.atomic
def price_set(
    *,
    actor: Actor,
    deployment: Deployment | None = None,
    model: str = "",
    input_per_mtok: Decimal,
    output_per_mtok: Decimal,
    cached_input_per_mtok: Decimal | None = None,
    per_request_usd: Decimal = Decimal(0),
    per_tool_call_usd: Mapping[str, Decimal] | None = None,
    gpu_hour_usd: Decimal | None = None,
    effective_from: datetime | None = None,
    source: str = PriceSource.CONSOLE,
    note: str = "",
) -> Price:
    """Add a price version for a deployment (or a catalog model), in force from `effective_from`.

    `per_tool_call_usd` None: the tool fees of the deployment's price in force carry over (the
    console's form and the GPU amortisation set token prices only); {}: no tool fees."""
    if (deployment is None) == (not model):
        raise ValueError("a price is for one deployment or one catalog model")
    for value in (input_per_mtok, output_per_mtok, cached_input_per_mtok, per_request_usd):
        if value is not None and value < 0:
            raise ValueError("prices cannot be negative")
    if per_tool_call_usd is None:
        in_force = current_price(deployment) if deployment is not None else None
        tool_prices = dict(in_force.per_tool_call_usd) if in_force is not None else {}
    else:
        tool_prices = tool_prices_checked(per_tool_call_usd)
    price, _ = Price.objects.update_or_create(
        deployment=deployment,
        model=model,
        effective_from=effective_from or timezone.now(),
        defaults={
            "input_per_mtok": input_per_mtok,
            "output_per_mtok": output_per_mtok,
            "cached_input_per_mtok": cached_input_per_mtok,
            "per_request_usd": per_request_usd,
            "per_tool_call_usd": tool_prices,
            "gpu_hour_usd": gpu_hour_usd,
            "source": source,
            "note": note[:200],
        },
    )
    activity_record(
        actor=actor,
        action="price.set",
        target=price,
        tenant_id=None,
        details={
            "deployment": deployment.name if deployment else None,
            "model": model or None,
            "effective_from": price.effective_from.isoformat(),
            "input_per_mtok": str(input_per_mtok),
            "output_per_mtok": str(output_per_mtok),
            "cached_input_per_mtok": None
            if cached_input_per_mtok is None
            else str(cached_input_per_mtok),
            "per_request_usd": str(per_request_usd),
            **({"per_tool_call_usd": tool_prices} if tool_prices else {}),
            "gpu_hour_usd": None if gpu_hour_usd is None else str(gpu_hour_usd),
            "source": source,
        },
    )
    return price


_TOOL = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_MAX_TOOL_CALL_USD = Decimal(1000)


def tool_prices_checked(prices: Mapping[str, Decimal]) -> dict[str, str]:
    """{tool type: USD per call} as stored (strings: exact decimals in JSON), checked."""
    stored = {}
    for tool, usd in sorted(prices.items()):
        if not _TOOL.match(tool):
            raise ValueError(f"{tool!r} is not a tool type (web_search, file_search…)")
        value = Decimal(usd)
        if not (Decimal(0) <= value <= _MAX_TOOL_CALL_USD and value == round(value, 10)):
            raise ValueError(f"the price per {tool} call must be 0 to 1,000 USD, at most 10 places")
        stored[tool] = f"{value.normalize():f}"
    return stored


def current_price(deployment: Deployment, *, at: datetime | None = None) -> Price | None:
    return (
        Price.objects.filter(deployment=deployment, effective_from__lte=at or timezone.now())
        .order_by("-effective_from", "-id")
        .first()
    )


def price_declare(
    *,
    actor: Actor,
    deployment: Deployment,
    input_per_mtok: Decimal,
    output_per_mtok: Decimal,
    cached_input_per_mtok: Decimal | None = None,
    per_request_usd: Decimal = Decimal(0),
    per_tool_call_usd: Mapping[str, Decimal] | None = None,
    gpu_hour_usd: Decimal | None = None,
    effective_from: datetime | None = None,
) -> Price | None:
    """The declarative config's price: a new version only when it differs from the one in force.

    Re-applying an unchanged file therefore adds nothing, and a changed file adds one version.
    """
    # A dated version in the file is updated in place by price_set; an undated one is compared
    # with the price in force.
    now = current_price(deployment) if effective_from is None else None
    tools = tool_prices_checked(per_tool_call_usd or {})
    wanted = (
        input_per_mtok, output_per_mtok, cached_input_per_mtok, per_request_usd, tools,
        gpu_hour_usd,
    )  # fmt: skip
    if now is not None and wanted == (
        now.input_per_mtok,
        now.output_per_mtok,
        now.cached_input_per_mtok,
        now.per_request_usd,
        dict(now.per_tool_call_usd or {}),  # stored as tool_prices_checked wrote it
        now.gpu_hour_usd,
    ):
        return None
    return price_set(
        actor=actor,
        deployment=deployment,
        input_per_mtok=input_per_mtok,
        output_per_mtok=output_per_mtok,
        cached_input_per_mtok=cached_input_per_mtok,
        per_request_usd=per_request_usd,
        per_tool_call_usd=per_tool_call_usd or {},  # the file says the whole price
        gpu_hour_usd=gpu_hour_usd,
        effective_from=effective_from,
        source=PriceSource.CONFIG,
    )


def _decimal(value: object) -> Decimal:
    return Decimal(str(value))


@transaction.atomic
def catalog_load(*, actor: Actor = SYSTEM, path: Path = CATALOG_PATH) -> int:
    """Load the shipped price list; idempotent (one version per model and effective date)."""
    data = yaml.safe_load(path.read_text())
    effective_from = parse_datetime(str(data["effective_from"]))
    if effective_from is None:
        raise ValueError(f"{path}: effective_from is not a date-time")
    loaded = 0
    for model, entry in data["models"].items():
        existing = Price.objects.filter(
            deployment=None, model=model, effective_from=effective_from
        ).first()
        values = (
            _decimal(entry["input"]),
            _decimal(entry["output"]),
            _decimal(entry["cached_input"]) if "cached_input" in entry else None,
        )
        if (
            existing
            and (
                existing.input_per_mtok,
                existing.output_per_mtok,
                existing.cached_input_per_mtok,
            )
            == values
        ):
            continue
        price_set(
            actor=actor,
            model=model,
            input_per_mtok=values[0],
            output_per_mtok=values[1],
            cached_input_per_mtok=values[2],
            effective_from=effective_from,
            source=PriceSource.CATALOG,
        )
        loaded += 1
    return loaded
