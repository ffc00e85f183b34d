"""The developer portal through Django's test client: keys shown once, rotation, scoping, usage."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditRecord
from tenants import services
from tenants.auth import load_identity
from tenants.keys import hash_key
from tenants.models import ApiKey
from tests.console.conftest import Acme

pytestmark = pytest.mark.django_db


def signed_in(acme: Acme, role: str) -> Client:
    client = Client()
    client.force_login(acme.users[role])
    return client


def create_key(client: Client, acme: Acme, **fields: object) -> str:
    data = {"name": "laptop", "team": acme.team.pk, **fields}
    response = client.post(f"/console/t/{acme.tenant.slug}/keys/new/", data)
    assert response.status_code == 201, response.content.decode()[:2000]
    match = re.search(r'value="(gw-[^"]+)"', response.content.decode())
    assert match
    return match.group(1)


def test_a_new_key_is_shown_once_with_snippets_then_only_its_prefix(acme: Acme) -> None:
    client = signed_in(acme, "developer")
    plaintext = create_key(client, acme, allowed_models=[], expires_in_days="30")
    key = ApiKey.objects.get(key_hash=hash_key(plaintext))
    assert key.owner == acme.users["developer"] and key.expires_at is not None
    created = client.get(f"/console/t/{acme.tenant.slug}/keys/").content.decode()
    assert key.prefix in created and plaintext not in created
    detail = client.get(f"/console/t/{acme.tenant.slug}/keys/{key.pk}/").content.decode()
    assert plaintext not in detail and "No rate limits or budgets are configured" in detail


def test_the_snippets_on_creation_hold_the_key_and_the_gateway_url(acme: Acme) -> None:
    client = signed_in(acme, "developer")
    response = client.post(
        f"/console/t/{acme.tenant.slug}/keys/new/", {"name": "ci", "team": acme.team.pk}
    )
    body = response.content.decode()
    plaintext = re.search(r'value="(gw-[^"]+)"', body).group(1)  # type: ignore[union-attr]
    assert f"api_key=&quot;{plaintext}&quot;" in body  # the Python snippets
    assert f"Bearer {plaintext}" in body  # curl
    assert "base_url=&quot;http://testserver/v1&quot;" in body
    assert response["Cache-Control"] == "no-store"


def test_the_quickstart_reads_the_key_from_the_environment(acme: Acme, settings) -> None:
    settings.CONSOLE_PUBLIC_URL = "https://llm.acme.example"
    body = signed_in(acme, "developer").get(f"/console/t/{acme.tenant.slug}/quickstart/")
    text = body.content.decode()
    assert "os.environ[&quot;GATEWAY_API_KEY&quot;]" in text
    assert "https://llm.acme.example/v1/chat/completions" in text and acme.key.prefix not in text


def test_a_developer_cannot_create_a_key_for_a_team_they_are_not_in(acme: Acme) -> None:
    other = services.team_apply(tenant=acme.tenant, slug="risk", name="Risk", allowed_models=[])
    client = signed_in(acme, "developer")
    response = client.post(
        f"/console/t/{acme.tenant.slug}/keys/new/", {"name": "sneaky", "team": other.pk}
    )
    assert response.status_code == 400
    assert not ApiKey.objects.filter(name="sneaky").exists()


def test_a_key_may_only_be_given_models_its_team_allows(acme: Acme) -> None:
    services.team_apply(
        tenant=acme.tenant, slug="quants", name="Quants", allowed_models=["model-a"]
    )
    client = signed_in(acme, "developer")
    response = client.post(
        f"/console/t/{acme.tenant.slug}/keys/new/",
        {"name": "wide", "team": acme.team.pk, "allowed_models": ["model-b"]},
    )
    assert response.status_code == 400
    assert not ApiKey.objects.filter(name="wide").exists()


def test_a_developer_sees_only_their_own_keys(acme: Acme) -> None:
    services.key_create(team=acme.team, name="finance-script", owner=acme.users["finance"])
    body = signed_in(acme, "developer").get(f"/console/t/{acme.tenant.slug}/keys/")
    assert "quant-notebook" in body.content.decode()
    assert "finance-script" not in body.content.decode()
    theirs = ApiKey.objects.get(name="finance-script")
    client = signed_in(acme, "developer")
    assert client.get(f"/console/t/{acme.tenant.slug}/keys/{theirs.pk}/").status_code == 404
    assert client.post(f"/console/t/{acme.tenant.slug}/keys/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_revoking_with_htmx_swaps_the_row_and_the_proxy_refuses_the_key(acme: Acme) -> None:
    client = signed_in(acme, "developer")
    response = client.post(
        f"/console/t/{acme.tenant.slug}/keys/{acme.key.pk}/revoke/", HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith(f'<tr id="key-{acme.key.pk}">')
    assert "Revoked" in response.content.decode()
    identity = load_identity(acme.key.key_hash)
    assert identity is not None and identity.revoked


def test_rotation_keeps_the_old_key_for_the_grace_then_stops_it(acme: Acme) -> None:
    client = signed_in(acme, "developer")
    before = timezone.now()
    response = client.post(
        f"/console/t/{acme.tenant.slug}/keys/{acme.key.pk}/rotate/", {"grace_seconds": "3600"}
    )
    assert response.status_code == 201
    new_plaintext = re.search(r'value="(gw-[^"]+)"', response.content.decode()).group(1)  # type: ignore[union-attr]
    successor = ApiKey.objects.get(key_hash=hash_key(new_plaintext))
    old = ApiKey.objects.get(pk=acme.key.pk)
    assert successor.name == "quant-notebook" and old.replaced_by == successor
    assert old.revoked_at is None
    assert old.expires_at is not None
    assert before + timedelta(minutes=59) < old.expires_at < before + timedelta(minutes=61)
    identity = load_identity(old.key_hash)
    assert identity is not None and identity.expires_at == old.expires_at


def test_rotation_without_grace_revokes_the_old_key_at_once(acme: Acme) -> None:
    successor, _ = services.key_rotate(key=acme.key, grace=timedelta(0))
    old = ApiKey.objects.get(pk=acme.key.pk)
    assert old.revoked_at is not None and successor.revoked_at is None


def test_a_keys_usage_and_cost_come_from_its_audit_records(acme: Acme) -> None:
    for i, cost in enumerate(["0.0012", "0.0030"]):
        AuditRecord.objects.create(
            request_id=f"req-console-{i}",
            tenant=acme.tenant,
            team=acme.team,
            api_key=acme.key,
            endpoint="chat.completions",
            model_requested="demo",
            status="success",
            prompt_tokens=10,
            completion_tokens=5,
            cost_usd=Decimal(cost),
            started_at=timezone.now(),
        )
    body = signed_in(acme, "developer").get(f"/console/t/{acme.tenant.slug}/keys/{acme.key.pk}/")
    text = body.content.decode()
    assert 'data-testid="usage-requests">2<' in text
    assert "0.0042" in text and "req-console-1" in text


def test_the_tenants_allowed_models_bind_every_key(acme: Acme) -> None:
    services.tenant_models_set(tenant=acme.tenant, allowed_models=["demo", "other"])
    services.team_apply(
        tenant=acme.tenant, slug="quants", name="Quants", allowed_models=["demo", "third"]
    )
    identity = load_identity(acme.key.key_hash)
    assert identity is not None
    assert identity.may_use("demo")
    assert not identity.may_use("other") and not identity.may_use("third")


def test_a_key_page_shows_its_limits_and_what_is_left_of_its_budgets(acme: Acme) -> None:
    from tenants.quotas import services as quotas
    from tenants.quotas.models import SpendEntry

    quotas.rate_limit_set(tenant=acme.tenant, scope="key", api_key=acme.key, requests_per_minute=60)
    quotas.budget_set(tenant=acme.tenant, scope="team", team=acme.team, amount_usd=Decimal("10"))
    SpendEntry.objects.create(
        tenant=acme.tenant,
        team=acme.team,
        api_key=acme.key,
        amount_usd=Decimal("2.5"),
        occurred_at=timezone.now(),
    )
    page = signed_in(acme, "developer").get(f"/console/t/{acme.tenant.slug}/keys/{acme.key.pk}/")
    text = page.content.decode()
    assert "Rate limit of key &#x27;quant-notebook&#x27;: 60 requests/min" in text
    assert "$7.5000 left</strong> of $10.0000" in text


def test_a_key_is_created_with_its_own_limits_and_budget(acme: Acme) -> None:
    from decimal import Decimal

    from tenants.quotas.models import Budget, RateLimit

    client = signed_in(acme, "developer")
    response = client.post(
        f"/console/t/{acme.tenant.slug}/keys/new/",
        {
            "name": "capped",
            "team": acme.team.pk,
            "requests_per_minute": "30",
            "budget_usd": "5.00",
            "budget_period": "week",
        },
    )
    assert response.status_code == 201
    assert 'data-testid="new-key-limits"' in response.content.decode()
    key = ApiKey.objects.get(name="capped")
    limit = RateLimit.objects.get(api_key=key)
    assert limit.requests_per_minute == 30 and limit.tokens_per_minute is None
    budget = Budget.objects.get(api_key=key)
    assert budget.amount_usd == Decimal("5.00") and budget.period == "week"
    detail = client.get(f"/console/t/{acme.tenant.slug}/keys/{key.pk}/").content.decode()
    assert "5.00" in detail


def test_a_key_with_a_bad_limit_is_not_created(acme: Acme) -> None:
    client = signed_in(acme, "developer")
    for bad in (
        {"budget_usd": "-1"},
        {"budget_usd": "abc"},
        {"requests_per_minute": "0"},
        {"budget_usd": "5", "budget_period": "fortnight"},
    ):
        response = client.post(
            f"/console/t/{acme.tenant.slug}/keys/new/",
            {"name": "never", "team": acme.team.pk, **bad},
        )
        assert response.status_code == 400, bad
    assert not ApiKey.objects.filter(name="never").exists()
