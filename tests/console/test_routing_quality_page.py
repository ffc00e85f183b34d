"""The routing quality page: scores per deployment and category, and where each category goes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.test import Client
from django.urls import reverse

from routing import services as routing
from routing.evaluations import services
from routing.evaluations.evalset import EvalSet
from routing.evaluations.runner import CategoryResult
from routing.models import Provider
from tenants.models import Role
from tests.console.conftest import Acme

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _scored_route() -> None:
    provider = Provider.objects.create(name="page-mock", kind="openai", base_url="http://x/v1")
    big = routing.deployment_upsert(
        name="page-big",
        provider=provider,
        upstream_model="big",
        input_price_per_mtok=Decimal("2.5"),
        output_price_per_mtok=Decimal("10"),
    )
    mini = routing.deployment_upsert(
        name="page-mini",
        provider=provider,
        upstream_model="mini",
        input_price_per_mtok=Decimal("0.15"),
        output_price_per_mtok=Decimal("0.6"),
    )
    routing.route_upsert(
        alias="page-auto", description="", deployments=[big, mini], strategy="category"
    )
    services.category_upsert(name="page-summaries", threshold=0.8, pattern=r"\bsummari[sz]e\b")
    results = [
        CategoryResult(big.pk, big.name, "page-summaries", samples=20, passed=19),
        CategoryResult(mini.pk, mini.name, "page-summaries", samples=20, passed=12),
    ]
    eval_set = EvalSet("summaries.jsonl", "ab" * 32, ())
    services.eval_run_record(eval_set=eval_set, results=results, started_at=NOW, finished_at=NOW)


def test_a_tenant_admin_sees_scores_thresholds_and_the_choice_per_category(acme: Acme) -> None:
    _scored_route()
    client = Client()
    client.force_login(acme.users[Role.TENANT_ADMIN])

    page = client.get(reverse("evaluations:scores", kwargs={"tenant_slug": acme.tenant.slug}))

    html = page.content.decode()
    assert page.status_code == 200
    assert "page-summaries" in html and "0.80" in html  # the category and its threshold
    assert "0.95 <small>(19/20)</small>" in html and "0.60 <small>(12/20)</small>" in html
    # page-mini is cheaper but below the threshold: summaries go to page-big first.
    assert "cheapest first: page-big (score 0.95" in html
    assert "summaries.jsonl" in html


def test_a_tenant_that_may_not_use_a_route_does_not_see_its_deployments(acme: Acme) -> None:
    _scored_route()
    acme.tenant.allowed_models = ["demo"]
    acme.tenant.save()
    client = Client()
    client.force_login(acme.users[Role.TENANT_ADMIN])

    html = client.get(
        reverse("evaluations:scores", kwargs={"tenant_slug": acme.tenant.slug})
    ).content.decode()

    assert "page-big" not in html and "page-auto" not in html


def test_compliance_officers_are_refused(acme: Acme) -> None:
    client = Client()
    client.force_login(acme.users[Role.COMPLIANCE])

    page = client.get(reverse("evaluations:scores", kwargs={"tenant_slug": acme.tenant.slug}))

    assert page.status_code == 403
