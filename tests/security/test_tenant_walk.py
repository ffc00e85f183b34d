"""Every door, tried by everyone who should not get through it.

The console's URLs come from Django's resolver and the management API's operations from its
OpenAPI schema, so a new page or endpoint is walked the day it is added (and a path parameter the
walk cannot fill fails the walk instead of being skipped). Each URL is filled with the objects of
a victim tenant (tests/support/world.py `build_full_tenant`) and tried:

- by members of another tenant, in every role, at the victim's URLs (404, nothing of it shown);
- by the same people at their *own* tenant's URLs naming the victim's objects (an id or a name
  taken from the victim: 403/404, never the object);
- by the victim's own members whose role does not open the page (403), and by a developer at a
  key they do not own (404);
- by nobody (the sign-in page; 401 for the API);

and after every state-changing request the victim's rows (and the platform's) must be unchanged.
Each test collects every URL that let something through and fails listing them all.
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import reduce
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.db.models import Q
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from audit.activity.services import SYSTEM
from gateway_site.api.routers import management_api
from gateway_site.api.services import admin_key_create
from routing import services as routing
from routing.evaluations.models import TaskCategory
from tenants.models import Role, Tenant
from tests.console.conftest import Acme, make_acme
from tests.support.world import FullTenant, Member, add_members, build_full_tenant

# The walk builds two full tenants and opens every page and operation as every role: minutes on
# a loaded 2-core machine, more than the suite's default 120 s per test.
pytestmark = [pytest.mark.django_db, pytest.mark.timeout(900)]

STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")
# Path parameters that name no object of a tenant (a format, a kind of rule, a label's name).
NOT_AN_OBJECT = {"tenant_slug", "slug", "fmt", "kind", "label", "number", "decision"}

# Who may open each console page, written down independently of the views' own declarations:
# the walk checks the behaviour against this, so a view declared with a role too many fails.
# A console URL missing here fails `test_every_console_url_has_an_expected_audience`.
ADMIN, DEV, COMPLIANCE, FINANCE = "tenant_admin", "developer", "compliance", "finance"
EXPECTED_ROLES: dict[str, set[str]] = {
    "console:tenant_home": {ADMIN, DEV, COMPLIANCE, FINANCE},
    **{
        f"console:{name}": {ADMIN, DEV}
        for name in (
            "keys",
            "key_create",
            "key_detail",
            "key_rotate",
            "key_revoke",
            "quickstart",
            "playground",
            "playground_stream",
            "my_requests",
            "my_request",
        )
    },
    **{
        f"console:admin_{name}": {ADMIN}
        for name in (
            "teams",
            "team_edit",
            "members",
            "member_edit",
            "member_remove",
            "keys",
            "models",
        )
    },
    # Compliance reads who changed what (policies included) as well.
    **{f"console:admin_{name}": {ADMIN, COMPLIANCE} for name in ("activity", "activity_export")},
    **{
        f"prompts:{name}": {ADMIN, DEV, COMPLIANCE}
        for name in ("list", "detail", "diff", "version")
    },
    **{
        f"prompts:{name}": {ADMIN, DEV}
        for name in ("create", "publish", "label_move", "label_rollback", "pin_set", "pin_clear")
    },
    **{
        f"compliance:{name}": {COMPLIANCE}
        for name in ("search", "record", "export", "export_manifest", "chain")
    },
    "quotas:limits": {ADMIN, FINANCE},
    **{f"quotas:{name}": {ADMIN} for name in ("limit_save", "budget_save", "rule_delete")},
    "evaluations:scores": {ADMIN, DEV, FINANCE},
    **{f"billing:{name}": {ADMIN, FINANCE} for name in ("finance", "team", "requests")},
    "billing:prices": set(),  # platform admins only
    "billing:dashboard": {ADMIN, FINANCE, COMPLIANCE},
    "observability:alerts": {ADMIN, FINANCE, COMPLIANCE},
    "response_cache:cache": {ADMIN},
    "mcp:overview": {ADMIN},
    "mcp:price_save": {ADMIN},
    "mcp:credentials_save": {ADMIN},
    # Guardrail policies: admins write them, compliance reads them and reviews held requests.
    **{f"guardrails:{name}": {ADMIN, COMPLIANCE} for name in ("list", "detail", "dry_run")},
    **{f"guardrails:{name}": {ADMIN} for name in ("create", "edit", "attach", "detach")},
    **{
        f"guardrails:{name}": {ADMIN, COMPLIANCE}
        for name in ("review", "review_decide", "review_export")
    },
    # Cost pre-approval: budget owners decide, admins set the thresholds.
    **{f"quotas:{name}": {ADMIN, FINANCE} for name in ("approvals", "approval_decide")},
    **{f"quotas:{name}": {ADMIN} for name in ("approval_rule_save", "approval_rule_delete")},
    # The tenant's audit governance: the policy for admins and compliance, the rest compliance.
    "compliance:policy": {ADMIN, COMPLIANCE},
    **{
        f"compliance:{name}": {COMPLIANCE}
        for name in ("holds", "hold_release", "erasure", "erasure_decide")
    },
    # Platform pages: platform admins only.
    **{
        f"routing:{name}": set()
        for name in (
            "providers",
            "provider_new",
            "provider_edit",
            "deployments",
            "deployment_new",
            "deployment_edit",
            "routes",
            "route_new",
            "route_edit",
        )
    },
    **{f"evaluations:{name}": set() for name in ("categories", "category_edit")},
    "observability:rules": set(),
}
SIGN_IN_PAGES = {"console:login", "console:logout", "console:oidc_start", "console:oidc_callback"}


# --- the worlds -----------------------------------------------------------------------------------


@dataclass
class Walk:
    acme: Acme  # the attackers: a member of acme in every role, and an initrode developer
    victim: FullTenant
    intern: Any  # a second developer of the victim's team, who does not own the victim's key
    platform_key: str


@pytest.fixture
def walk(db: None, settings: Any) -> Walk:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return build_walk()


def build_walk() -> Walk:
    """The attackers (acme, initrode), the victim, and the platform objects the API names."""
    # Platform objects the management API's platform operations name.
    provider = routing.provider_upsert(
        name="walk-provider",
        kind="openai",
        base_url="http://127.0.0.1:9/v1",
        credential="x",
        region="us",
    )
    deployment = routing.deployment_upsert(
        name="walk-deployment",
        provider=provider,
        upstream_model="walk-model",
        input_price_per_mtok=Decimal(1),
        output_price_per_mtok=Decimal(1),
    )
    routing.route_upsert(alias="walk-route", description="", deployments=[deployment])
    TaskCategory.objects.create(name="walk-category", threshold=0.5)
    victim = build_full_tenant(slug="umbrazyx", words="Qorvath Umbra")
    assert victim.world is not None
    (intern,) = add_members(
        victim.world,
        [Member(Role.DEVELOPER, "umbrazyx-intern", "intern@umbrazyx.example", label="intern")],
    ).values()
    _, platform = admin_key_create(name="walk ops", tenant=None, created_by="t", actor=SYSTEM)
    return Walk(make_acme(), victim, intern, platform.plaintext)


# --- what must not change -------------------------------------------------------------------------

# Rows that a refused request may still write: sign-in bookkeeping and sessions.
UNWATCHED = {"sessions.session", "axes.accessattempt", "axes.accesslog", "axes.accessfailurelog"}


def _paths_to_tenant(model: type[models.Model], depth: int = 2) -> list[str]:
    """Every ORM lookup from `model` to a tenant ('tenant', 'team__tenant', 'api_key__tenant'...):
    a row belongs to the victim, or points at one of its objects, through any of them."""
    paths = ["tenant_id"] if "tenant_id" in {f.name for f in model._meta.get_fields()} else []
    for f in model._meta.get_fields():
        if not (f.is_relation and f.many_to_one and f.concrete) or f.related_model is None:
            continue
        if f.related_model is Tenant:
            paths.append(f.name)
        elif depth > 0:
            paths += [
                f"{f.name}__{inner}" for inner in _paths_to_tenant(f.related_model, depth - 1)
            ]
    return paths


def snapshot(tenant: Tenant) -> dict[str, tuple[int, str]]:
    """Per table: the count and a digest of the rows of the tenant or pointing at its objects
    (every row of platform tables)."""
    user_model = get_user_model()
    user_ids = list(tenant.memberships.values_list("user_id", flat=True))
    found: dict[str, tuple[int, str]] = {}
    for model in apps.get_models(include_auto_created=True):
        label = model._meta.label_lower
        if label in UNWATCHED or model._meta.proxy:
            continue
        rows = model._default_manager.all()
        if model is user_model:
            rows = rows.filter(pk__in=user_ids)
        elif model is Tenant:
            rows = rows.filter(pk=tenant.pk)
        else:
            paths = _paths_to_tenant(model)
            if not paths and label.startswith(("auth.", "contenttypes.", "admin.")):
                continue
            if paths:
                rows = rows.filter(reduce(operator.or_, (Q(**{p: tenant.pk}) for p in paths)))
            elif "tenant_ids" in {f.name for f in model._meta.get_fields()}:
                rows = rows.filter(tenant_ids__contains=[tenant.pk])  # who looked at the trail
        values = sorted(repr(sorted(r.items())) for r in rows.distinct().values())
        found[label] = (len(values), hashlib.sha256("\n".join(values).encode()).hexdigest())
    return found


def changed(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> list[str]:
    return sorted(label for label in before if before[label] != after.get(label))


# --- the console ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    name: str  # "namespace:name"
    pattern: URLPattern
    route: str

    @property
    def params(self) -> set[str]:
        return set(self.pattern.pattern.regex.groupindex) | (
            {"tenant_slug"} if "<slug:tenant_slug>" in self.route else set()
        )

    @property
    def names_an_object(self) -> bool:
        return bool(self.params - NOT_AN_OBJECT)


def console_pages() -> list[Page]:
    """Every URL under /console/, whichever app adds it."""
    found: list[Page] = []

    def walk(patterns: list[Any], namespace: str, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                inner = ":".join(n for n in (namespace, pattern.namespace) if n)
                walk(pattern.url_patterns, inner, route)
            elif route.startswith("console/"):
                found.append(Page(f"{namespace}:{pattern.name}", pattern, route))

    walk(get_resolver().url_patterns, "", "")
    return found


def tenant_pages() -> list[Page]:
    return [p for p in console_pages() if "tenant_slug" in p.params]


def console_url(page: Page, values: dict[str, Any], tenant_slug: str) -> str:
    missing = page.params - set(values)
    if missing:
        raise AssertionError(
            f"{page.name}: no value for {sorted(missing)}; add it to FullTenant.path_values"
        )
    kwargs = {p: values[p] for p in page.params}
    kwargs["tenant_slug"] = tenant_slug
    return reverse(page.name, kwargs=kwargs)


def console_form(victim: FullTenant) -> dict[str, Any]:
    """A POST body for any console form, each field that picks an object picking the victim's."""
    return {
        "team": victim.team.pk,
        "teams": [victim.team.pk],
        "api_key": victim.key.pk,
        "key": victim.key.pk,
        "holder": f"team:{victim.team.pk}",
        "scope": "team",
        "name": "walk-made",
        "slug": "walk-made",
        "username": "walk-made-user",
        "email": "walk@walk.example",
        "role": "developer",
        "version": 1,
        "label": "production",
        "requests_per_minute": 5,
        "amount_usd": "1",
        "period": "month",
        "timezone": "UTC",
        "grace_seconds": 0,
        "system": "walk",
        "message": "walk",
        "model": "walk-route",
        "next": "/console/",
        "show_owner": "1",
    }


