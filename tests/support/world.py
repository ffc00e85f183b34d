"""The committed data the live-server tests share: tenants, keys, providers and routes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from routing import services as routing
from tenants import services as tenants
from tenants.models import Role, Team


@dataclass
class World:
    key: str  # acme/advisors: may use every model
    limited_key: str  # acme/advisors: may use only "demo"
    revoked_key: str
    expired_key: str
    other_tenant_key: str  # globex/ops
    eu_key: str  # tenant with residency "eu": no EU deployment exists
    team: Team


def build_world(*, mock_url: str, failing_mock_url: str, slow_mock_url: str) -> World:
    ok = routing.provider_upsert(
        name="mock-ok",
        kind="openai",
        base_url=mock_url + "/v1",
        credential="sk-upstream-secret",
        region="us",
    )
    failing = routing.provider_upsert(
        name="mock-429",
        kind="openai",
        base_url=failing_mock_url + "/v1",
        credential="sk-other",
        region="us",
    )
    chat = routing.deployment_upsert(
        name="mock-gpt",
        provider=ok,
        upstream_model="mock-gpt-2026-01-01",
        input_price_per_mtok=Decimal("2.5"),
        output_price_per_mtok=Decimal("10"),
    )
    limited = routing.deployment_upsert(
        name="mock-gpt-limited",
        provider=failing,
        upstream_model="mock-gpt",
        input_price_per_mtok=Decimal("1"),
        output_price_per_mtok=Decimal("1"),
    )
    routing.deployment_upsert(
        name="mock-embed",
        provider=ok,
        upstream_model="mock-embedding-1",
        input_price_per_mtok=Decimal("0.02"),
        output_price_per_mtok=Decimal(0),
    )
    anthropic = routing.provider_upsert(
        name="mock-anthropic",
        kind="anthropic",
        base_url=mock_url,
        credential="sk-ant-upstream",
        region="us",
    )
    claude = routing.deployment_upsert(
        name="claude-fallback",
        provider=anthropic,
        upstream_model="mock-claude",
        input_price_per_mtok=Decimal("3"),
        output_price_per_mtok=Decimal("15"),
    )
    routing.route_upsert(alias="advisor-chat", description="", deployments=[limited, claude])
    routing.route_upsert(alias="demo", description="", deployments=[chat])
    slow_provider = routing.provider_upsert(
        name="mock-slow",
        kind="openai",
        base_url=slow_mock_url + "/v1",
        credential="sk-slow",
        region="us",
    )
    slow = routing.deployment_upsert(
        name="mock-gpt-slow",
        provider=slow_provider,
        upstream_model="mock-gpt",
        input_price_per_mtok=Decimal("1"),
        output_price_per_mtok=Decimal("1"),
    )
    routing.route_upsert(
        alias="latency-contract",
        description="",
        deployments=[slow, chat],
        timeout_seconds=0.3,
        first_token_timeout_seconds=0.3,
    )
    canary = routing.deployment_upsert(
        name="mock-gpt-next",
        provider=ok,
        upstream_model="mock-gpt",
        input_price_per_mtok=Decimal("2.5"),
        output_price_per_mtok=Decimal("10"),
    )
    routing.route_upsert(
        alias="canary-chat",
        description="",
        deployments=[chat, canary],
        weights=[50, 50],
        strategy="weighted",
        sticky=True,
    )
    routing.route_upsert(alias="with-fallback", description="", deployments=[limited, chat])
    routing.route_upsert(alias="always-limited", description="", deployments=[limited])
    # Coding agents (Codex) send hosted tools such as web_search: these routes drop them.
    routing.route_upsert(
        alias="coding-agent", description="", deployments=[chat], hosted_tools="drop"
    )
    routing.route_upsert(
        alias="coding-agent-claude", description="", deployments=[claude], hosted_tools="drop"
    )

    acme = tenants.tenant_apply(slug="acme", name="Acme Wealth")
    advisors = tenants.team_apply(tenant=acme, slug="advisors", name="Advisors", allowed_models=[])
    globex = tenants.tenant_apply(slug="globex", name="Globex")
    ops = tenants.team_apply(tenant=globex, slug="ops", name="Ops", allowed_models=[])
    euro = tenants.tenant_apply(slug="euro", name="Euro Bank", residency_region="eu")
    euro_team = tenants.team_apply(tenant=euro, slug="desk", name="Desk", allowed_models=[])

    _, key = tenants.key_create(team=advisors, name="e2e")
    _, limited_key = tenants.key_create(team=advisors, name="e2e-limited", allowed_models=["demo"])
    revoked, revoked_key = tenants.key_create(team=advisors, name="e2e-revoked")
    tenants.key_revoke(key=revoked)
    _, expired_key = tenants.key_create(
        team=advisors, name="e2e-expired", expires_at=timezone.now() - timedelta(days=1)
    )
    _, other_key = tenants.key_create(team=ops, name="e2e-globex")
    _, eu_key = tenants.key_create(team=euro_team, name="e2e-eu")
    return World(
        key=key.plaintext,
        limited_key=limited_key.plaintext,
        revoked_key=revoked_key.plaintext,
        expired_key=expired_key.plaintext,
        other_tenant_key=other_key.plaintext,
        eu_key=eu_key.plaintext,
        team=advisors,
    )


@dataclass
class FullTenant:
    """A tenant with one of every object a console page or API operation can name.

    The security walk uses one as the victim (its distinctive words must never reach another
    tenant), and the stored-XSS test builds one whose free text is all attack payloads.
    """

    tenant: Any
    team: Team
    users: dict[str, Any]  # by role (no platform admin)
    key: Any  # owned by the developer
    key_plaintext: str
    admin_key: Any
    admin_key_plaintext: str
    prompt: Any
    pin: Any
    limit: Any
    budget: Any
    record: Any
    export: Any
    alert: Any
    words: str
    mcp_server: Any = None

    def path_values(self) -> dict[str, Any]:
        """Every path parameter of the console and the management API, pointing at our objects."""
        return {
            "tenant_slug": self.tenant.slug,
            "slug": self.tenant.slug,
            "team": self.team.slug,
            "team_id": self.team.pk,
            "key_id": self.key.pk,
            "membership_id": self.users[Role.DEVELOPER].memberships.get().pk,
            "username": self.users[Role.DEVELOPER].username,
            "name": self.prompt.name,
            "label": "production",
            "number": 1,
            "pin_id": self.pin.pk,
            "limit_id": self.limit.pk,
            "budget_id": self.budget.pk,
            "rule_id": self.limit.pk,
            "kind": "limit",
            "request_id": self.record.request_id,
            "export_id": self.export.pk,
            "fmt": "csv",
            "server": self.mcp_server.name if self.mcp_server else "crm",
        }

    def secrets(self) -> list[str]:
        """What nobody outside the tenant may read: every distinctive value it holds."""
        return [
            self.words,
            self.tenant.slug,
            self.team.slug,
            self.key.prefix,
            self.key_plaintext,
            self.admin_key.prefix,
            self.admin_key_plaintext,
            self.prompt.name,
            self.record.request_id,
            *(user.username for user in self.users.values()),
            *(user.email for user in self.users.values()),
        ]


def build_full_tenant(*, slug: str, words: str, password: str | None = None) -> FullTenant:
    """A tenant whose every free-text field carries `words` (slugs and usernames carry `slug`)."""
    import uuid

    from audit.activity.services import SYSTEM
    from audit.models import AuditExport, AuditRecord
    from audit.observability.models import Alert, AlertStatus
    from gateway_site.api.services import admin_key_create
    from routing.prompts import services as prompts
    from tenants.quotas import services as quotas

    now = timezone.now()
    tenant = tenants.tenant_apply(slug=slug, name=f"{words} Holdings")
    team = tenants.team_apply(
        tenant=tenant, slug=f"{slug}-vault", name=f"{words} Vault Team", allowed_models=[]
    )
    users = {
        role: tenants.member_apply(
            tenant=tenant,
            username=f"{slug}-{role}",
            email=f"{role}.{slug}@{slug}.example",
            role=role,
            teams=[team],
            password=password,
        )
        for role in Role.values
        if role != Role.PLATFORM_ADMIN
    }
    key, material = tenants.key_create(
        team=team, name=f"{words} backend key", owner=users[Role.DEVELOPER]
    )
    admin_key, admin_material = admin_key_create(
        name=f"{words} terraform", tenant=tenant, created_by=f"{words} ops", actor=SYSTEM
    )
    prompt = prompts.prompt_declare(
        actor=SYSTEM, tenant=tenant, name=f"{slug}-advisor", description=f"{words} prompt"
    )
    prompts.prompt_publish(
        actor=SYSTEM,
        prompt=prompt,
        messages=[{"role": "system", "content": f"{words} system message {{{{client}}}}"}],
        note=f"{words} first version",
    )
    prompts.prompt_publish(
        actor=SYSTEM,
        prompt=prompt,
        messages=[{"role": "system", "content": f"{words} second message"}],
        note=f"{words} second version",
    )
    prompts.prompt_label_move(
        actor=SYSTEM, prompt=prompt, label="production", version=1, note=f"{words} move"
    )
    prompts.prompt_label_move(actor=SYSTEM, prompt=prompt, label="production", version=2)
    pin = prompts.prompt_pin_set(actor=SYSTEM, prompt=prompt, version=1, team=team)
    limit = quotas.rate_limit_set(
        tenant=tenant, scope="end_user", end_user=f"{words} end user", requests_per_minute=60
    )
    budget = quotas.budget_set(tenant=tenant, scope="team", team=team, amount_usd=Decimal("250"))
    record = AuditRecord.objects.create(
        request_id=f"req_{uuid.uuid4().hex[:24]}",
        tenant=tenant,
        team=team,
        api_key=key,
        endpoint="chat.completions",
        model_requested=f"{words} model",
        route_alias="demo",
        deployment_name=f"{words} deployment",
        provider_name=f"{words} provider"[-64:],
        upstream_model=f"{words} upstream",
        end_user=f"{words} end user",
        feature=f"{words} feature",
        client_context={"client_id": f"{words} client"},
        request_body={"messages": [{"role": "user", "content": f"{words} prompt text"}]},
        response_body={
            "choices": [{"message": {"role": "assistant", "content": f"{words} answer"}}]
        },
        guardrail_findings=[{"kind": "pii", "entity": "PERSON", "detail": f"{words} finding"}],
        prompt_name=prompt.name,
        prompt_version=1,
        prompt_label="production",
        status="error",
        http_status=502,
        error_type="upstream_error",
        error_message=f"{words} error message",
        prompt_tokens=12,
        completion_tokens=8,
        cost_usd=Decimal("0.0125"),
        latency_ms=12.5,
        started_at=now - timedelta(minutes=5),
        completed_at=now - timedelta(minutes=5) + timedelta(milliseconds=12),
    )
    export = AuditExport.objects.create(
        id=uuid.uuid4(),
        tenant=tenant,
        user=users[Role.COMPLIANCE],
        user_label=f"{words} exporter",
        format="csv",
        filters={"q": words},
        started_at=now,
        completed_at=now,
        manifest={"file_name": f"{slug}-export.csv", "note": words},
        signature="0" * 64,
    )
    alert = Alert.objects.create(
        rule="cost_spike",
        subject=f"team:{team.pk}:{slug}",
        tenant=tenant,
        status=AlertStatus.FIRING,
        message=f"{words} alert message",
        context={"team": team.name},
        opened_at=now,
        last_seen_at=now,
    )
    from routing.mcp_gateway import services as mcp

    mcp_server = mcp.mcp_server_upsert(
        tenant=tenant, name="crm", url=f"http://127.0.0.1:9/{slug}/mcp", credential=f"{slug}-mcp"
    )
    mcp.mcp_grant_set(server=mcp_server, team=team, tools=[f"{words} tool"], calls_per_minute=5)
    return FullTenant(
        tenant=tenant,
        team=team,
        users=users,
        key=key,
        key_plaintext=material.plaintext,
        admin_key=admin_key,
        admin_key_plaintext=admin_material.plaintext,
        prompt=prompt,
        pin=pin,
        limit=limit,
        budget=budget,
        record=record,
        export=export,
        alert=alert,
        words=words,
        mcp_server=mcp_server,
    )
