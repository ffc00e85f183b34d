"""Celery tasks for billing: thin wrappers over the rollup and price services."""

from celery import shared_task

from billing.gpu import gpu_prices_amortise
from billing.models import Granularity
from billing.rollups import rollup_catch_up


@shared_task(name="billing.rollup_hourly")  # type: ignore[untyped-decorator]  # celery ships no types
def rollup_hourly() -> int:
    return rollup_catch_up(granularity=Granularity.HOUR)


@shared_task(name="billing.rollup_daily")  # type: ignore[untyped-decorator]  # celery ships no types
def rollup_daily() -> int:
    return rollup_catch_up(granularity=Granularity.DAY)


@shared_task(name="billing.amortise_gpu_prices")  # type: ignore[untyped-decorator]  # celery ships no types
def amortise_gpu_prices() -> int:
    return len(gpu_prices_amortise())
