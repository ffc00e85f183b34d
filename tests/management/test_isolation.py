"""Every endpoint of the management API, derived from its OpenAPI schema, refuses a key of
another tenant (404, as if absent) or of the wrong scope (403), and hands out none of the other
tenant's data. A new endpoint without a case here makes `test_every_endpoint_has_a_case` fail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from audit.activity.models import ActivityEvent
from audit.activity.services import SYSTEM
from gateway_site.api.models import AdminKey
from gateway_site.api.routers import management_api
from gateway_site.api.services import admin_key_create
from routing.mcp_gateway.models import McpServer, McpToolGrant
from tenants.quotas.models import ApprovalRule, Budget, CostApproval, QuotaPolicy, RateLimit
from tests.management.conftest import Api, Side

pytestmark = pytest.mark.django_db

Body = Callable[[Side], Any] | None


@dataclass(frozen=True)
class Case:
    body: Body = None
    # "tenant": the path names their tenant (and their objects); "platform": platform keys only;
    # "listing": answers 200, but only with the caller's own things.
    kind: str = "tenant"
    # Under our own tenant's slug, naming their object: absent for us (404), except for creating
    # a member whose username belongs to their account: refused (403), never adopted.
    under_ours: int = 404
    # The role of the tenant key that asks (endpoints for compliance or finance keys).
    role: str = "tenant_admin"


CASES: dict[tuple[str, str], Case] = {
    ("GET", "/tenants"): Case(kind="listing"),
    ("POST", "/tenants"): Case(lambda t: {"slug": "new-one", "name": "New"}, kind="platform"),
    ("GET", "/tenants/{slug}"): Case(),
    ("PATCH", "/tenants/{slug}"): Case(lambda t: {"name": "Hijacked"}),
    ("POST", "/tenants/{slug}/deactivate"): Case(kind="platform"),
    ("POST", "/tenants/{slug}/activate"): Case(kind="platform"),
    ("GET", "/tenants/{slug}/teams"): Case(),
    ("POST", "/tenants/{slug}/teams"): Case(lambda t: {"slug": "spies", "name": "Spies"}),
    ("GET", "/tenants/{slug}/teams/{team}"): Case(),
    ("PATCH", "/tenants/{slug}/teams/{team}"): Case(lambda t: {"allowed_models": ["x"]}),
    ("GET", "/tenants/{slug}/members"): Case(),
    ("GET", "/tenants/{slug}/members/{username}"): Case(),
    ("POST", "/tenants/{slug}/members"): Case(
        lambda t: {"username": t.username, "role": "tenant_admin", "email": "me@attacker.example"}
    ),
    ("PATCH", "/tenants/{slug}/members/{username}"): Case(
        lambda t: {"role": "tenant_admin", "email": "me@attacker.example"}
    ),
    ("DELETE", "/tenants/{slug}/members/{username}"): Case(),
    ("GET", "/tenants/{slug}/keys"): Case(),
    ("POST", "/tenants/{slug}/keys"): Case(lambda t: {"team": t.team.slug, "name": "stolen"}),
    ("GET", "/tenants/{slug}/keys/{key_id}"): Case(),
    ("PATCH", "/tenants/{slug}/keys/{key_id}"): Case(lambda t: {"expires_at": None}),
    ("POST", "/tenants/{slug}/keys/{key_id}/revoke"): Case(),
    ("POST", "/tenants/{slug}/keys/{key_id}/rotate"): Case(lambda t: {"grace_seconds": 0}),
    ("GET", "/tenants/{slug}/limits"): Case(),
    ("POST", "/tenants/{slug}/limits"): Case(
        lambda t: {"scope": "tenant", "requests_per_minute": 1}
    ),
    ("DELETE", "/tenants/{slug}/limits/{limit_id}"): Case(),
    ("GET", "/tenants/{slug}/budgets"): Case(),
    ("POST", "/tenants/{slug}/budgets"): Case(lambda t: {"scope": "tenant", "amount_usd": "0"}),
    ("DELETE", "/tenants/{slug}/budgets/{budget_id}"): Case(),
    ("GET", "/tenants/{slug}/quota-policy"): Case(),
    ("PUT", "/tenants/{slug}/quota-policy"): Case(lambda t: {"on_store_failure_budgets": "open"}),
    ("GET", "/tenants/{slug}/activity"): Case(),
    ("GET", "/activity"): Case(kind="platform"),
    ("GET", "/admin-keys"): Case(kind="listing"),
    ("POST", "/admin-keys"): Case(lambda t: {"name": "mine now", "tenant": t.tenant.slug}),
    ("POST", "/admin-keys/{key_id}/revoke"): Case(),
    ("GET", "/tenants/{slug}/prompts"): Case(),
    ("POST", "/tenants/{slug}/prompts"): Case(lambda t: {"name": "stolen"}),
    ("GET", "/tenants/{slug}/prompts/{name}"): Case(),
    ("GET", "/tenants/{slug}/prompts/{name}/versions"): Case(),
    ("POST", "/tenants/{slug}/prompts/{name}/versions"): Case(
        lambda t: {"messages": [{"role": "system", "content": "Obey me."}]}
    ),
    ("GET", "/tenants/{slug}/prompts/{name}/versions/{number}"): Case(),
    ("PUT", "/tenants/{slug}/prompts/{name}/labels/{label}"): Case(lambda t: {"version": 1}),
    ("POST", "/tenants/{slug}/prompts/{name}/labels/{label}/rollback"): Case(),
    ("GET", "/tenants/{slug}/prompts/{name}/history"): Case(),
    ("GET", "/tenants/{slug}/mcp/servers"): Case(),
    ("POST", "/tenants/{slug}/mcp/servers"): Case(
        lambda t: {"name": "stolen", "url": "https://evil.example/mcp"}
    ),
    ("GET", "/tenants/{slug}/mcp/servers/{server}"): Case(),
    ("PATCH", "/tenants/{slug}/mcp/servers/{server}"): Case(
        lambda t: {"url": "https://evil.example/mcp", "credential": "mine"}
    ),
    ("PUT", "/tenants/{slug}/mcp/servers/{server}/teams/{team}"): Case(lambda t: {"tools": ["*"]}),
    ("PUT", "/tenants/{slug}/mcp/servers/{server}/keys/{key_id}"): Case(lambda t: {"tools": ["*"]}),
    ("GET", "/providers"): Case(kind="platform"),
    ("GET", "/providers/{name}"): Case(kind="platform"),
    ("PUT", "/providers/{name}"): Case(
        lambda t: {"kind": "openai", "base_url": "https://evil.example"}, kind="platform"
    ),
    ("GET", "/deployments"): Case(kind="platform"),
    ("GET", "/deployments/{name}"): Case(kind="platform"),
    ("PUT", "/deployments/{name}"): Case(
        lambda t: {"provider": "any", "upstream_model": "m"}, kind="platform"
    ),
    ("GET", "/routes"): Case(kind="platform"),
    ("GET", "/routes/{alias}"): Case(kind="platform"),
    ("PUT", "/routes/{alias}"): Case(lambda t: {"targets": [{"deployment": "d"}]}, kind="platform"),
    ("GET", "/task-categories"): Case(kind="platform"),
    ("PUT", "/task-categories/{name}"): Case(lambda t: {"threshold": 0.5}, kind="platform"),
    ("GET", "/task-categories/{name}/scores"): Case(kind="platform"),
    ("GET", "/tenants/{slug}/audit/records"): Case(role="compliance"),
    ("GET", "/tenants/{slug}/audit/records/{request_id}"): Case(role="compliance"),
    ("GET", "/tenants/{slug}/audit/export"): Case(role="compliance"),
    ("GET", "/tenants/{slug}/audit/exports/{export_id}/manifest"): Case(role="compliance"),
    ("GET", "/tenants/{slug}/costs"): Case(role="finance"),
    ("GET", "/tenants/{slug}/prompts/{name}/usage"): Case(role="compliance"),
    ("GET", "/tenants/{slug}/approval-rules"): Case(),
    ("POST", "/tenants/{slug}/approval-rules"): Case(
        lambda t: {"scope": "tenant", "threshold_usd": "0"}
    ),
    ("DELETE", "/tenants/{slug}/approval-rules/{approval_rule_id}"): Case(),
    ("GET", "/tenants/{slug}/cost-approvals"): Case(role="finance"),
    ("POST", "/tenants/{slug}/cost-approvals/{approval_id}/approve"): Case(
        lambda t: {}, role="finance"
    ),
    ("POST", "/tenants/{slug}/cost-approvals/{approval_id}/refuse"): Case(
        lambda t: {}, role="finance"
    ),
}


def asking(case: Case, ours: Side, as_ours: Api) -> Api:
    """Our tenant's admin key, or a key of ours in the role the endpoint is for."""
    if case.role == "tenant_admin":
        return as_ours
    _, material = admin_key_create(
        name=f"{case.role} bot", tenant=ours.tenant, created_by="test", actor=SYSTEM, role=case.role
    )
    return Api(material.plaintext)


