"""The one test-world builder, and the committed world the live-server tests share.

`build_tenant` makes a tenant with its teams, members and keys, and returns a typed
handle; `add_members` and `add_keys` grow a handle; `build_route` adds a one-deployment route (routes
are the platform's, not a tenant's). The session `world` (tests/conftest.py), `build_full_tenant`
and the module-local tenants of the test modules are all made with them. Every call goes through
the services (`*_apply` / `*_create`), as the console and the API would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from routing import services as routing
from routing.models import Deployment
from tenants import services as tenants
from tenants.models import ApiKey, Role, Team, Tenant

EVERY_ROLE = tuple(Role.values)
TENANT_ROLES = tuple(role for role in Role.values if role != Role.PLATFORM_ADMIN)


@dataclass(frozen=True)
class TeamSpec:
    slug: str
    name: str | None = None  # default: the slug titled
    allowed_models: Sequence[str] = ()  # none listed: every model


@dataclass(frozen=True)
class Member:
    """A user of the tenant. `teams`: slugs of its teams (None: every team of the tenant)."""

    role: str
    username: str | None = None  # default "<people>-<role>"
    email: str | None = None  # default "<role>@<people>.example"
    teams: Sequence[str] | None = None
    label: str | None = None  # its name in `TenantWorld.users` (default: username, else role)


@dataclass(frozen=True)
class Key:
    """An API key. `team`: a team slug (default: the first team); `owner`: a member's label."""

    name: str
    team: str | None = None
    owner: str | None = None
    allowed_models: Sequence[str] | None = None
    expires_at: datetime | None = None
    revoked: bool = False


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    plaintext: str  # shown once, as the console shows it


@dataclass
class TenantWorld:
    tenant: Tenant
    teams: dict[str, Team]  # by slug, in the order given
    users: dict[str, User] = field(default_factory=dict)  # by `Member.label`
    keys: dict[str, IssuedKey] = field(default_factory=dict)  # by name
    people: str = ""  # the stem of generated usernames and email domains

    @property
    def team(self) -> Team:
        """The first team."""
        return next(iter(self.teams.values()))

    def key(self, name: str) -> str:
        """The plaintext of key `name`."""
        return self.keys[name].plaintext

    def copy(self) -> TenantWorld:
        """The same tenant, for additions that live in one test's transaction (the session
        world's handles keep only what is committed)."""
        return replace(self, teams=dict(self.teams), users=dict(self.users), keys=dict(self.keys))


def build_tenant(
    slug: str,
    *,
    name: str | None = None,
    residency_region: str = "",
    teams: Mapping[str, str] | Sequence[str | TeamSpec] = (),
    roles: Sequence[str] = (),
    members: Sequence[Member] = (),
    keys: Sequence[Key | str] = (),
    password: str | None = None,
    people: str | None = None,
) -> TenantWorld:
    """Tenant `slug` with `teams` (slugs, `TeamSpec`s, or slug → name), one member per role of
    `roles` in every team plus `members`, and `keys` (names or `Key`s)."""
    tenant = tenants.tenant_apply(
        slug=slug, name=name or _title(slug), residency_region=residency_region
    )
    specs = (
        [TeamSpec(team_slug, team_name) for team_slug, team_name in teams.items()]
        if isinstance(teams, Mapping)
        else [TeamSpec(team) if isinstance(team, str) else team for team in teams]
    )
    handle = TenantWorld(
        tenant=tenant,
        teams={
            spec.slug: tenants.team_apply(
                tenant=tenant,
                slug=spec.slug,
                name=spec.name or _title(spec.slug),
                allowed_models=list(spec.allowed_models),
            )
            for spec in specs
        },
        people=people or slug,
    )
    add_members(handle, [*(Member(role) for role in roles), *members], password=password)
    add_keys(handle, keys)
    return handle


def add_members(
    handle: TenantWorld, members: Sequence[Member], *, password: str | None = None
) -> dict[str, User]:
    """`password`: theirs, to sign in to the console (None: they cannot)."""
    added: dict[str, User] = {}
    for member in members:
        label = member.label or member.username or member.role
        if label in handle.users:
            raise ValueError(f"{handle.tenant.slug} already has a {label!r}: give a label")
        slugs = handle.teams if member.teams is None else member.teams
        added[label] = handle.users[label] = tenants.member_apply(
            tenant=handle.tenant,
            username=member.username or f"{handle.people}-{member.role}",
            email=f"{member.role}@{handle.people}.example"
            if member.email is None
            else member.email,
            role=member.role,
            teams=[handle.teams[team] for team in slugs],
            password=password,
        )
    return added


def add_keys(handle: TenantWorld, keys: Sequence[Key | str]) -> dict[str, IssuedKey]:
    added: dict[str, IssuedKey] = {}
    for spec in keys:
        key = Key(spec) if isinstance(spec, str) else spec
        api_key, material = tenants.key_create(
            team=handle.teams[key.team] if key.team else handle.team,
            name=key.name,
            allowed_models=list(key.allowed_models) if key.allowed_models is not None else None,
            expires_at=key.expires_at,
            owner=handle.users[key.owner] if key.owner else None,
        )
        if key.revoked:
            tenants.key_revoke(key=api_key)
        added[key.name] = handle.keys[key.name] = IssuedKey(api_key, material.plaintext)
    return added