Outcome = Callable[[Page, Any], str | None]


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    tried: int = 0

    def check(self, condition: bool, what: str) -> None:
        if not condition:
            self.problems.append(what)

    def assert_none(self, least: int) -> None:
        assert self.tried >= least, f"only {self.tried} requests: the walk lost its way"
        assert not self.problems, "\n".join([f"{len(self.problems)} doors open:", *self.problems])


def body_text(response: Any) -> str:
    if not response.streaming:
        return response.content.decode(errors="replace")
    if response.is_async:

        async def gather() -> bytes:
            return b"".join([chunk async for chunk in response.streaming_content])

        return async_to_sync(gather)().decode(errors="replace")
    return b"".join(response.streaming_content).decode(errors="replace")


def leaked(victim: FullTenant, response: Any, *, sent: str, viewer: Any = None) -> list[str]:
    """The victim's values in the response, except those the caller sent (a 404 may echo the
    URL it was asked for); a member `viewer` may see their tenant and themself."""
    text = body_text(response) + " ".join(str(v) for v in response.headers.values())
    secrets = [s for s in victim.secrets() if s not in sent]
    if viewer is not None:
        for known in (victim.tenant.name, viewer.username, viewer.email):
            text = text.replace(known, "")
        secrets = [s for s in secrets if s != victim.tenant.slug]
    return [s for s in secrets if s in text]


