from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from routing.models import Deployment, Provider, Route
from tenants.keys import hash_key
from tenants.models import ApiKey, Membership, Team, Tenant

CONFIG = """
version: 1
providers:
  - name: cfg-openai
    kind: openai
    base_url: http://127.0.0.1:9999/v1
    credential: env:CFG_PROVIDER_SECRET
    region: eu
deployments:
  - name: cfg-small
    provider: cfg-openai
    upstream_model: small-2026-01-01
    price: {input_per_mtok: 0.15, output_per_mtok: 0.60}
  - name: cfg-large
    provider: cfg-openai
    upstream_model: large-2026-01-01
routes:
  - alias: cfg-chat
    targets: [cfg-large, cfg-small]
  - alias: cfg-canary
    strategy: weighted
    sticky: true
    targets: [{deployment: cfg-large, weight: 95}, {deployment: cfg-small, weight: 5}]
tenants:
  - slug: cfg-bank
    name: Config Bank
    residency_region: eu
    teams:
      - slug: research
        name: Research
        allowed_models: [cfg-chat]
        keys:
          - name: automation
            value: env:CFG_KEY
          - name: generated
    users:
      - username: cfg-alice
        email: alice@example.test
        role: compliance
        teams: [research]
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CFG_PROVIDER_SECRET", "sk-live-very-secret")
    monkeypatch.setenv("CFG_KEY", "gw-config-managed-key-0123456789")
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    return path


@pytest.mark.django_db
def test_applying_twice_creates_once_and_changes_nothing_the_second_time(config_file, capsys):
    call_command("apply_config", str(config_file))
    first = capsys.readouterr().out
    assert "generated" in first and "gw-" in first  # the generated key is shown once
    call_command("apply_config", str(config_file))
    second = capsys.readouterr().out
    assert "New key" not in second

    assert Provider.objects.filter(name="cfg-openai").count() == 1
    assert ApiKey.objects.filter(tenant__slug="cfg-bank").count() == 2
    route = Route.objects.get(alias="cfg-chat")
    assert [t.deployment.name for t in route.targets.order_by("position")] == [
        "cfg-large",
        "cfg-small",
    ]
    canary = Route.objects.get(alias="cfg-canary")
    assert (canary.strategy, canary.sticky) == ("weighted", True)
    assert [(t.deployment.name, t.weight) for t in canary.targets.all()] == [
        ("cfg-large", 95),
        ("cfg-small", 5),
    ]
    assert Deployment.objects.get(name="cfg-small").input_price_per_mtok == Decimal("0.15")
    assert ApiKey.objects.get(name="automation").key_hash == hash_key(
        "gw-config-managed-key-0123456789"
    )
    assert Team.objects.get(slug="research").allowed_models == ["cfg-chat"]
    assert Membership.objects.get(user__username="cfg-alice").role == "compliance"


@pytest.mark.django_db
def test_the_provider_credential_is_stored_encrypted(config_file):
    call_command("apply_config", str(config_file))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credential_encrypted FROM routing_provider WHERE name = 'cfg-openai'"
        )
        stored = cursor.fetchone()[0]
    assert "sk-live-very-secret" not in stored
    assert Provider.objects.get(name="cfg-openai").get_credential() == "sk-live-very-secret"


@pytest.mark.django_db
def test_reordering_a_route_in_the_file_reorders_it_in_the_database(config_file):
    call_command("apply_config", str(config_file))
    config_file.write_text(config_file.read_text().replace("[cfg-large, cfg-small]", "[cfg-small]"))
    call_command("apply_config", str(config_file))
    route = Route.objects.get(alias="cfg-chat")
    assert [t.deployment.name for t in route.targets.all()] == ["cfg-small"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            (
                "provider: cfg-openai\n    upstream_model: small",
                "provider: nowhere\n    upstream_model: small",
            ),
            "unknown provider 'nowhere'",
        ),
        (
            ("[cfg-large, cfg-small]", "[cfg-large, cfg-missing]"),
            "unknown deployment 'cfg-missing'",
        ),
        (("kind: openai", "kind: carrier-pigeon"), "providers.0.kind"),
        (("teams: [research]", "teams: [nope]"), "unknown team 'nope'"),
        (("alias: cfg-chat", "alias: cfg-?"), "routes.0.alias.*only '.' is a wildcard"),
        (("alias: cfg-chat", 'alias: "*"'), "a pattern needs literal text"),
        (
            (
                "    targets: [cfg-large, cfg-small]",
                "    forward_hosted_tools: [function]\n    targets: [cfg-large, cfg-small]",
            ),
            "routes.0.forward_hosted_tools.*run by the client",
        ),
    ],
)
def test_a_bad_file_is_refused_with_a_message_that_says_where(config_file, change, message):
    config_file.write_text(config_file.read_text().replace(*change))
    with pytest.raises(CommandError, match=message.replace("[", r"\[")):
        call_command("apply_config", str(config_file))
    assert not Provider.objects.filter(name="cfg-openai").exists()


@pytest.mark.django_db
def test_a_missing_environment_variable_is_named(config_file, monkeypatch):
    monkeypatch.delenv("CFG_KEY")
    with pytest.raises(CommandError, match="CFG_KEY is not set"):
        call_command("apply_config", str(config_file))
    assert not Provider.objects.filter(name="cfg-openai").exists()  # nothing half-applied


def test_the_demo_configuration_is_valid():
    call_command("apply_config", "config/demo.yaml", "--check")


@pytest.mark.django_db
def test_task_categories_in_the_file_are_applied_and_a_bad_rule_is_refused(tmp_path, monkeypatch):
    from routing.evaluations.models import TaskCategory

    categories = (
        "version: 1\n"
        "task_categories:\n"
        "  - name: extraction\n"
        "    threshold: 0.9\n"
        "    strict: true\n"
        "    pattern: '\\bextract\\b'\n"
    )
    good = tmp_path / "good.yaml"
    good.write_text(categories)
    call_command("apply_config", str(good))
    extraction = TaskCategory.objects.get(name="extraction")
    assert (extraction.threshold, extraction.strict) == (0.9, True)

    bad = tmp_path / "bad.yaml"
    bad.write_text(categories.replace("\\bextract\\b", "(unclosed"))
    with pytest.raises(CommandError, match="not a valid regular expression"):
        call_command("apply_config", str(bad))


@pytest.mark.django_db
def test_model_pins_in_the_file_reach_teams_and_keys(config_file):
    pinned = CONFIG.replace(
        "        allowed_models: [cfg-chat]\n",
        "        allowed_models: [cfg-chat]\n        model_pins: {cfg-chat: cfg-small}\n",
    ).replace(
        "          - name: generated\n",
        "          - name: generated\n            model_pins: {cfg-chat: large-2026-01-01}\n",
    )
    config_file.write_text(pinned)
    call_command("apply_config", str(config_file))
    assert Team.objects.get(slug="research").model_pins == {"cfg-chat": "cfg-small"}
    assert ApiKey.objects.get(name="generated").model_pins == {"cfg-chat": "large-2026-01-01"}
    assert ApiKey.objects.get(name="automation").model_pins == {}
    config_file.write_text(CONFIG)  # removing them from the file removes them
    call_command("apply_config", str(config_file))
    assert Team.objects.get(slug="research").model_pins == {}


@pytest.mark.django_db
def test_a_route_alias_may_be_a_pattern(config_file):
    config_file.write_text(config_file.read_text().replace("alias: cfg-chat", 'alias: "cfg-*"'))
    call_command("apply_config", str(config_file))
    assert Route.objects.filter(alias="cfg-*").exists()


@pytest.mark.django_db
def test_a_responses_native_provider_and_the_hosted_tools_a_route_forwards(config_file):
    config = config_file.read_text()
    config = config.replace("kind: openai", "kind: openai-responses").replace(
        "    targets: [cfg-large, cfg-small]",
        "    forward_hosted_tools: [web_search, file_search]\n    targets: [cfg-large, cfg-small]",
    )
    config_file.write_text(config)
    call_command("apply_config", str(config_file))
    assert Provider.objects.get(name="cfg-openai").kind == "openai-responses"
    assert Route.objects.get(alias="cfg-chat").forward_hosted_tools == ["web_search", "file_search"]
    assert Route.objects.get(alias="cfg-canary").forward_hosted_tools == []


@pytest.mark.django_db
def test_a_tenants_responses_retention_is_applied_once(config_file):
    from audit.activity.models import ActivityEvent
    from routing.responses_state.selectors import retention_days

    config_file.write_text(
        config_file.read_text().replace(
            "    residency_region: eu\n",
            "    residency_region: eu\n    responses_retention_days: 7\n",
        )
    )
    call_command("apply_config", str(config_file))
    call_command("apply_config", str(config_file))
    tenant = Tenant.objects.get(slug="cfg-bank")
    assert retention_days(tenant_id=tenant.id) == 7
    assert ActivityEvent.objects.filter(action__startswith="responses_policy.").count() == 1


@pytest.mark.django_db
def test_a_policys_images_section_shadow_mode_and_tenant_route_reach_the_database(config_file):
    from routing.guardrails.models import GuardrailPolicy, PolicyAttachment

    config_file.write_text(
        CONFIG + "guardrail_policies:\n"
        "  - name: cfg-images\n"
        "    tenant: cfg-bank\n"
        "    shadow: true\n"
        "    pii: {}\n"
        "    images: {action: refuse, fallback: record}\n"
        "    attach:\n"
        "      - route: cfg-chat\n"
    )
    call_command("apply_config", str(config_file))
    policy = GuardrailPolicy.objects.get(name="cfg-images")
    assert policy.shadow is True
    assert policy.spec["images"] == {"action": "refuse", "fallback": "record"}
    # A tenant's policy on a route applies to that tenant's requests on it only.
    attachment = PolicyAttachment.objects.get(policy=policy)
    assert (attachment.route.alias, attachment.tenant.slug) == ("cfg-chat", "cfg-bank")


@pytest.mark.django_db
def test_cost_approval_thresholds_in_the_file_reach_tenant_team_and_key(config_file):
    from tenants.quotas.models import ApprovalRule

    declared = (
        CONFIG.replace(
            "    residency_region: eu\n",
            "    residency_region: eu\n    cost_approval: {threshold_usd: 0.5}\n",
        )
        .replace(
            "        allowed_models: [cfg-chat]\n",
            "        allowed_models: [cfg-chat]\n        cost_approval: {threshold_usd: 2}\n",
        )
        .replace(
            "          - name: generated\n",
            "          - name: generated\n            cost_approval: {threshold_usd: 0, shadow: true}\n",
        )
    )
    config_file.write_text(declared)
    call_command("apply_config", str(config_file))
    rules = {
        rule.scope: (rule.threshold_usd, rule.shadow)
        for rule in ApprovalRule.objects.filter(tenant__slug="cfg-bank")
    }
    assert rules == {
        "tenant": (Decimal("0.5"), False),
        "team": (Decimal("2"), False),
        "key": (Decimal("0"), True),
    }
    config_file.write_text(declared.replace("threshold_usd: 0.5}", "threshold_usd: -1}"))
    with pytest.raises(CommandError, match="threshold_usd"):
        call_command("apply_config", str(config_file))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("addition", "message"),
    [
        ("  - slug: cfg-bank\n    name: Other Name\n", "tenant 'cfg-bank' is listed twice"),
        (
            "  - slug: cfg-other\n    name: Other\n    teams:\n"
            "      - {slug: t, name: T}\n      - {slug: t, name: U}\n",
            "team 't' is listed twice",
        ),
    ],
)
def test_a_file_naming_the_same_object_twice_is_refused(config_file, addition, message):
    # Applied in order, the second entry would silently overwrite the first.
    config_file.write_text(config_file.read_text() + addition)
    with pytest.raises(CommandError, match=message):
        call_command("apply_config", str(config_file))
    assert not Tenant.objects.filter(slug="cfg-bank").exists()


@pytest.mark.django_db
def test_a_provider_named_twice_is_refused(config_file):
    twice = "providers:\n  - {name: cfg-openai, kind: openai, base_url: 'http://127.0.0.1:9/v1'}\n"
    config_file.write_text(config_file.read_text().replace("providers:\n", twice, 1))
    with pytest.raises(CommandError, match="provider 'cfg-openai' is listed twice"):
        call_command("apply_config", str(config_file))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        ("name: Config Bank", 'name: "Config\\0Bank"'),  # PostgreSQL text holds no NUL
        ("input_per_mtok: 0.15", "input_per_mtok: 1e30"),  # past the price column
    ],
)
def test_a_value_the_database_cannot_store_is_a_clear_error_and_changes_nothing(
    config_file, change
):
    config_file.write_text(config_file.read_text().replace(*change))
    with pytest.raises(CommandError, match=r"cannot be stored.*nothing was changed"):
        call_command("apply_config", str(config_file))
    assert not Provider.objects.filter(name="cfg-openai").exists()


@pytest.mark.django_db
def test_a_username_the_accounts_refuse_is_a_clear_error_and_changes_nothing(config_file):
    config_file.write_text(config_file.read_text().replace("username: cfg-alice", "username: a b"))
    with pytest.raises(CommandError, match="valid username"):
        call_command("apply_config", str(config_file))
    assert not Provider.objects.filter(name="cfg-openai").exists()


@pytest.mark.django_db
def test_a_key_value_already_another_keys_is_a_clear_error_and_changes_nothing(config_file):
    twice = "          - name: generated\n            value: env:CFG_KEY\n"
    config_file.write_text(config_file.read_text().replace("          - name: generated\n", twice))
    with pytest.raises(CommandError, match="generated: this value is already another key's"):
        call_command("apply_config", str(config_file))
    assert not Provider.objects.filter(name="cfg-openai").exists()
