"""Applying a declarative configuration: create or update, idempotently, in one transaction.

Nothing absent from the file is deleted: removing things is an explicit act (console or API).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import yaml
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from pydantic import ValidationError

from audit.activity.services import CONFIG
from billing import services as billing_services
from gateway_site.declarative.schema import (
    GatewayConfig,
    GuardrailAttachSpec,
    GuardrailPolicyConfig,
    TenantSpec,
    resolve_secret,
)
from routing import services as routing_services
from routing.evaluations import services as evaluation_services
from routing.guardrails import services as guardrail_services
from routing.mcp_gateway import services as mcp_services
from routing.mcp_gateway.config import ClientCredentialsSpec, McpToolsSpec, TokenExchangeSpec
from routing.mcp_gateway.models import McpServer
from routing.models import Route
from routing.prompts.declared import prompts_apply
from routing.prompts.services import PromptError
from routing.responses_state import services as responses_services
from tenants import services as tenant_services
from tenants.keys import hash_key
from tenants.models import ApiKey, Team, Tenant
from tenants.quotas.declared import apply_rules, apply_tenant_quotas
from tenants.quotas.models import Scope


class ConfigError(Exception):
    pass


@dataclass
class ApplyReport:
    counts: dict[str, int] = field(default_factory=dict)
    # Keys generated because the file gave no value: their only chance to be seen.
    generated_keys: dict[str, str] = field(default_factory=dict)

    def bump(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1


def config_load(path: Path) -> GatewayConfig:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    try:
        return GatewayConfig.model_validate(data or {})
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(
            f"{path} is not a valid gateway configuration:\n" + "\n".join(lines)
        ) from exc


def _secret(value: str | None, where: str) -> str | None:
    try:
        return resolve_secret(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


@transaction.atomic
def config_apply(config: GatewayConfig) -> ApplyReport:
    report = ApplyReport()
    providers = {}
    for spec in config.providers:
        where = f"provider {spec.name}"
        try:
            providers[spec.name] = routing_services.provider_upsert(
                actor=CONFIG,
                name=spec.name,
                kind=spec.kind,
                base_url=spec.base_url,
                credential=_secret(spec.credential, where),
                region=spec.region,
                requests_per_minute=spec.capacity.requests_per_minute if spec.capacity else None,
                tokens_per_minute=spec.capacity.tokens_per_minute if spec.capacity else None,
                capacity_queue_seconds=spec.capacity.queue_seconds if spec.capacity else 0,
            )
        except routing_services.ProviderRefused as refused:
            # The whole file is one transaction: nothing it changed before this stays.
            raise ConfigError(f"{where}: {refused.message} [{refused.code}]") from refused
        report.bump("providers")
    deployments = {}
    for deployment in config.deployments:
        price = deployment.price
        deployments[deployment.name] = routing_services.deployment_upsert(
            actor=CONFIG,
            name=deployment.name,
            provider=providers[deployment.provider],
            upstream_model=deployment.upstream_model,
            input_price_per_mtok=price.input_per_mtok if price else Decimal(0),
            output_price_per_mtok=price.output_per_mtok if price else Decimal(0),
        )
        if price is not None:
            billing_services.price_declare(
                actor=CONFIG,
                deployment=deployments[deployment.name],
                input_per_mtok=price.input_per_mtok,
                output_per_mtok=price.output_per_mtok,
                cached_input_per_mtok=price.cached_input_per_mtok,
                per_request_usd=price.per_request_usd,
                per_tool_call_usd=price.per_tool_call_usd,
                gpu_hour_usd=price.gpu_hour_usd,
                effective_from=price.effective_from,
            )
        report.bump("deployments")
    for route in config.routes:
        routing_services.route_upsert(
            actor=CONFIG,
            alias=route.alias,
            description=route.description,
            deployments=[deployments[t.deployment] for t in route.weighted()],
            weights=[t.weight for t in route.weighted()],
            strategy=route.strategy,
            sticky=route.sticky,
            timeout_seconds=route.timeout_seconds,
            first_token_timeout_seconds=route.first_token_timeout_seconds,
            hosted_tools=route.hosted_tools,
            forward_hosted_tools=route.forward_hosted_tools,
            cache_mode=route.cache,
            cache_ttl_seconds=route.cache_ttl_seconds,
            cache_scope=route.cache_scope,
            cache_similarity=route.cache_similarity,
        )
        report.bump("routes")
    for category in config.task_categories:
        evaluation_services.category_upsert(actor=CONFIG, **category.model_dump())
        report.bump("task categories")
    for tenant_spec in config.tenants:
        try:
            _apply_tenant(tenant_spec, report)
        except tenant_services.TenancyError as refused:
            # e.g. a username the accounts refuse: a clear error; the transaction undoes the rest.
            raise ConfigError(f"tenant {tenant_spec.slug}: {refused.message}") from refused
    for policy_spec in config.guardrail_policies:
        _apply_guardrail_policy(policy_spec, report)
    return report


def _apply_guardrail_policy(spec: GuardrailPolicyConfig, report: ApplyReport) -> None:
    where = f"guardrail policy {spec.name}"

    def tenant(slug: str) -> Tenant:
        found = Tenant.objects.filter(slug=slug).first()
        if found is None:
            raise ConfigError(f"{where}: unknown tenant {slug!r}")
        return found

    try:
        policy = guardrail_services.guardrail_policy_upsert(
            actor=CONFIG,
            name=spec.name,
            tenant=tenant(spec.tenant) if spec.tenant else None,
            description=spec.description,
            spec=spec.policy_spec(),
            shadow=spec.shadow,
        )
    except DjangoValidationError as exc:
        raise ConfigError(f"{where}: {'; '.join(exc.messages)}") from exc
    report.bump("guardrail_policies")
    for attach in spec.attach:
        scope = _attachment_scope(attach, tenant)
        if scope is None:
            raise ConfigError(
                f"{where}: attached to unknown {attach.model_dump(exclude_none=True)}"
            )
        try:
            guardrail_services.guardrail_policy_attach(
                actor=CONFIG,
                policy=policy,
                tenant=scope if isinstance(scope, Tenant) else None,
                team=scope if isinstance(scope, Team) else None,
                api_key=scope if isinstance(scope, ApiKey) else None,
                route=scope if isinstance(scope, Route) else None,
            )
        except DjangoValidationError as exc:
            raise ConfigError(f"{where}: {'; '.join(exc.messages)}") from exc


def _apply_tenant(spec: TenantSpec, report: ApplyReport) -> None:
    tenant = tenant_services.tenant_apply(
        actor=CONFIG, slug=spec.slug, name=spec.name, residency_region=spec.residency_region
    )
    report.bump("tenants")
    if spec.responses_retention_days is not None:
        responses_services.responses_retention_set(
            actor=CONFIG, tenant=tenant, retention_days=spec.responses_retention_days
        )
    servers = _apply_mcp_servers(spec, tenant, report)
    teams: dict[str, Team] = {}
    for team_spec in spec.teams:
        team = tenant_services.team_apply(
            actor=CONFIG,
            tenant=tenant,
            slug=team_spec.slug,
            name=team_spec.name,
            allowed_models=team_spec.allowed_models,
        )
        tenant_services.team_pins_set(actor=CONFIG, team=team, model_pins=team_spec.model_pins)
        teams[team_spec.slug] = team
        report.bump("teams")
        for key_spec in team_spec.keys:
            where = f"key {spec.slug}/{team_spec.slug}/{key_spec.name}"
            plaintext = _secret(key_spec.value, where)
            existing = ApiKey.objects.filter(
                tenant=tenant, name=key_spec.name, revoked_at__isnull=True
            ).first()
            if existing is not None and existing.team_id != team.id:
                raise ConfigError(f"{where}: a key of that name belongs to another team")
            if plaintext is not None:
                # Key values are unique across tenants: say so, without naming the other key.
                holder = ApiKey.objects.filter(key_hash=hash_key(plaintext))
                if existing is not None:
                    holder = holder.exclude(pk=existing.pk)
                if holder.exists():
                    raise ConfigError(f"{where}: this value is already another key's")
            if existing is None:
                existing, material = tenant_services.key_create(
                    actor=CONFIG,
                    team=team,
                    name=key_spec.name,
                    plaintext=plaintext,
                    allowed_models=key_spec.allowed_models,
                    expires_at=key_spec.expires_at,
                )
                if plaintext is None:
                    report.generated_keys[where] = material.plaintext
            else:
                changed = (
                    plaintext if plaintext and hash_key(plaintext) != existing.key_hash else None
                )
                tenant_services.key_update(
                    actor=CONFIG,
                    key=existing,
                    allowed_models=key_spec.allowed_models,
                    expires_at=key_spec.expires_at,
                    plaintext=changed,
                )
            tenant_services.key_pins_set(actor=CONFIG, key=existing, model_pins=key_spec.model_pins)
            report.bump("keys")
            _apply_mcp_tools(key_spec.mcp_tools, servers, api_key=existing)
            apply_rules(
                tenant=tenant,
                scope=Scope.KEY,
                limits=key_spec.limits,
                budgets=key_spec.budgets,
                api_key=existing,
                cost_approval=key_spec.cost_approval,
            )
        _apply_mcp_tools(team_spec.mcp_tools, servers, team=team)
        apply_rules(
            tenant=tenant,
            scope=Scope.TEAM,
            limits=team_spec.limits,
            budgets=team_spec.budgets,
            team=team,
            cost_approval=team_spec.cost_approval,
        )
    for user_spec in spec.users:
        tenant_services.member_apply(
            actor=CONFIG,
            tenant=tenant,
            username=user_spec.username,
            email=user_spec.email,
            role=user_spec.role,
            teams=[teams[slug] for slug in user_spec.teams],
            password=_secret(user_spec.password, f"user {user_spec.username}"),
        )
        report.bump("users")
    apply_tenant_quotas(
        tenant=tenant,
        policy=spec.quota_policy,
        limits=spec.limits,
        budgets=spec.budgets,
        end_users=spec.end_users,
        cost_approval=spec.cost_approval,
        agents=spec.agents,
    )
    try:
        prompts_apply(tenant=tenant, specs=spec.prompts, teams=teams, bump=report.bump)
    except PromptError as exc:
        raise ConfigError(f"tenant {spec.slug}: {exc}") from exc


def _apply_mcp_servers(
    spec: TenantSpec, tenant: Tenant, report: ApplyReport
) -> dict[str, McpServer]:
    servers = {}
    for server in spec.mcp_servers:
        where = f"tenant {spec.slug}: MCP server {server.name}"
        try:
            servers[server.name] = mcp_services.mcp_server_upsert(
                actor=CONFIG,
                tenant=tenant,
                name=server.name,
                url=server.url,
                credential=_secret(server.credential, where),
                credential_header=server.credential_header,
                timeout_seconds=server.timeout_seconds,
                max_result_bytes=server.max_result_bytes,
                result_injection=server.result_injection,
                tool_prices=server.tool_prices,
                token_exchange=_token_exchange(server.token_exchange, where),
                client_credentials=_client_credentials(server.client_credentials, where),
            )
        except mcp_services.McpServerRefused as refused:
            raise ConfigError(f"{where}: {refused.message} [{refused.code}]") from refused
        report.bump("mcp_servers")
    return servers


def _token_exchange(
    spec: TokenExchangeSpec | None, where: str
) -> mcp_services.TokenExchange | None:
    if spec is None:
        return None
    return mcp_services.TokenExchange(
        token_url=spec.token_url,
        client_id=spec.client_id,
        client_secret=_secret(spec.client_secret, f"{where}: token_exchange"),
        audience=spec.audience,
        scope=spec.scope,
        subject_token_type=spec.subject_token_type,
    )


def _client_credentials(
    spec: ClientCredentialsSpec | None, where: str
) -> mcp_services.ClientCredentials | None:
    if spec is None:
        return None
    return mcp_services.ClientCredentials(
        token_url=spec.token_url,
        client_id=spec.client_id,
        client_secret=_secret(spec.client_secret, f"{where}: client_credentials"),
        scope=spec.scope,
        audience=spec.audience,
    )


def _apply_mcp_tools(
    grants: list[McpToolsSpec],
    servers: dict[str, McpServer],
    *,
    team: Team | None = None,
    api_key: ApiKey | None = None,
) -> None:
    for grant in grants:
        try:
            mcp_services.mcp_grant_set(
                actor=CONFIG,
                server=servers[grant.server],
                team=team,
                api_key=api_key,
                tools=grant.tools,
                calls_per_minute=grant.calls_per_minute,
                argument_constraints=grant.argument_constraints,
            )
        except DjangoValidationError as exc:
            raise ConfigError(f"mcp_tools for {grant.server}: {'; '.join(exc.messages)}") from exc


def _attachment_scope(
    attach: GuardrailAttachSpec, tenant: Callable[[str], Tenant]
) -> Tenant | Team | ApiKey | Route | None:
    if attach.tenant is not None:
        return tenant(attach.tenant)
    if attach.team is not None:
        owner, slug = attach.team.split("/")
        return Team.objects.filter(tenant=tenant(owner), slug=slug).first()
    if attach.key is not None:
        owner, name = attach.key.split("/")
        return ApiKey.objects.filter(
            tenant=tenant(owner), name=name, revoked_at__isnull=True
        ).first()
    return Route.objects.filter(alias=attach.route).first()