def schema_operations() -> set[tuple[str, str]]:
    paths = management_api.get_openapi_schema()["paths"]
    return {
        (method.upper(), path.removeprefix("/api/v1"))
        for path, item in paths.items()
        for method in item
    }


def test_every_endpoint_has_a_case() -> None:
    assert schema_operations() == set(CASES)


def fill(template: str, side: Side, *, slug_of: Side | None = None) -> str:
    """The path with the parameters pointing at `side`'s things (the tenant slug may differ)."""
    key_id = side.admin_key_id if template.startswith("/admin-keys") else side.key.pk
    return (
        template.replace("{slug}", (slug_of or side).tenant.slug)
        .replace("{team}", side.team.slug)
        .replace("{username}", side.username)
        .replace("{key_id}", str(key_id))
        .replace("{limit_id}", str(side.limit_id))
        .replace("{budget_id}", str(side.budget_id))
        .replace("{name}", "anything")
        .replace("{alias}", "anything")
        .replace("{label}", "production")
        .replace("{number}", "1")
        .replace("{server}", f"{side.tenant.slug}-crm")
        .replace("{request_id}", f"req_{side.tenant.slug}")
        .replace("{export_id}", "8d1c1f52-0f5e-4d2b-9b7a-1d0c3f5b2a10")
        .replace("{approval_rule_id}", str(side.approval_rule_id))
        .replace("{approval_id}", side.approval_id)
    )


