"""The circuit breaker is configured per deployment from the environment (docs/config.md)."""

from __future__ import annotations

import dataclasses

from routing.runtime import GatewayRuntime


def test_the_breaker_settings_reach_each_workers_health_book(settings):
    settings.GATEWAY = dataclasses.replace(
        settings.GATEWAY, breaker_failures=7, breaker_cooldown_seconds=2.5
    )
    health = GatewayRuntime().health
    assert (health.breaker_failures, health.breaker_cooldown_s) == (7, 2.5)
