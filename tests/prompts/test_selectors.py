"""What an operator reads to trace a regression: per-version outcomes and diffs."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditRecord
from routing.prompts import selectors
from routing.prompts.models import PromptVersion
from tenants import services as tenants
from tests.prompts.conftest import publish

pytestmark = [pytest.mark.django_db]


def _record(key, n: int, version: int, status: str = "success", **fields) -> AuditRecord:
    return AuditRecord.objects.create(
        request_id=f"req_sel_{key.pk}_{n}",
        tenant_id=key.tenant_id,
        team_id=key.team_id,
        api_key=key,
        endpoint="chat.completions",
        status=status,
        prompt_name="advisor",
        prompt_version=version,
        started_at=timezone.now() - timedelta(minutes=100 - n),
        **fields,
    )


def _key(tenant, slug: str):
    team = tenants.team_apply(tenant=tenant, slug=slug, name=slug, allowed_models=[])
    key, _ = tenants.key_create(team=team, name=f"{slug}-key")
    return key


def test_each_version_shows_its_requests_errors_findings_latency_and_cost(tenant, prompt):
    key = _key(tenant, "desk")
    for n in range(4):
        _record(key, n, 1, latency_ms=100 + n, cost_usd=Decimal("0.01"))
    for n in range(4, 8):
        status = "upstream_error" if n % 2 else "success"
        findings = [{"rule": "pii"}] if n == 4 else []
        _record(key, n, 2, status=status, latency_ms=300, guardrail_findings=findings)
    # The same prompt name in another tenant is none of this tenant's business.
    outsider = _key(tenants.tenant_apply(slug="outsider", name="Outsider"), "ops")
    _record(outsider, 99, 2, status="upstream_error")

    usage = selectors.version_usage(tenant_id=tenant.pk, prompt_name="advisor")

    v1, v2 = usage[1], usage[2]
    assert (v1.requests, v1.errors, v1.error_rate, v1.cost_usd) == (4, 0, 0.0, Decimal("0.04"))
    assert v1.latency_ms == pytest.approx(101.5)
    assert (v2.requests, v2.errors, v2.error_rate, v2.with_findings) == (4, 2, 0.5, 1)
    assert v1.first_seen < v1.last_seen < v2.first_seen
    failed = selectors.version_requests(
        tenant_id=tenant.pk, prompt_name="advisor", version=2, failed_only=True
    )
    assert [r.request_id for r in failed] == [f"req_sel_{key.pk}_7", f"req_sel_{key.pk}_5"]


def test_a_diff_shows_what_changed_between_two_versions(prompt):
    publish(prompt, "Be formal.\nCite the holding.\nNever give tax advice.")
    publish(
        prompt,
        "Be warm and chatty.\nCite the holding.\nNever give tax advice.",
        parameters={"temperature": 0.9},
    )
    v1, v2 = PromptVersion.objects.filter(prompt=prompt).order_by("number")

    lines = [(line.kind, line.text) for line in selectors.version_diff(old=v1, new=v2)]

    assert ("del", "-Be formal.") in lines
    assert ("add", "+Be warm and chatty.") in lines
    assert ("add", '+parameters: {"temperature": 0.9}') in lines
    assert ("same", " Cite the holding.") in lines
    assert lines[0] == ("head", "--- v1")
