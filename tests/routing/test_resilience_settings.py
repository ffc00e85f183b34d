"""Resilience settings read from the environment reach the objects that use them (docs/config.md)."""

from __future__ import annotations

import dataclasses
import runpy
from decimal import Decimal
from pathlib import Path

import pytest

import gateway_site.settings
from gateway_site.env import SettingError
from gateway_site.proxy_settings import ProxySettings
from routing.core.errors import UpstreamError
from routing.core.types import Target
from routing.runtime import GatewayRuntime

PRIMARY = Target(
    deployment_id=1,
    deployment_name="primary",
    provider_name="p",
    kind="openai",
    base_url="http://x",
    api_key="",
    upstream_model="m",
    input_price_per_mtok=Decimal(0),
    output_price_per_mtok=Decimal(0),
)
RATE_LIMITED = UpstreamError("429", status=429, cause="rate_limited")  # no Retry-After


def _gateway_settings_from(monkeypatch: pytest.MonkeyPatch, **environ: str) -> ProxySettings:
    """`GATEWAY` as a worker started with these environment variables reads it."""
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(Path(gateway_site.settings.__file__)))["GATEWAY"]


def test_the_breaker_settings_reach_each_workers_health_book(settings):
    settings.GATEWAY = dataclasses.replace(
        settings.GATEWAY, breaker_failures=7, breaker_cooldown_seconds=2.5
    )
    health = GatewayRuntime().health
    assert (health.breaker_failures, health.breaker_cooldown_s) == (7, 2.5)


def test_a_worker_started_with_the_breaker_off_keeps_asking_a_rate_limited_primary(
    settings, monkeypatch
):
    settings.GATEWAY = _gateway_settings_from(monkeypatch, GATEWAY_BREAKER_FAILURES="0")
    health = GatewayRuntime().health
    for _ in range(20):
        health.record_failure(PRIMARY, RATE_LIMITED)
    assert not health.cooling(PRIMARY)


def test_the_breaker_opens_after_the_configured_failures_for_the_configured_time(
    settings, monkeypatch
):
    settings.GATEWAY = _gateway_settings_from(
        monkeypatch, GATEWAY_BREAKER_FAILURES="2", GATEWAY_BREAKER_COOLDOWN_SECONDS="4.5"
    )
    health = GatewayRuntime().health
    now = [1000.0]
    health.clock = lambda: now[0]
    health.record_failure(PRIMARY, RATE_LIMITED)
    assert not health.cooling(PRIMARY)
    health.record_failure(PRIMARY, RATE_LIMITED)
    now[0] += 4.4
    assert health.cooling(PRIMARY)
    now[0] += 0.2
    assert not health.cooling(PRIMARY)


@pytest.mark.parametrize(
    "environ", [{"GATEWAY_BREAKER_FAILURES": "-1"}, {"GATEWAY_BREAKER_COOLDOWN_SECONDS": "-5"}]
)
def test_a_negative_breaker_setting_stops_the_gateway_at_start_up(monkeypatch, environ):
    with pytest.raises(SettingError, match="GATEWAY_BREAKER"):
        _gateway_settings_from(monkeypatch, **environ)


def test_the_quota_store_timeout_setting_is_the_redis_clients_timeout(settings):
    from tenants.quotas.core.redis_store import RedisQuotaStore
    from tenants.quotas.gate import build_engine

    settings.REDIS_URL = "redis://127.0.0.1:6379/15"
    settings.GATEWAY = dataclasses.replace(settings.GATEWAY, quota_store_timeout_seconds=7.5)
    store = build_engine().store
    assert isinstance(store, RedisQuotaStore)
    options = store.client.connection_pool.connection_kwargs
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == (7.5, 7.5)