def console_attempts(
    client: Client,
    pages: list[Page],
    urls: Callable[[Page], str],
    walk: Walk,
    findings: Findings,
    who: str,
    expect: Callable[[Page, str], set[int] | None],
    viewer: Any = None,
) -> None:
    """Every page with GET, HTMX GET and POST; `expect` gives the acceptable statuses (None: any)."""
    form = console_form(walk.victim)
    for page in pages:
        url = urls(page)
        for method, headers in (("GET", {}), ("GET", {"HTTP_HX_REQUEST": "true"}), ("POST", {})):
            with transaction.atomic():  # each attempt starts from the same world
                before = snapshot(walk.victim.tenant) if method in STATE_CHANGING else None
                if method == "POST":
                    response = client.post(url, form, **headers)
                else:
                    response = client.get(url, **headers)
                after = snapshot(walk.victim.tenant) if before is not None else None
                transaction.set_rollback(True)
            findings.tried += 1
            where = f"{who} {method}{' (htmx)' if headers else ''} {url}"
            statuses = expect(page, method)
            if statuses is not None:
                findings.check(
                    response.status_code in statuses,
                    f"{where}: {response.status_code}, expected {sorted(statuses)}",
                )
                secrets = leaked(walk.victim, response, sent=url, viewer=viewer)
                findings.check(not secrets, f"{where}: shows {secrets}")
            if before is not None and after is not None:
                diff = changed(before, after)
                findings.check(not diff, f"{where}: changed {diff}")


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_every_console_url_has_an_expected_audience() -> None:
    names = {page.name for page in tenant_pages()}
    assert len(names) > 30
    assert names - set(EXPECTED_ROLES) == set(), "say who may open these pages"
    assert set(EXPECTED_ROLES) - names == set(), "these pages are gone: drop them here"
    others = {page.name for page in console_pages()} - names
    assert others == SIGN_IN_PAGES | {"console:home"}


