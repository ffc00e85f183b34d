"""Alert rules in the console: platform admins set each alert's threshold over the default."""

from __future__ import annotations

import math
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from audit.activity.models import ActivityEvent
from audit.observability.alert_rules import alert_settings_effective
from audit.observability.models import AlertRule
from tests.console.conftest import Acme

pytestmark = pytest.mark.django_db


def _url(acme: Acme) -> str:
    return f"/console/t/{acme.tenant.slug}/alerts/rules/"


@pytest.fixture
def platform(acme: Acme) -> Client:
    client = Client()
    client.force_login(acme.users["platform_admin"])
    return client


def _rule(**overrides: Any) -> dict[str, Any]:
    return {
        "intent": "create",
        "rule": "provider_error_rate",
        "enabled": "on",
        "threshold": "0.05",
        "minimum": "3",
        **overrides,
    }


@pytest.mark.parametrize("role", ["developer", "tenant_admin", "finance", "compliance"])
def test_only_platform_admins_set_alert_rules(acme: Acme, role: str) -> None:
    client = Client()
    client.force_login(acme.users[role])
    assert client.get(_url(acme)).status_code == 403
    assert client.post(_url(acme), _rule()).status_code == 403
    assert not AlertRule.objects.exists()


def test_a_rule_set_in_the_console_is_the_threshold_alerts_use(
    acme: Acme, platform: Client
) -> None:
    page = platform.get(_url(acme)).content.decode()
    assert "Provider error rate" in page and "/alerts/rules/" in page  # in the navigation too
    assert platform.post(_url(acme), _rule()).status_code == 302
    effective = alert_settings_effective(settings.GATEWAY_ALERTS)
    assert (effective.error_rate, effective.error_min_attempts) == (0.05, 3)
    assert effective.latency_p99_ms == settings.GATEWAY_ALERTS.latency_p99_ms
    assert ActivityEvent.objects.filter(
        action="alert_rule.create", actor_label="acme-platform_admin"
    ).exists()

    response = platform.post(_url(acme), _rule(intent="update", enabled="", threshold="0.5"))
    assert response.status_code == 302
    effective = alert_settings_effective(settings.GATEWAY_ALERTS)
    assert effective.error_rate == 0.5 and math.isinf(effective.error_min_attempts)


def test_create_never_overwrites_and_update_never_creates(acme: Acme, platform: Client) -> None:
    response = platform.post(_url(acme), _rule(intent="update", rule="latency_p99"))
    assert response.status_code == 409
    assert not AlertRule.objects.exists()
    platform.post(_url(acme), _rule())
    response = platform.post(_url(acme), _rule(threshold="0.9"))
    assert response.status_code == 409
    assert AlertRule.objects.get().threshold == 0.05


def test_an_invalid_threshold_is_a_field_error(acme: Acme, platform: Client) -> None:
    response = platform.post(_url(acme), _rule(threshold="-1"))
    assert response.status_code == 400
    assert "threshold" in response.content.decode()
    assert not AlertRule.objects.exists()