def assert_refused(response: Any, statuses: set[int], theirs: Side) -> None:
    assert response.status_code in statuses, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    text = response.content.decode()
    leaked = [s for s in theirs.secrets() if s in text]
    assert not leaked, f"{leaked} in {text}"


def snapshot(side: Side) -> Any:
    side.tenant.refresh_from_db()
    side.key.refresh_from_db()
    return (
        ActivityEvent.objects.count(),
        side.tenant.name,
        side.tenant.is_active,
        side.key.name,
        side.key.revoked_at,
        side.key.expires_at,
        list(side.tenant.memberships.values_list("user__username", "role")),
        list(side.tenant.teams.values_list("slug", "allowed_models")),
        AdminKey.objects.get(pk=side.admin_key_id).revoked_at,
        get_user_model().objects.values_list("email", "password").get(username=side.username),
        list(RateLimit.objects.filter(tenant=side.tenant).values()),
        list(Budget.objects.filter(tenant=side.tenant).values()),
        list(QuotaPolicy.objects.filter(tenant=side.tenant).values()),
        list(McpServer.objects.filter(tenant=side.tenant).values()),
        list(McpToolGrant.objects.filter(tenant=side.tenant).values()),
        list(ApprovalRule.objects.filter(tenant=side.tenant).values()),
        list(CostApproval.objects.filter(tenant=side.tenant).values()),
    )


@pytest.mark.parametrize(("method", "template"), sorted(CASES))
def test_a_tenant_key_cannot_reach_another_tenant(
    method: str, template: str, ours: Side, theirs: Side, as_ours: Api
) -> None:
    case = CASES[(method, template)]
    body = case.body(theirs) if case.body else None
    api = asking(case, ours, as_ours)
    before = snapshot(theirs)

    response = api.call(method, fill(template, theirs), body)

    if case.kind == "listing":
        assert response.status_code == 200
        text = response.content.decode()
        assert ours.tenant.slug in text
        assert theirs.tenant.slug not in text
        assert not [s for s in theirs.secrets() if s in text]
    elif case.kind == "platform":
        assert_refused(response, {403}, theirs)
        assert response.json()["error"]["code"] == "platform_scope_required"
    else:
        assert_refused(response, {404}, theirs)
    assert snapshot(theirs) == before


@pytest.mark.parametrize(
    ("method", "template"),
    sorted(op for op in CASES if CASES[op].kind == "tenant" and op[1].count("{") > 1),
)
def test_their_objects_stay_out_of_reach_under_our_own_tenant(
    method: str, template: str, ours: Side, theirs: Side, as_ours: Api
) -> None:
    """Our slug, their team / member / key id: still 404, never a path around the tenant check."""
    case = CASES[(method, template)]
    api = asking(case, ours, as_ours)
    before = snapshot(theirs)

    response = api.call(
        method, fill(template, theirs, slug_of=ours), case.body(theirs) if case.body else None
    )

    assert_refused(response, {case.under_ours}, theirs)
    assert snapshot(theirs) == before


@pytest.mark.parametrize(("method", "template"), sorted(CASES))
@pytest.mark.parametrize("who", ["nobody", "revoked", "proxy key", "made up"])
def test_every_endpoint_refuses_a_caller_without_a_live_admin_key(
    method: str, template: str, who: str, ours: Side, theirs: Side, platform: Api
) -> None:
    if who == "revoked":
        platform.post(f"/admin-keys/{ours.admin_key_id}/revoke")
    key = {
        "nobody": None,
        "revoked": ours.admin_key,
        "proxy key": ours.key_plaintext,
        "made up": "gwa-" + "x" * 43,
    }[who]
    case = CASES[(method, template)]
    before = snapshot(theirs)

    response = Api(key).call(method, fill(template, ours), case.body(ours) if case.body else None)

    assert_refused(response, {401}, theirs)
    assert snapshot(theirs) == before
