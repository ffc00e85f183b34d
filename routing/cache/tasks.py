"""Celery tasks for the response cache: thin wrappers over its services."""

from celery import shared_task

from routing.cache.services import cache_expire


@shared_task(name="response_cache.expire")  # type: ignore[untyped-decorator]  # celery ships no types
def expire() -> int:
    return cache_expire()