def test_it_refuses_members_of_another_tenant_at_every_console_url(walk: Walk) -> None:
    findings = Findings()
    values = walk.victim.path_values()
    pages = tenant_pages()
    attackers = {**walk.acme.users}
    attackers.pop(Role.PLATFORM_ADMIN)
    for who, user in attackers.items():
        console_attempts(
            signed_in(user),
            pages,
            lambda page: console_url(page, values, walk.victim.tenant.slug),
            walk,
            findings,
            who,
            # 405: a view that takes only POST refuses GET the same for every tenant.
            lambda page, method: {404, 405},
        )
    findings.assert_none(least=len(pages) * 3 * len(attackers))


def test_it_refuses_another_tenants_objects_named_under_ones_own_tenant(walk: Walk) -> None:
    """Acme's members, at acme's URLs, with the victim's ids and names in the path and the form."""
    findings = Findings()
    values = walk.victim.path_values()
    pages = tenant_pages()
    for role in (ADMIN, DEV, COMPLIANCE, FINANCE):

        def expect(page: Page, method: str, role: str = role) -> set[int] | None:
            if not page.names_an_object:
                return {200, 201, 302, 400, 403, 404, 405}  # acme's own page: only no leak
            return {404, 405} if role in EXPECTED_ROLES[page.name] else {403, 404, 405}

        console_attempts(
            signed_in(walk.acme.users[role]),
            pages,
            lambda page: console_url(page, values, walk.acme.tenant.slug),
            walk,
            findings,
            f"acme {role}",
            expect,
        )
    findings.assert_none(least=len(pages) * 3 * 4)


