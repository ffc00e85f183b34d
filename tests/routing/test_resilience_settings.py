"""Resilience settings read from the environment reach the objects that use them (docs/config.md)."""

from __future__ import annotations

import dataclasses

from routing.runtime import GatewayRuntime


def test_the_breaker_settings_reach_each_workers_health_book(settings):
    settings.GATEWAY = dataclasses.replace(
        settings.GATEWAY, breaker_failures=7, breaker_cooldown_seconds=2.5
    )
    health = GatewayRuntime().health
    assert (health.breaker_failures, health.breaker_cooldown_s) == (7, 2.5)


def test_the_quota_store_timeout_setting_is_the_redis_clients_timeout(settings):
    from quotas.core.redis_store import RedisQuotaStore
    from quotas.gate import build_engine

    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    settings.GATEWAY = dataclasses.replace(settings.GATEWAY, quota_store_timeout_seconds=7.5)
    store = build_engine().store
    assert isinstance(store, RedisQuotaStore)
    options = store.client.connection_pool.connection_kwargs
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == (7.5, 7.5)
