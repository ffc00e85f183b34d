from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from audit.activity.models import ActivityEvent
from gateway_site.declarative.services import ConfigError, config_apply, config_load
from routing.models import Provider
from tenants.quotas.models import Budget, QuotaPolicy, RateLimit

pytestmark = pytest.mark.django_db

CONFIG = {
    "version": 1,
    "providers": [
        {
            "name": "acct",
            "kind": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "capacity": {"requests_per_minute": 60, "queue_seconds": 2},
        }
    ],
    "tenants": [
        {
            "slug": "yaml-co",
            "name": "Yaml Co",
            "quota_policy": {"on_store_failure_limits": "closed", "max_request_cost_usd": 0.5},
            "limits": {"requests_per_minute": 600},
            "budgets": [{"amount_usd": 5000, "period": "month", "timezone": "Europe/Paris"}],
            "end_users": [{"id": "*", "limits": {"requests_per_minute": 20}}],
            "teams": [
                {
                    "slug": "advisors",
                    "name": "Advisors",
                    "budgets": [{"amount_usd": 100, "period": "day"}],
                    "keys": [{"name": "app", "limits": {"max_concurrent": 5, "shadow": True}}],
                }
            ],
        }
    ],
}


def write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_limits_budgets_and_capacity_from_yaml_apply_once(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG)
    config_apply(config_load(path))
    config_apply(config_load(path))

    assert Provider.objects.get(name="acct").requests_per_minute == 60
    assert RateLimit.objects.filter(tenant__slug="yaml-co").count() == 3  # tenant, "*", key
    ours = RateLimit.objects.filter(tenant__slug="yaml-co")
    key_limit = ours.get(scope="key")
    assert key_limit.max_concurrent == 5 and key_limit.shadow
    assert ours.get(scope="user").end_user == "*"
    budgets = Budget.objects.filter(tenant__slug="yaml-co")
    assert {(b.scope, b.period, b.amount_usd) for b in budgets} == {
        ("tenant", "month", Decimal("5000")),
        ("team", "day", Decimal("100")),
    }
    policy = QuotaPolicy.objects.get(tenant__slug="yaml-co")
    assert policy.on_store_failure_limits == "closed"
    assert policy.on_store_failure_budgets == "closed"
    created = ActivityEvent.objects.filter(action="budget.create", tenant__slug="yaml-co")
    assert created.filter(actor_kind="config").count() == 2


def test_an_unknown_timezone_is_refused_with_its_name(tmp_path: Path) -> None:
    bad = yaml.safe_load(yaml.safe_dump(CONFIG))
    bad["tenants"][0]["budgets"][0]["timezone"] = "Mars/Olympus"
    with pytest.raises(ConfigError, match=r"tenants.0.budgets.0.timezone.*Mars/Olympus"):
        config_load(write(tmp_path, bad))


def test_a_negative_limit_is_refused_where_it_is(tmp_path: Path) -> None:
    bad = yaml.safe_load(yaml.safe_dump(CONFIG))
    bad["tenants"][0]["limits"]["requests_per_minute"] = 0
    with pytest.raises(ConfigError, match=r"tenants\.0\.limits\.requests_per_minute"):
        config_load(write(tmp_path, bad))


AGENTS = {
    "version": 1,
    "tenants": [
        {
            "slug": "yaml-agents",
            "name": "Yaml Agents",
            "agents": [
                {"name": "codex", "limits": {"requests_per_minute": 30, "max_concurrent": 2}},
                {"name": "*", "limits": {"tokens_per_minute": 50000, "shadow": True}},
            ],
        }
    ],
}


def test_agent_limits_from_yaml_apply_once_as_agent_scoped_rules(tmp_path: Path) -> None:
    path = write(tmp_path, AGENTS)
    config_apply(config_load(path))
    config_apply(config_load(path))

    rules = RateLimit.objects.filter(tenant__slug="yaml-agents").order_by("agent")
    assert [
        (r.scope, r.agent, r.requests_per_minute, r.tokens_per_minute, r.max_concurrent, r.shadow)
        for r in rules
    ] == [
        ("agent", "*", None, 50000, None, True),
        ("agent", "codex", 30, None, 2, False),
    ]
    made = ActivityEvent.objects.filter(action="limit.create", tenant__slug="yaml-agents")
    assert made.filter(actor_kind="config").count() == 2


@pytest.mark.parametrize(
    ("agents", "problem"),
    [
        ([{"name": "codex", "budgets": [{"amount_usd": 5}]}], r"agents.0.budgets.*not permitted"),
        ([{"name": "codex"}], r"agents.0.limits.*required"),
        ([{"name": " codex", "limits": {"requests_per_minute": 1}}], r"leading or trailing"),
        (
            [
                {"name": "codex", "limits": {"requests_per_minute": 1}},
                {"name": "codex", "limits": {"requests_per_minute": 2}},
            ],
            r"'codex' is listed twice",
        ),
    ],
    ids=["budget", "no-limits", "padded-name", "twice"],
)
def test_a_bad_agent_limit_is_refused_naming_its_place(tmp_path: Path, agents, problem) -> None:
    bad = yaml.safe_load(yaml.safe_dump(AGENTS))
    bad["tenants"][0]["agents"] = agents
    with pytest.raises(ConfigError, match=problem):
        config_load(write(tmp_path, bad))