def test_it_refuses_each_role_the_pages_it_does_not_hold(walk: Walk) -> None:
    """The victim's own members: a page outside their role is 403, and shows and changes nothing."""
    findings = Findings()
    values = walk.victim.path_values()
    pages = tenant_pages()
    for role, user in walk.victim.users.items():

        def expect(page: Page, method: str, role: str = role) -> set[int] | None:
            return None if role in EXPECTED_ROLES[page.name] else {403, 405}

        refused = [p for p in pages if role not in EXPECTED_ROLES[p.name]]
        console_attempts(
            signed_in(user),
            refused,
            lambda page: console_url(page, values, walk.victim.tenant.slug),
            walk,
            findings,
            f"victim {role}",
            expect,
            viewer=user,
        )
    findings.assert_none(least=20)


def test_it_refuses_a_developer_the_keys_of_another_developer(walk: Walk) -> None:
    findings = Findings()
    values = walk.victim.path_values()
    pages = [p for p in tenant_pages() if "key_id" in p.params]
    assert pages
    console_attempts(
        signed_in(walk.intern),
        pages,
        lambda page: console_url(page, values, walk.victim.tenant.slug),
        walk,
        findings,
        "intern",
        lambda page, method: {404, 405},
        viewer=walk.intern,  # a member: the frame of a 404 page shows their own tenant
    )
    findings.assert_none(least=len(pages) * 3)
    walk.victim.key.refresh_from_db()
    assert walk.victim.key.revoked_at is None


def test_it_sends_an_anonymous_visitor_to_sign_in_from_every_console_url(walk: Walk) -> None:
    findings = Findings()
    values = walk.victim.path_values()
    for page in console_pages():
        if page.name in SIGN_IN_PAGES:
            continue
        url = (
            console_url(page, values, walk.victim.tenant.slug)
            if "tenant_slug" in page.params
            else reverse(page.name)
        )
        for method in ("GET", "POST"):
            with transaction.atomic():
                before = snapshot(walk.victim.tenant)
                response = getattr(Client(), method.lower())(url, HTTP_HX_REQUEST="true")
                after = snapshot(walk.victim.tenant)
                transaction.set_rollback(True)
            findings.tried += 1
            where = f"anonymous {method} {url}"
            if response.status_code == 405:
                continue  # a view refusing the method before anything else
            findings.check(
                response.status_code == 302
                and response["Location"].startswith("/console/login/?next="),
                f"{where}: {response.status_code} {response.get('Location', '')}",
            )
            secrets = leaked(walk.victim, response, sent=url)
            findings.check(not secrets, f"{where}: shows {secrets}")
            findings.check(not changed(before, after), f"{where}: changed")
    findings.assert_none(least=60)


def test_it_refuses_to_adopt_another_tenants_user_by_adding_a_member(walk: Walk) -> None:
    """A tenant admin naming the victim's user on the members form must not take the account."""
    target = walk.victim.users[Role.COMPLIANCE]
    password_before = target.password
    client = signed_in(walk.acme.users[ADMIN])
    url = reverse("console:admin_members", kwargs={"tenant_slug": walk.acme.tenant.slug})
    client.post(
        url,
        {
            "username": target.username,
            "email": "attacker@acme.example",
            "role": "developer",
            "password": "attacker chosen password 1",
        },
    )
    target.refresh_from_db()
    assert target.email == f"compliance.{walk.victim.tenant.slug}@{walk.victim.tenant.slug}.example"
    assert target.password == password_before
    assert not target.memberships.filter(tenant=walk.acme.tenant).exists()


