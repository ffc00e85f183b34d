"""Hostile or absurd input gets a 4xx in the answering API's own format, never a 500.

The inputs a scanner throws first: page numbers of 1e9, ids past bigint, budgets of 1e308 or
NaN, names longer than their column, NUL characters (PostgreSQL refuses them in text), and bodies
that are not JSON. Management API: its `{"error": {"code", "message", "fields"}}` JSON. Console:
the form shown again with its errors, or the console's own styled 400/404 page. Proxy (/v1): an
OpenAI-format error.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client

from audit.activity.services import SYSTEM
from gateway_site.api.services import admin_key_create
from tenants.models import Role
from tests.console.conftest import Acme, make_acme
from tests.management.conftest import Side, build_side

pytestmark = pytest.mark.django_db

BIG = [2**63, 10**30]
HUGE_PAGES = ["1e9", "abc", "-1", "99999999999999999999", "\x00"]
NUL = "bad\x00name"
LONG = "u" * 300


# --- management API (/api/v1) ------------------------------------------------------------------


@pytest.fixture
def ours(db: None) -> Side:
    return build_side("hooli", "Hooli")


@pytest.fixture
def platform_key(db: None) -> str:
    _, material = admin_key_create(name="ops", tenant=None, created_by="test", actor=SYSTEM)
    return material.plaintext


def _api(key: str, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
    client = Client(raise_request_exception=False)
    kwargs: dict[str, Any] = {"headers": {"authorization": f"Bearer {key}"}}
    if raw is not None:
        kwargs.update(data=raw, content_type="application/json")
    elif body is not None:
        kwargs.update(data=body, content_type="application/json")
    return getattr(client, method.lower())("/api/v1" + path, **kwargs)


def assert_api_refusal(response: Any, *, field: str | None = None) -> dict[str, Any]:
    """A 4xx in the management API's own format (never a 500, never Django's HTML)."""
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}, error
    assert isinstance(error["message"], str) and error["message"]
    if field is not None:
        assert field in {f["field"] for f in error["fields"]} | {""} or field in error["message"], (
            error
        )
    return error


def _s(side: Side) -> str:
    return side.tenant.slug


# (label, method, path template, body) — {slug}, {key}, {limit}, {budget} filled from `ours`.
API_TENANT_CASES: list[tuple[str, str, str, Any]] = [
    *[("huge offset", "GET", f"/tenants/{{slug}}/keys?offset={p}", None) for p in HUGE_PAGES],
    *[("huge limit", "GET", f"/tenants/{{slug}}/keys?limit={p}", None) for p in HUGE_PAGES],
    *[("key id past bigint", "GET", f"/tenants/{{slug}}/keys/{n}", None) for n in BIG],
    *[("key id past bigint", "PATCH", f"/tenants/{{slug}}/keys/{n}", {}) for n in BIG],
    *[("revoke id past bigint", "POST", f"/tenants/{{slug}}/keys/{n}/revoke", {}) for n in BIG],
    *[("limit id past bigint", "DELETE", f"/tenants/{{slug}}/limits/{n}", None) for n in BIG],
    *[("budget id past bigint", "DELETE", f"/tenants/{{slug}}/budgets/{n}", None) for n in BIG],
    *[("admin key id past bigint", "POST", f"/admin-keys/{n}/revoke", {}) for n in BIG],
    ("negative key id", "GET", "/tenants/{slug}/keys/-1", None),
    *[
        ("rate limit past int", "POST", "/tenants/{slug}/limits", {"scope": "tenant", f: n})
        for n in BIG
        for f in ("requests_per_minute", "tokens_per_minute", "max_concurrent")
    ],
    *[
        ("key scope past bigint", "POST", "/tenants/{slug}/limits", {"scope": "key", "key_id": n})
        for n in BIG
    ],
    (
        "budget of 1e308",
        "POST",
        "/tenants/{slug}/budgets",
        {"scope": "tenant", "amount_usd": 1e308},
    ),
    (
        "budget of 1e308 as text",
        "POST",
        "/tenants/{slug}/budgets",
        {"scope": "tenant", "amount_usd": "1e308"},
    ),
    *[
        (
            "budget not finite",
            "POST",
            "/tenants/{slug}/budgets",
            {"scope": "tenant", "amount_usd": v},
        )
        for v in ("NaN", "Infinity", "-Infinity", "sNaN")
    ],
    (
        "budget with too many decimals",
        "POST",
        "/tenants/{slug}/budgets",
        {"scope": "tenant", "amount_usd": "0.000000000001"},
    ),
    (
        "cost ceiling of 1e308",
        "PUT",
        "/tenants/{slug}/quota-policy",
        {"max_request_cost_usd": "1e308"},
    ),
    (
        "default max tokens past int",
        "PUT",
        "/tenants/{slug}/quota-policy",
        {"default_max_tokens": 2**63},
    ),
    (
        "300-character member",
        "POST",
        "/tenants/{slug}/members",
        {"username": LONG, "role": "developer"},
    ),
    (
        "NUL in member username",
        "POST",
        "/tenants/{slug}/members",
        {"username": NUL, "role": "developer"},
    ),
    (
        "NUL in member path",
        "PATCH",
        f"/tenants/{{slug}}/members/{quote(NUL)}",
        {"role": "developer"},
    ),
    ("NUL in member get", "GET", f"/tenants/{{slug}}/members/{quote(NUL)}", None),
    ("NUL in member delete", "DELETE", f"/tenants/{{slug}}/members/{quote(NUL)}", None),
    (
        "NUL in member email",
        "POST",
        "/tenants/{slug}/members",
        {"username": "fresh", "role": "developer", "email": NUL},
    ),
    (
        "long member email",
        "POST",
        "/tenants/{slug}/members",
        {"username": "fresh", "role": "developer", "email": "e" * 300},
    ),
    (
        "NUL in member password",
        "POST",
        "/tenants/{slug}/members",
        {"username": "fresh", "role": "developer", "password": NUL * 3},
    ),
    ("NUL in tenant slug path", "GET", f"/tenants/{quote(NUL)}", None),
    ("NUL in tenant slug path (keys)", "GET", f"/tenants/{quote(NUL)}/keys", None),
    ("NUL in team path", "GET", f"/tenants/{{slug}}/teams/{quote(NUL)}", None),
    ("NUL in team filter", "GET", f"/tenants/{{slug}}/keys?team={quote(NUL)}", None),
    ("NUL in activity filter", "GET", f"/tenants/{{slug}}/activity?action={quote(NUL)}", None),
    ("NUL in tenant name", "PATCH", "/tenants/{slug}", {"name": NUL}),
    ("NUL in allowed models", "PATCH", "/tenants/{slug}", {"allowed_models": [NUL]}),
    ("NUL in team name", "POST", "/tenants/{slug}/teams", {"slug": "t1", "name": NUL}),
    (
        "NUL in team models",
        "POST",
        "/tenants/{slug}/teams",
        {"slug": "t1", "name": "T", "allowed_models": [NUL]},
    ),
    (
        "NUL in team pins",
        "POST",
        "/tenants/{slug}/teams",
        {"slug": "t1", "name": "T", "model_pins": {NUL: NUL}},
    ),
    ("NUL in key name", "POST", "/tenants/{slug}/keys", {"team": "hooli-research", "name": NUL}),
    ("NUL in key team", "POST", "/tenants/{slug}/keys", {"team": NUL, "name": "k"}),
    (
        "NUL in key owner",
        "POST",
        "/tenants/{slug}/keys",
        {"team": "hooli-research", "name": "k", "owner": NUL},
    ),
    (
        "long key owner",
        "POST",
        "/tenants/{slug}/keys",
        {"team": "hooli-research", "name": "k", "owner": LONG},
    ),
    (
        "NUL in budget timezone",
        "POST",
        "/tenants/{slug}/budgets",
        {"scope": "tenant", "amount_usd": 1, "timezone": NUL},
    ),
    (
        "NUL in rule team",
        "POST",
        "/tenants/{slug}/limits",
        {"scope": "team", "team": NUL, "requests_per_minute": 1},
    ),
    (
        "NUL in rule end user",
        "POST",
        "/tenants/{slug}/limits",
        {"scope": "user", "end_user": NUL, "requests_per_minute": 1},
    ),
    ("NUL in downgrade route", "PUT", "/tenants/{slug}/quota-policy", {"downgrade_route": NUL}),
    ("long downgrade route", "PUT", "/tenants/{slug}/quota-policy", {"downgrade_route": LONG}),
    ("NUL in admin key name", "POST", "/admin-keys", {"name": NUL, "tenant": "hooli"}),
    ("NUL in admin key tenant", "POST", "/admin-keys", {"name": "n", "tenant": NUL}),
    ("NUL in prompt name", "POST", "/tenants/{slug}/prompts", {"name": NUL}),
    ("long prompt name", "POST", "/tenants/{slug}/prompts", {"name": LONG}),
    ("NUL in prompt path", "GET", f"/tenants/{{slug}}/prompts/{quote(NUL)}", None),
    (
        "NUL in prompt description",
        "POST",
        "/tenants/{slug}/prompts",
        {"name": "p1", "description": NUL},
    ),
    *[
        ("prompt version past bigint", "GET", f"/tenants/{{slug}}/prompts/p/versions/{n}", None)
        for n in BIG
    ],
    (
        "rotate grace past int",
        "POST",
        "/tenants/{slug}/keys/{key}/rotate",
        {"grace_seconds": 10**30},
    ),
    (
        "expiry year 10000",
        "PATCH",
        "/tenants/{slug}/keys/{key}",
        {"expires_at": "10000-01-01T00:00:00Z"},
    ),
    ("not JSON", "POST", "/tenants/{slug}/teams", b"{not json"),
    ("JSON array", "POST", "/tenants/{slug}/teams", b"[1, 2]"),
    ("JSON string", "POST", "/tenants/{slug}/teams", b'"x"'),
    (
        "JSON NaN literal",
        "POST",
        "/tenants/{slug}/budgets",
        b'{"scope": "tenant", "amount_usd": NaN}',
    ),
    ("invalid UTF-8", "POST", "/tenants/{slug}/teams", b'{"slug": "\xff\xfe", "name": "x"}'),
    ("deeply nested JSON", "POST", "/tenants/{slug}/teams", b"[" * 100_000 + b"]" * 100_000),
]

API_PLATFORM_CASES: list[tuple[str, str, str, Any]] = [
    (
        "NUL in provider path",
        "PUT",
        f"/providers/{quote(NUL)}",
        {"kind": "openai", "base_url": "http://x"},
    ),
    ("NUL in provider get", "GET", f"/providers/{quote(NUL)}", None),
    (
        "NUL in provider URL",
        "PUT",
        "/providers/p1",
        {"kind": "openai", "base_url": "http://" + NUL},
    ),
    (
        "NUL in provider credential",
        "PUT",
        "/providers/p1",
        {"kind": "openai", "base_url": "http://x", "credential": NUL},
    ),
    (
        "NUL in provider region",
        "PUT",
        "/providers/p1",
        {"kind": "openai", "base_url": "http://x", "region": NUL},
    ),
    *[
        (
            "provider rpm past int",
            "PUT",
            "/providers/p1",
            {"kind": "openai", "base_url": "http://x", "requests_per_minute": n},
        )
        for n in BIG
    ],
    (
        "NUL in deployment provider",
        "PUT",
        "/deployments/d1",
        {"provider": NUL, "upstream_model": "m"},
    ),
    ("NUL in deployment model", "PUT", "/deployments/d1", {"provider": "p", "upstream_model": NUL}),
    ("NUL in deployment path", "GET", f"/deployments/{quote(NUL)}", None),
    (
        "price of 1e308",
        "PUT",
        "/deployments/d1",
        {"provider": "p", "upstream_model": "m", "input_price_per_mtok": "1e308"},
    ),
    (
        "price of NaN",
        "PUT",
        "/deployments/d1",
        {"provider": "p", "upstream_model": "m", "input_price_per_mtok": "NaN"},
    ),
    ("NUL in route path", "PUT", f"/routes/{quote(NUL)}", {"targets": [{"deployment": "d"}]}),
    ("long route alias", "PUT", f"/routes/{LONG}", {"targets": [{"deployment": "d"}]}),
    ("NUL in route target", "PUT", "/routes/r1", {"targets": [{"deployment": NUL}]}),
    (
        "route weight past int",
        "PUT",
        "/routes/r1",
        {"targets": [{"deployment": "d", "weight": 2**63}]},
    ),
    (
        "route timeout of 1e308",
        "PUT",
        "/routes/r1",
        {"timeout_seconds": 1e308, "targets": [{"deployment": "d"}]},
    ),
    ("NUL in tenant slug", "POST", "/tenants", {"slug": "ok", "name": NUL}),
    ("NUL in residency", "POST", "/tenants", {"slug": "ok", "name": "ok", "residency_region": NUL}),
    ("NUL in category path", "PUT", f"/task-categories/{quote(NUL)}", {"threshold": 0.5}),
    ("long category name", "PUT", f"/task-categories/{LONG}", {"threshold": 0.5}),
    ("NUL in category pattern", "PUT", "/task-categories/c1", {"threshold": 0.5, "pattern": NUL}),
    ("NUL in category scores", "GET", f"/task-categories/{quote(NUL)}/scores", None),
    *[("huge page (platform)", "GET", f"/activity?offset={p}", None) for p in HUGE_PAGES],
]


@pytest.mark.parametrize(
    ("label", "method", "path", "body"), API_TENANT_CASES, ids=[c[0] for c in API_TENANT_CASES]
)
def test_it_refuses_bad_input_on_the_management_api_in_its_own_format(
    ours: Side, label: str, method: str, path: str, body: Any
) -> None:
    url = path.format(slug=_s(ours), key=ours.key.pk, limit=ours.limit_id, budget=ours.budget_id)
    raw = body if isinstance(body, bytes) else None
    response = _api(ours.admin_key, method, url, None if raw else body, raw)

    assert_api_refusal(response)


@pytest.mark.parametrize(
    ("label", "method", "path", "body"),
    API_PLATFORM_CASES,
    ids=[c[0] for c in API_PLATFORM_CASES],
)
def test_it_refuses_bad_platform_input_on_the_management_api_in_its_own_format(
    platform_key: str, label: str, method: str, path: str, body: Any
) -> None:
    assert_api_refusal(_api(platform_key, method, path, body))


def test_a_huge_but_valid_offset_is_an_empty_page(ours: Side) -> None:
    response = _api(ours.admin_key, "GET", f"/tenants/{_s(ours)}/keys?offset=1000000000")

    assert response.status_code == 200
    assert response.json()["items"] == []


def test_it_names_the_field_whose_number_overflows(ours: Side) -> None:
    response = _api(
        ours.admin_key,
        "POST",
        f"/tenants/{_s(ours)}/limits",
        {"scope": "tenant", "requests_per_minute": 2**63},
    )

    error = assert_api_refusal(response)
    assert [f["field"] for f in error["fields"]] == ["requests_per_minute"]


def test_it_names_the_field_that_holds_a_nul(ours: Side) -> None:
    response = _api(ours.admin_key, "PATCH", f"/tenants/{_s(ours)}", {"name": NUL})

    error = assert_api_refusal(response)
    assert [f["field"] for f in error["fields"]] == ["name"]
    assert "NUL" in error["message"]


def test_it_refuses_a_budget_past_what_the_column_holds_and_stores_nothing(ours: Side) -> None:
    response = _api(
        ours.admin_key,
        "POST",
        f"/tenants/{_s(ours)}/budgets",
        {"scope": "team", "team": ours.team.slug, "amount_usd": "1e308"},
    )

    error = assert_api_refusal(response)
    assert [f["field"] for f in error["fields"]] == ["amount_usd"]
    assert not ours.team.budget_set.exists() if hasattr(ours.team, "budget_set") else True


def test_it_refuses_a_username_longer_than_the_column(ours: Side) -> None:
    response = _api(
        ours.admin_key,
        "POST",
        f"/tenants/{_s(ours)}/members",
        {"username": LONG, "role": "developer"},
    )

    error = assert_api_refusal(response)
    assert [f["field"] for f in error["fields"]] == ["username"]


# --- console ----------------------------------------------------------------------------------


@pytest.fixture
def acme(db: None, settings: Any) -> Acme:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_acme()


def _console(acme: Acme, role: str = Role.PLATFORM_ADMIN) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(acme.users[role])
    return client


def assert_console_refusal(response: Any) -> None:
    """A form shown again with its errors (200/400) or a styled 4xx page: never a 500."""
    assert response.status_code < 500, (response.status_code, response.content[:300])
    if response.status_code >= 400:
        body = response.content.decode()
        assert "<html" in body.lower() and "console" in body.lower(), body[:300]


CONSOLE_GET = [
    *[f"admin/activity/?page={quote(p)}" for p in HUGE_PAGES],
    f"admin/activity/?q={quote(NUL)}",
    f"admin/activity/?action={quote(NUL)}",
    f"admin/activity.csv?q={quote(NUL)}",
    *[f"keys/{n}/" for n in BIG],
    *[f"admin/teams/{n}/" for n in BIG],
    *[f"admin/members/{n}/" for n in BIG],
    *[f"finance/teams/{n}/" for n in BIG],
    *[f"finance/teams/{n}/requests/" for n in BIG],
    f"finance/?start={quote(NUL)}",
    "finance/?period=custom&start=0001-01-01&end=9999-12-31",
    f"finance/?by={quote(NUL)}",
    "finance/teams/{team}/requests/?user=" + quote(NUL),
    f"compliance/?q={quote(NUL)}",
    f"compliance/?end_user={quote(NUL)}",
    f"compliance/?model={quote(NUL)}",
    f"compliance/?prompt_version={10**30}",
    f"compliance/?prompt_version={2**63}",
    "compliance/?min_cost=1e308",
    "compliance/?max_cost=1e308",
    "compliance/?min_cost=NaN",
    "compliance/?min_cost=Infinity",
    f"compliance/?team={10**30}",
    f"compliance/?key={2**63}",
    f"compliance/?before=2026-01-01T00:00:00|{10**30}",
    f"compliance/?before={quote(NUL)}",
    "compliance/?before=2026-13-45T00:00:00|1",
    f"compliance/?since={quote(NUL)}",
    f"compliance/records/{quote(NUL)}/",
    f"compliance/records/{'r' * 300}/",
    f"compliance/export.csv?q={quote(NUL)}",
    f"compliance/export.csv?prompt_version={10**30}",
    f"compliance/chain/?verify=1&since={quote(NUL)}",
    f"prompts/{quote(NUL)}/",
    f"prompts/{'p' * 300}/",
    *[f"prompts/p/v/{n}/" for n in BIG],
    f"prompts/p/diff/?old={10**30}&new={2**63}",
]


@pytest.mark.parametrize("path", CONSOLE_GET)
def test_it_refuses_bad_input_in_console_urls_with_a_console_page(acme: Acme, path: str) -> None:
    url = f"/console/t/{acme.tenant.slug}/" + path.replace("{team}", str(acme.team.pk))

    assert_console_refusal(_console(acme).get(url))


def _prompt(acme: Acme) -> None:
    from routing.prompts import services

    services.prompt_declare(actor=SYSTEM, tenant=acme.tenant, name="p", description="")


CONSOLE_POST: list[tuple[str, dict[str, Any]]] = [
    ("admin/teams/", {"slug": "t", "name": NUL}),
    ("admin/teams/", {"slug": "t", "name": LONG}),
    ("admin/members/", {"username": LONG, "role": "developer"}),
    ("admin/members/", {"username": NUL, "role": "developer"}),
    ("admin/members/", {"username": "ok", "email": NUL, "role": "developer"}),
    ("admin/members/", {"username": "ok", "role": "developer", "teams": [str(10**30)]}),
    ("admin/teams/{team}/", {"slug": "quants", "name": "Q", "model_pins": f"{NUL} = {NUL}"}),
    ("keys/new/", {"name": NUL, "team": "{team}"}),
    ("keys/new/", {"name": "k", "team": str(2**63)}),
    ("keys/new/", {"name": "k", "team": "{team}", "expires_in_days": "99999999999"}),
    ("keys/{key}/rotate/", {"grace_seconds": str(10**30)}),
    ("limits/rate-limits/", {"scope": "tenant", "requests_per_minute": str(2**63)}),
    ("limits/rate-limits/", {"scope": "tenant", "tokens_per_minute": str(10**30)}),
    ("limits/rate-limits/", {"scope": "tenant", "max_concurrent": str(2**31)}),
    ("limits/rate-limits/", {"scope": "key", "api_key": str(10**30), "requests_per_minute": "1"}),
    ("limits/rate-limits/", {"scope": "user", "end_user": NUL, "requests_per_minute": "1"}),
    (
        "limits/budgets/",
        {
            "scope": "tenant",
            "amount_usd": "1e308",
            "period": "month",
            "timezone": "UTC",
            "alert_thresholds_pct": "50",
        },
    ),
    (
        "limits/budgets/",
        {
            "scope": "tenant",
            "amount_usd": "NaN",
            "period": "month",
            "timezone": "UTC",
            "alert_thresholds_pct": "50",
        },
    ),
    (
        "limits/budgets/",
        {
            "scope": "tenant",
            "amount_usd": "Infinity",
            "period": "month",
            "timezone": "UTC",
            "alert_thresholds_pct": "50",
        },
    ),
    (
        "limits/budgets/",
        {
            "scope": "tenant",
            "amount_usd": "1",
            "period": "month",
            "timezone": NUL,
            "alert_thresholds_pct": "50",
        },
    ),
    (
        "limits/budgets/",
        {
            "scope": "tenant",
            "amount_usd": "1",
            "period": "month",
            "timezone": "UTC",
            "alert_thresholds_pct": str(10**30),
        },
    ),
    ("prompts/new/", {"name": NUL, "user_template": "hi"}),
    ("prompts/new/", {"name": "ok", "user_template": NUL}),
    ("prompts/new/", {"name": "ok", "user_template": "hi", "parameters": '{"x": "\\u0000"}'}),
    ("prompts/p/labels/", {"label": "prod", "version": str(10**30)}),
    ("prompts/p/labels/", {"label": "prod", "version": "1", "canary_percent": str(10**30)}),
    ("prompts/p/pins/", {"holder": f"team:{10**30}", "version": "1"}),
    (f"prompts/p/pins/{10**30}/clear/", {}),
    (f"limits/rate-limits/{2**63}/delete/", {}),
    (
        "finance/prices/",
        {"deployment": str(10**30), "input_per_mtok": "1e308", "output_per_mtok": "NaN"},
    ),
]


@pytest.mark.parametrize(
    ("path", "data"), CONSOLE_POST, ids=[f"{p} {d}"[:80] for p, d in CONSOLE_POST]
)
def test_it_refuses_bad_input_in_console_forms_without_a_server_error(
    acme: Acme, path: str, data: dict[str, Any]
) -> None:
    _prompt(acme)
    url = f"/console/t/{acme.tenant.slug}/" + path.format(team=acme.team.pk, key=acme.key.pk)
    filled = {
        k: v.replace("{team}", str(acme.team.pk)) if isinstance(v, str) else v
        for k, v in data.items()
    }

    assert_console_refusal(_console(acme).post(url, filled))


# --- proxy (/v1): headers, paths and query -----------------------------------------------------


def assert_openai_refusal(response: Any) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["type"], error


@pytest.mark.parametrize(
    "header",
    ["x-gateway-end-user", "x-gateway-feature", "x-gateway-client-id", "x-gateway-session-id"],
)
def test_it_refuses_a_nul_in_an_attribution_header(world: Any, header: str) -> None:
    client = Client(raise_request_exception=False)
    response = client.post(
        "/v1/chat/completions",
        {"model": "demo", "messages": [{"role": "user", "content": "hi"}]},
        content_type="application/json",
        headers={"authorization": f"Bearer {world.key}", header: "a\x00b"},
    )

    assert_openai_refusal(response)
    assert header in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/v1/models/{quote(NUL)}"),
        ("GET", "/v1/models?limit=" + quote(NUL)),
        ("GET", f"/v1/{quote(NUL)}"),
        ("POST", f"/v1/chat/completions?x={quote(NUL)}"),
    ],
)
def test_it_refuses_a_nul_in_a_proxy_path_or_query(world: Any, method: str, path: str) -> None:
    client = Client(raise_request_exception=False)
    response = getattr(client, method.lower())(
        path, headers={"authorization": f"Bearer {world.key}"}
    )

    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        assert_openai_refusal(response)


def test_it_refuses_a_nul_in_the_key_itself(world: Any) -> None:
    response = Client(raise_request_exception=False).get(
        "/v1/models", headers={"authorization": "Bearer gw-\x00abc"}
    )

    assert_openai_refusal(response)
    assert response.status_code == 401


# --- bodies: oversize, and what the database refuses anyway ------------------------------------


def test_it_refuses_an_oversize_body_on_the_management_api_in_its_own_format(
    ours: Side, settings: Any
) -> None:
    # The ASGI layer caps bodies before Django; past that, Django's own limit still answers here.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    body = b'{"slug": "big", "name": "' + b"x" * (2 * 1024 * 1024) + b'"}'

    response = _api(ours.admin_key, "POST", f"/tenants/{_s(ours)}/teams", raw=body)

    error = assert_api_refusal(response)
    assert response.status_code == 413 and error["code"] == "request_too_large"


def test_a_value_the_database_still_refuses_is_a_400_not_a_500(
    ours: Side, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import DataError

    from tenants import services

    def refuse(**kwargs: Any) -> None:
        raise DataError("value too long for type character varying(200)")

    monkeypatch.setattr(services, "team_create", refuse)

    response = _api(
        ours.admin_key, "POST", f"/tenants/{_s(ours)}/teams", {"slug": "t", "name": "T"}
    )

    error = assert_api_refusal(response)
    assert response.status_code == 400 and error["code"] == "invalid_value"
    assert "character varying(200)" in error["message"]


def test_the_console_shows_a_form_error_for_a_limit_past_the_column(acme: Acme) -> None:
    response = _console(acme).post(
        f"/console/t/{acme.tenant.slug}/limits/rate-limits/",
        {"scope": "tenant", "requests_per_minute": str(2**63)},
    )

    assert response.status_code in (200, 400)
    assert "less than or equal to 2147483647" in response.content.decode()


def test_the_console_answers_a_nul_in_the_address_with_its_own_400_page(acme: Acme) -> None:
    response = _console(acme).get(f"/console/t/{acme.tenant.slug}/prompts/{quote(NUL)}/")

    assert response.status_code == 400
    assert "Bad request" in response.content.decode() and "NUL" in response.content.decode()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/models"),
        ("DELETE", "/v1/models"),
        ("PUT", "/v1/models/demo"),
        ("GET", "/v1/chat/completions"),
    ],
)
def test_a_wrong_method_on_the_proxy_answers_in_openai_format(method: str, path: str) -> None:
    response = getattr(Client(raise_request_exception=False), method.lower())(path)

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_wrong_method_on_an_anthropic_endpoint_answers_in_anthropic_format() -> None:
    response = Client(raise_request_exception=False).get("/v1/messages/count_tokens")

    assert response.status_code == 405
    assert response.json()["type"] == "error" and response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/models/a%0Ab", "/v1/x%0Ay", "/api/v1/x%0Ay"])
def test_a_newline_in_an_api_path_is_that_apis_404_not_a_console_page(path: str) -> None:
    response = Client(raise_request_exception=False).get(path)

    assert response.status_code in (401, 404)
    assert response["Content-Type"].startswith("application/json")
