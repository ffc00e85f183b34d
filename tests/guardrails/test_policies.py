"""Guardrail policies as data: services, the activity log, the YAML file and the cached table."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from audit.activity.models import ActivityEvent
from audit.activity.services import Actor
from routing.guardrails import services
from routing.guardrails.core.policy import PolicySpec
from routing.guardrails.models import GuardrailPolicy, PolicyAttachment
from routing.guardrails.table import load_policy_table
from routing.models import Route
from tests.support.world import build_tenant

pytestmark = [pytest.mark.django_db]

ADMIN = Actor("user", "compliance-lead")


@pytest.fixture
def bank():
    bank = build_tenant("gr-bank", name="GR Bank", teams=["desk"], keys=["gr-key"])
    other = build_tenant("gr-other", name="Other")
    return bank.tenant, bank.team, bank.keys["gr-key"].api_key, other.tenant


def spec(**values: object) -> PolicySpec:
    return PolicySpec.model_validate(values)


def test_creating_and_attaching_a_policy_is_in_the_activity_log(bank):
    tenant, team, _, _ = bank
    policy = services.guardrail_policy_upsert(
        actor=ADMIN, name="gr-pii", tenant=tenant, spec=spec(pii={"restore": True})
    )
    services.guardrail_policy_attach(actor=ADMIN, policy=policy, team=team)
    services.guardrail_policy_attach(actor=ADMIN, policy=policy, team=team)  # idempotent

    events = ActivityEvent.objects.filter(tenant_id=tenant.id, actor_label="compliance-lead")
    assert sorted(events.values_list("action", flat=True)) == [
        "guardrail_policy.attach",
        "guardrail_policy.create",
    ]
    assert PolicyAttachment.objects.filter(policy=policy).count() == 1


def test_a_tenants_policy_cannot_be_attached_in_another_tenant(bank):
    tenant, _, _, other = bank
    policy = services.guardrail_policy_upsert(name="gr-own", tenant=tenant, spec=spec(pii={}))
    with pytest.raises(ValidationError):
        services.guardrail_policy_attach(policy=policy, tenant=other)
    with pytest.raises(ValidationError):
        services.guardrail_policy_upsert(name="gr-own", tenant=other, spec=spec())


def test_an_attachment_names_exactly_one_scope(bank):
    tenant, team, _, _ = bank
    policy = services.guardrail_policy_upsert(name="gr-scope", spec=spec(pii={}))
    with pytest.raises(ValidationError):
        services.guardrail_policy_attach(policy=policy, tenant=tenant, team=team)


def test_the_table_combines_tenant_team_key_and_route_policies(bank):
    tenant, team, key, _ = bank
    route = Route.objects.create(alias="gr-route")
    strict = services.guardrail_policy_upsert(
        name="gr-strict", tenant=tenant, spec=spec(pii={"entities": {"US_SSN": "block"}})
    )
    loose = services.guardrail_policy_upsert(
        name="gr-loose", tenant=tenant, spec=spec(pii={"entities": {"US_SSN": "flag"}})
    )
    schema = services.guardrail_policy_upsert(
        name="gr-schema", spec=spec(structured_output={"retries": 2})
    )
    services.guardrail_policy_attach(policy=strict, tenant=tenant)
    services.guardrail_policy_attach(policy=loose, api_key=key)
    services.guardrail_policy_attach(policy=schema, route=route)
    inactive = services.guardrail_policy_upsert(
        name="gr-off", tenant=tenant, spec=spec(injection={}), is_active=False
    )
    services.guardrail_policy_attach(policy=inactive, team=team)

    table = load_policy_table()
    combined = table.for_request(
        tenant_id=tenant.id, team_id=team.id, key_id=key.id, route="gr-route"
    )
    assert combined.pii["US_SSN"].action == "block"  # the tenant's rule is not weakened
    assert combined.structured is not None and combined.structured.retries == 2
    assert combined.injection is None  # inactive policies do not apply
    elsewhere = table.for_request(tenant_id=0, team_id=0, key_id=0, route="")
    assert not elsewhere.active


CONFIG = """
version: 1
routes: []
tenants:
  - slug: gr-yaml
    name: YAML Bank
    teams:
      - slug: advisors
        name: Advisors
        keys:
          - name: bot
guardrail_policies:
  - name: gr-yaml-pii
    tenant: gr-yaml
    description: Client data never leaves masked
    pii:
      entities: {EMAIL_ADDRESS: mask, US_SSN: block}
      restore: true
      recognizers:
        - {entity: ACCOUNT_NUMBER, pattern: "HB-\\\\d{8}"}
    injection: {action: flag, threshold: 0.6}
    output:
      rules:
        - {name: falcon, category: confidential, terms: [Project Falcon]}
    attach:
      - tenant: gr-yaml
      - team: gr-yaml/advisors
      - key: gr-yaml/bot
"""


def test_policies_come_from_the_declarative_file(tmp_path: Path):
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    call_command("apply_config", str(path))
    call_command("apply_config", str(path))  # idempotent

    policy = GuardrailPolicy.objects.get(name="gr-yaml-pii")
    assert policy.tenant.slug == "gr-yaml"
    assert policy.spec["pii"]["entities"] == {"EMAIL_ADDRESS": "mask", "US_SSN": "block"}
    assert policy.spec["pii"]["recognizers"][0]["pattern"] == "HB-\\d{8}"
    assert sorted(a.scope[0] for a in policy.attachments.all()) == ["api_key", "team", "tenant"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("key: gr-yaml/bot", "key: gr-yaml/nobody"), "unknown"),
        (("action: flag", "action: shred"), "injection.action"),
        (("- tenant: gr-yaml\n", "- {tenant: gr-yaml, route: x}\n"), "exactly one"),
    ],
)
def test_a_bad_policy_in_the_file_is_explained(tmp_path: Path, change, message):
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG.replace(*change))
    with pytest.raises(CommandError, match=message):
        call_command("apply_config", str(path))