# --- the management API ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as in the schema, under /api/v1
    params: tuple[str, ...]  # path parameters
    body_schema: dict[str, Any] | None

    @property
    def is_tenant_path(self) -> bool:
        return "{slug}" in self.path


def api_operations() -> list[Operation]:
    schema = management_api.get_openapi_schema()
    found = []
    for path, item in schema["paths"].items():
        for method, op in item.items():
            body = op.get("requestBody")
            found.append(
                Operation(
                    method=method.upper(),
                    path=path.removeprefix("/api/v1"),
                    params=tuple(p["name"] for p in op.get("parameters", []) if p["in"] == "path"),
                    body_schema=body["content"]["application/json"]["schema"] if body else None,
                )
            )
    return found


def _components() -> dict[str, Any]:
    return management_api.get_openapi_schema()["components"]["schemas"]


def api_path_values(op: Operation, victim: FullTenant) -> dict[str, Any]:
    """The victim's objects for tenant paths; existing platform objects for platform paths."""
    values = dict(victim.path_values())
    if op.path.startswith("/admin-keys"):
        values["key_id"] = victim.admin_key.pk
    platform = {
        "/providers": "walk-provider",
        "/deployments": "walk-deployment",
        "/task-categories": "walk-category",
    }
    for prefix, name in platform.items():
        if op.path.startswith(prefix):
            values["name"] = name
    values["alias"] = "walk-route"
    return values


def api_path(op: Operation, values: dict[str, Any], *, slug: str | None = None) -> str:
    path = op.path
    for param in op.params:
        if param not in values:
            raise AssertionError(f"{op.method} {op.path}: no value for {{{param}}}")
        value = slug if (param == "slug" and slug) else values[param]
        path = path.replace("{" + param + "}", str(value))
    return path


def body_overrides(victim: FullTenant) -> dict[str, Any]:
    """Fields that name an object take the victim's; the rest get what the schema accepts."""
    return {
        "team": victim.team.slug,
        "teams": [victim.team.slug],
        "tenant": victim.tenant.slug,
        "owner": victim.users[Role.DEVELOPER].username,
        "key_id": victim.key.pk,
        "scope": "team",
        "role": "developer",
        "MessageIn.role": "system",
        "provider": "walk-provider",
        "deployment": "walk-deployment",
        "version": 1,
        "amount_usd": "1",
        "base_url": "https://walk.example/v1",
        "url": "https://walk.example/mcp",
        "credential": "sk-walk",  # a provider moved to another host needs its credential again
        "slug": "walk-made",
        "name": "walk-made",
        "timezone": "UTC",
        "period": "month",
    }


_SCOPE_TARGET = {"tenant": "", "team": "team", "key": "key_id"}


def body_from_schema(schema: dict[str, Any], overrides: dict[str, Any], title: str = "") -> Any:
    """A small valid instance of an OpenAPI schema: required fields, plus fields we override."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return body_from_schema(_components()[name], overrides, name)
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return body_from_schema(options[0], overrides, title)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        required = set(schema.get("required", []))
        body = {}
        for prop, sub in schema["properties"].items():
            specific = f"{title}.{prop}"
            if specific in overrides:
                body[prop] = overrides[specific]
            elif prop in overrides:
                body[prop] = overrides[prop]
            elif prop in required:
                body[prop] = body_from_schema(sub, overrides)
        # A rule names only its scope's target: the API refuses a team or key its scope ignores.
        if body.get("scope") in _SCOPE_TARGET:
            for target in {"team", "key_id"} - {_SCOPE_TARGET[body["scope"]]}:
                body.pop(target, None)
        return body
    if kind == "object":
        return {}
    if kind == "array":
        return [body_from_schema(schema.get("items", {}), overrides)]
    if kind == "integer" or kind == "number":
        return 1
    if kind == "boolean":
        return False
    if schema.get("format") == "date-time":
        return "2099-01-01T00:00:00Z"
    return "walk-value"


def api_body(op: Operation, victim: FullTenant) -> Any:
    if op.body_schema is None:
        return {} if op.method in STATE_CHANGING else None
    return body_from_schema(op.body_schema, body_overrides(victim))


def references_victim(op: Operation, body: Any, victim: FullTenant) -> bool:
    """Whether the request names one of the victim's objects, in its path or in its body."""
    names = {victim.team.slug, victim.tenant.slug, victim.users[Role.DEVELOPER].username}
    in_body = any(f'"{name}"' in json.dumps(body) for name in names) or (
        isinstance(body, dict) and body.get("key_id") == victim.key.pk
    )
    return bool(set(op.params) - NOT_AN_OBJECT) or in_body