def build_route(
    alias: str,
    *,
    base_url: str,
    provider: str,
    deployment: str,
    upstream_model: str,
    input_price: Decimal | str = "1",  # USD per million tokens
    output_price: Decimal | str = "1",
    kind: str = "openai",
    credential: str = "sk-test",
    region: str = "us",
    **provider_options: Any,
) -> Deployment:
    """Route `alias` to one deployment on one provider (`provider_options`: its limits)."""
    upstream = routing.provider_upsert(
        name=provider,
        kind=kind,
        base_url=base_url,
        credential=credential,
        region=region,
        **provider_options,
    )
    target = routing.deployment_upsert(
        name=deployment,
        provider=upstream,
        upstream_model=upstream_model,
        input_price_per_mtok=Decimal(input_price),
        output_price_per_mtok=Decimal(output_price),
    )
    routing.route_upsert(alias=alias, description="", deployments=[target])
    return target


def _title(slug: str) -> str:
    return slug.replace("-", " ").title()


@dataclass
class World:
    key: str  # acme/advisors: may use every model
    limited_key: str  # acme/advisors: may use only "demo"
    revoked_key: str
    expired_key: str
    other_tenant_key: str  # globex/ops
    eu_key: str  # tenant with residency "eu": no EU deployment exists
    team: Team  # acme/advisors
    acme: TenantWorld  # team "advisors"; keys "e2e", "e2e-limited", "e2e-revoked", "e2e-expired"
    globex: TenantWorld  # team "ops"; key "e2e-globex"
    euro: TenantWorld  # residency "eu", team "desk"; key "e2e-eu"


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

    acme = build_tenant(
        "acme",
        name="Acme Wealth",
        teams=["advisors"],
        keys=[
            "e2e",
            Key("e2e-limited", allowed_models=["demo"]),
            Key("e2e-revoked", revoked=True),
            Key("e2e-expired", expires_at=timezone.now() - timedelta(days=1)),
        ],
    )
    globex = build_tenant("globex", teams=["ops"], keys=["e2e-globex"])
    euro = build_tenant(
        "euro", name="Euro Bank", residency_region="eu", teams=["desk"], keys=["e2e-eu"]
    )
    return World(
        key=acme.key("e2e"),
        limited_key=acme.key("e2e-limited"),
        revoked_key=acme.key("e2e-revoked"),
        expired_key=acme.key("e2e-expired"),
        other_tenant_key=globex.key("e2e-globex"),
        eu_key=euro.key("e2e-eu"),
        team=acme.team,
        acme=acme,
        globex=globex,
        euro=euro,
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
    world: TenantWorld | None = None  # the same tenant, teams, users and key, to add to
    hold: Any = None
    erasure: Any = None
    guardrail_policy: Any = None
    attachment: Any = None
    approval_rule: Any = None
    approval: Any = None

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
            "hold_id": self.hold.pk if self.hold else 0,
            "erasure_id": self.erasure.pk if self.erasure else 0,
            "decision": "approve",
            "attachment_id": self.attachment.pk if self.attachment else 0,
            "approval_id": self.approval.public_id if self.approval else "apr_none",
            "approval_rule_id": self.approval_rule.pk if self.approval_rule else 0,
            "alias": "demo",
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
    built = build_tenant(
        slug,
        name=f"{words} Holdings",
        teams={f"{slug}-vault": f"{words} Vault Team"},
        members=[Member(role, email=f"{role}.{slug}@{slug}.example") for role in TENANT_ROLES],
        keys=[Key(f"{words} backend key", owner=Role.DEVELOPER)],
        password=password,
    )
    tenant, team, users = built.tenant, built.team, dict(built.users)
    key, key_plaintext = (
        built.keys[f"{words} backend key"].api_key,
        built.key(f"{words} backend key"),
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
        tenant=tenant, scope="user", end_user=f"{words} end user", requests_per_minute=60
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
    governed = _governed_objects(tenant, team, key, users, slug=slug, words=words)
    return FullTenant(
        tenant=tenant,
        team=team,
        users=users,
        key=key,
        key_plaintext=key_plaintext,
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
        world=built,
        **governed,
    )


def _governed_objects(
    tenant: Any, team: Team, key: Any, users: dict[str, Any], *, slug: str, words: str
) -> dict[str, Any]:
    """The objects of the governance pages: a legal hold, an erasure request, a guardrail policy
    attached to the tenant, a held cost approval and its rule."""
    from datetime import timedelta

    from django.utils import timezone

    from audit.activity.services import SYSTEM
    from audit.erasure_requests import erasure_request_create
    from audit.services import legal_hold_place
    from routing.guardrails import services as guardrails
    from routing.guardrails.core.policy import PolicySpec
    from tenants.quotas import approvals
    from tenants.quotas.models import CostApproval

    hold = legal_hold_place(tenant=tenant, reason=f"{words} matter", actor=SYSTEM)
    erasure = erasure_request_create(
        tenant=tenant,
        end_user=f"{words} erased user",
        reason=f"{words} erasure",
        user=users[Role.COMPLIANCE],
    )
    policy = guardrails.guardrail_policy_upsert(
        name=f"{slug}-pii", tenant=tenant, spec=PolicySpec.model_validate({"pii": {}})
    )
    attachment = guardrails.guardrail_policy_attach(policy=policy, tenant=tenant)
    approval_rule = approvals.approval_rule_set(
        tenant=tenant, scope="team", team=team, threshold_usd=Decimal("5"), actor=SYSTEM
    )
    now = timezone.now()
    approval = CostApproval.objects.create(
        public_id=f"apr_{slug.replace('-', '_')}",
        tenant=tenant,
        team=team,
        api_key=key,
        body_sha256="0" * 64,
        predicted_cost_usd=Decimal("9"),
        threshold_usd=Decimal("5"),
        created_at=now,
        expires_at=now + timedelta(hours=1),
    )
    return {
        "hold": hold,
        "erasure": erasure,
        "guardrail_policy": policy,
        "attachment": attachment,
        "approval_rule": approval_rule,
        "approval": approval,
    }