def api_call(key: str | None, method: str, path: str, body: Any) -> Any:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs.update(data=body, content_type="application/json")
    return getattr(Client(), method.lower())("/api/v1" + path, **kwargs)


def api_attempts(
    walk: Walk,
    findings: Findings,
    who: str,
    key: str | None,
    expect: Callable[[Operation], set[int] | None],
    slug: str | None = None,
    rightful: bool = False,  # the owner's own call: may see and change its data
) -> None:
    for op in api_operations():
        statuses = expect(op)
        if statuses is None:
            continue
        values = api_path_values(op, walk.victim)
        body = api_body(op, walk.victim)
        path = api_path(op, values, slug=slug)
        with transaction.atomic():  # each attempt starts from the same world
            before = snapshot(walk.victim.tenant) if op.method in STATE_CHANGING else None
            response = api_call(key, op.method, path, body)
            after = snapshot(walk.victim.tenant) if before is not None else None
            transaction.set_rollback(True)
        findings.tried += 1
        where = f"{who} {op.method} {op.path}"
        findings.check(
            response.status_code in statuses,
            f"{where}: {response.status_code} {body_text(response)[:200]!r}, "
            f"expected {sorted(statuses)}",
        )
        if response.status_code >= 400:
            findings.check(
                set(response.json()) == {"error"}, f"{where}: not an ApiError: {response.content}"
            )
        if rightful:
            continue
        secrets = leaked(walk.victim, response, sent=f"{key} {path} {json.dumps(body)}")
        findings.check(not secrets, f"{where}: shows {secrets}")
        if before is not None and after is not None:
            diff = changed(before, after)
            findings.check(not diff, f"{where}: changed {diff}")


def test_the_walk_reaches_every_api_operation_as_its_rightful_caller(walk: Walk) -> None:
    """The control: with a platform key the walk's requests are accepted, so the refusals below
    come from the access checks, not from a body the API would refuse from anyone."""
    findings = Findings()
    api_attempts(
        walk, findings, "platform", walk.platform_key, lambda op: {200, 201, 204}, rightful=True
    )
    findings.assert_none(least=50)


def test_it_refuses_another_tenants_admin_key_on_every_api_operation(walk: Walk) -> None:
    _, acme_admin = admin_key_create(
        name="acme ops", tenant=walk.acme.tenant, created_by="t", actor=SYSTEM
    )
    findings = Findings()

    def expect(op: Operation) -> set[int]:
        if op.is_tenant_path:
            # 403: a platform operation refuses every tenant key before looking the slug up.
            return {403, 404}
        # Platform operations are 403; listings answer with the caller's own things only.
        return {200, 403} if op.method == "GET" else {403, 404}

    api_attempts(walk, findings, "acme admin key", acme_admin.plaintext, expect)
    findings.assert_none(least=50)


def test_it_refuses_another_tenants_objects_named_under_ones_own_tenant_in_the_api(
    walk: Walk,
) -> None:
    _, acme_admin = admin_key_create(
        name="acme ops", tenant=walk.acme.tenant, created_by="t", actor=SYSTEM
    )
    findings = Findings()

    def expect(op: Operation) -> set[int] | None:
        if not op.is_tenant_path or not references_victim(
            op, api_body(op, walk.victim), walk.victim
        ):
            return None
        # 422: a body naming the victim's team is invalid for acme; 403: a username of theirs.
        return {403, 404, 422}

    api_attempts(
        walk, findings, "acme admin key", acme_admin.plaintext, expect, slug=walk.acme.tenant.slug
    )
    findings.assert_none(least=15)


# Body fields that name an object, and the rule scope under which the field is the one used.
REFERENCES = {"team": "team", "teams": None, "tenant": None, "owner": None, "key_id": "key"}


def test_it_refuses_a_body_naming_one_object_of_another_tenant(walk: Walk) -> None:
    """Acme's key, acme's path and acme's objects in the body, except one field that names the
    victim's: each such field is checked on its own (not hidden behind an earlier refusal)."""
    _, acme_admin = admin_key_create(
        name="acme ops", tenant=walk.acme.tenant, created_by="t", actor=SYSTEM
    )
    acme, victim = walk.acme, walk.victim
    own_values = {
        "slug": acme.tenant.slug,
        "team": acme.team.slug,
        "key_id": acme.key.pk,
        "username": acme.users[DEV].username,
    }
    own = {
        "team": acme.team.slug,
        "teams": [acme.team.slug],
        "tenant": acme.tenant.slug,
        "owner": acme.users[DEV].username,
        "key_id": acme.key.pk,
    }
    theirs = body_overrides(victim)
    findings = Findings()
    for op in api_operations():
        if op.body_schema is None or not op.is_tenant_path or set(op.params) - set(own_values):
            continue
        name = op.body_schema["$ref"].rsplit("/", 1)[-1]
        fields = set(_components()[name].get("properties", {})) & set(REFERENCES)
        for ref in sorted(fields):
            overrides = {**theirs, **own, ref: theirs[ref]}
            if REFERENCES[ref]:
                overrides["scope"] = REFERENCES[ref]
            body = body_from_schema(op.body_schema, overrides)
            path = api_path(op, own_values)
            with transaction.atomic():
                before = snapshot(victim.tenant)
                response = api_call(acme_admin.plaintext, op.method, path, body)
                after = snapshot(victim.tenant)
                transaction.set_rollback(True)
            findings.tried += 1
            where = f"{op.method} {op.path} with their {ref}"
            findings.check(
                response.status_code in {403, 404, 422},
                f"{where}: {response.status_code} {body_text(response)[:200]!r}",
            )
            secrets = leaked(victim, response, sent=json.dumps(body))
            findings.check(not secrets, f"{where}: shows {secrets}")
            findings.check(not changed(before, after), f"{where}: changed {changed(before, after)}")
    findings.assert_none(least=6)


def test_it_keeps_platform_operations_from_a_tenant_admin_key(walk: Walk) -> None:
    """The victim's own tenant key: the lower role of the API; platform operations are 403."""
    findings = Findings()

    def expect(op: Operation) -> set[int] | None:
        if op.is_tenant_path or op.path.startswith("/admin-keys") or op.path == "/tenants":
            return None if op.method == "GET" else ({403} if op.path == "/tenants" else None)
        return {403}

    api_attempts(walk, findings, "victim admin key", walk.victim.admin_key_plaintext, expect)
    findings.assert_none(least=10)


@pytest.mark.parametrize("who", ["nobody", "proxy key", "made up", "revoked"])
def test_it_refuses_every_api_operation_without_a_live_admin_key(walk: Walk, who: str) -> None:
    if who == "revoked":
        api_call(walk.platform_key, "POST", f"/admin-keys/{walk.victim.admin_key.pk}/revoke", {})
    key = {
        "nobody": None,
        "proxy key": walk.victim.key_plaintext,
        "made up": "gwa-" + "x" * 43,
        "revoked": walk.victim.admin_key_plaintext,
    }[who]
    findings = Findings()
    api_attempts(walk, findings, who, key, lambda op: {401})
    findings.assert_none(least=50)


def test_every_console_url_and_api_operation_is_walked() -> None:
    """The walk cannot quietly lose pages: it finds as many as the resolver and the schema hold."""
    schema_ops = sum(len(item) for item in management_api.get_openapi_schema()["paths"].values())
    assert len(api_operations()) == schema_ops >= 50
    console = [p for p in get_resolver().reverse_dict if isinstance(p, str)]
    assert console  # the resolver is populated
    assert len(tenant_pages()) == len(EXPECTED_ROLES)
