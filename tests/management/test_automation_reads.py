"""Audit search and export, the cost report and prompt usage through the management API: scoped
by tenant and role as the console is, the same filters failing closed, the same totals."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from django.utils import timezone

from audit.activity.services import SYSTEM
from audit.models import AuditAccess, AuditRecord
from billing.models import Granularity
from billing.rollups import rollup_window
from gateway_site.api.services import admin_key_create
from routing.prompts import services as prompt_services
from tenants.models import Role, Tenant
from tests.billing.support import record
from tests.console.conftest import Acme, make_acme
from tests.management.conftest import Api

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def acme(settings: Any) -> Acme:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_acme()


def _key(tenant: Tenant | None, role: str = "tenant_admin") -> Api:
    _, material = admin_key_create(
        name=f"{role} bot", tenant=tenant, created_by="test", actor=SYSTEM, role=role
    )
    return Api(material.plaintext)


def _body(response: Any) -> str:
    """A streamed export's text (its chunks are served asynchronously, as under ASGI)."""

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(collect)().decode()


def _day() -> datetime:
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=1) if today.day > 1 else today


def _traffic(acme: Acme) -> datetime:
    at = _day()
    AuditRecord.objects.bulk_create(
        [
            record(acme.key, at + timedelta(hours=1), cost=Decimal("1.234"), user="carol-42"),
            record(acme.key, at + timedelta(hours=2), cost=Decimal("0.5"), user="carol-42"),
            record(acme.key, at + timedelta(hours=3), cost=Decimal("2.0"), user="bo"),
            record(acme.key, at + timedelta(hours=4), cost=Decimal("0.0033"), user="dee"),
            record(acme.key, at + timedelta(hours=5), cost=Decimal("0.0033"), user="eve"),
            record(acme.key, at + timedelta(hours=6), cost=Decimal("0.0034"), user="fay"),
            record(acme.other_key, at + timedelta(hours=1), cost=Decimal("99"), user="carol-42"),
        ]
    )
    rollup_window(granularity=Granularity.DAY, start=at, end=at + timedelta(days=1))
    return at


# --- audit search and export -----------------------------------------------------------------


def test_a_compliance_key_searches_its_tenant_by_the_consoles_filters(acme: Acme) -> None:
    _traffic(acme)
    api = _key(acme.tenant, "compliance")
    page = api.get(f"/tenants/{acme.tenant.slug}/audit/records?end_user=carol-42&team=quants")
    assert page.status_code == 200, page.content
    body = page.json()
    assert [r["cost_usd"] for r in body["records"]] == ["0.5000000000", "1.2340000000"]
    assert {r["team"] for r in body["records"]} == {"quants"}  # not the other tenant's carol
    assert body["filters"]["end_user"] == "carol-42"
    access = AuditAccess.objects.filter(action="audit.search").latest("occurred_at")
    assert "compliance bot" in access.user_label and access.record_count == 2


def test_search_pages_by_cursor_and_the_pages_cover_every_record_once(acme: Acme) -> None:
    _traffic(acme)
    api = _key(acme.tenant, "compliance")
    seen: list[str] = []
    path = f"/tenants/{acme.tenant.slug}/audit/records?limit=4"
    body = api.get(path).json()
    seen += [r["request_id"] for r in body["records"]]
    assert len(seen) == 4 and body["next_cursor"]
    body = api.get(path + "&before=" + body["next_cursor"].replace("+", "%2B")).json()
    seen += [r["request_id"] for r in body["records"]]
    assert body["next_cursor"] is None
    assert len(seen) == len(set(seen)) == 6


@pytest.mark.parametrize(
    "bad",
    ["status=Success", "min_cost=abc", "since=12/06/2026", "team=nope", "key=999999999"],
)
def test_an_invalid_filter_is_refused_with_no_rows_not_widened(acme: Acme, bad: str) -> None:
    _traffic(acme)
    api = _key(acme.tenant, "compliance")
    for path in ("audit/records", "audit/export"):
        response = api.get(f"/tenants/{acme.tenant.slug}/{path}?end_user=carol-42&{bad}")
        assert response.status_code == 422, (path, response.content)
        error = response.json()["error"]
        assert error["code"] in ("invalid_filter", "validation_error")
        assert error["fields"] and "records" not in response.json()
        assert b"carol" not in response.content.replace(b"end_user", b"")


def test_a_misspelt_filter_is_refused(acme: Acme) -> None:
    api = _key(acme.tenant, "compliance")
    response = api.get(f"/tenants/{acme.tenant.slug}/audit/records?enduser=carol-42")
    assert response.status_code == 422


def test_the_export_matches_the_consoles_and_its_manifest_is_signed(acme: Acme) -> None:
    _traffic(acme)
    api = _key(acme.tenant, "compliance")
    response = api.get(f"/tenants/{acme.tenant.slug}/audit/export?format=csv&end_user=carol-42")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert sorted(r["cost_usd"] for r in rows) == ["0.5000000000", "1.2340000000"]

    console = Client()
    console.force_login(acme.users[Role.COMPLIANCE])
    url = f"/console/t/{acme.tenant.slug}/compliance/export.csv?end_user=carol-42"
    theirs = console.get(url)
    console_rows = list(csv.DictReader(io.StringIO(_body(theirs))))
    assert [r["request_id"] for r in rows] == [r["request_id"] for r in console_rows]

    export_id = response["X-Audit-Export-Id"]
    manifest = api.get(f"/tenants/{acme.tenant.slug}/audit/exports/{export_id}/manifest").json()
    assert manifest["manifest"]["row_count"] == 2
    assert manifest["manifest"]["filters"] == {"end_user": "carol-42"}
    assert manifest["manifest"]["exported_by"].startswith("admin key compliance bot")
    assert manifest["signature"]


def test_audit_reads_are_for_compliance_keys_only(acme: Acme) -> None:
    _traffic(acme)
    for role in ("tenant_admin", "finance", "developer"):
        response = _key(acme.tenant, role).get(f"/tenants/{acme.tenant.slug}/audit/records")
        assert response.status_code == 403, role
        assert response.json()["error"]["code"] == "role_not_allowed"
    assert _key(None).get(f"/tenants/{acme.tenant.slug}/audit/records").status_code == 200


def test_another_tenants_audit_is_not_found(acme: Acme) -> None:
    _traffic(acme)
    other = AuditRecord.objects.get(api_key=acme.other_key)
    api = _key(acme.tenant, "compliance")
    assert api.get(f"/tenants/{other.tenant.slug}/audit/records").status_code == 404
    assert api.get(f"/tenants/{other.tenant.slug}/audit/export").status_code == 404
    mine = f"/tenants/{acme.tenant.slug}/audit/records/{other.request_id}"
    assert api.get(mine).status_code == 404


def test_a_compliance_key_cannot_manage_the_tenant(acme: Acme) -> None:
    api = _key(acme.tenant, "compliance")
    assert api.get(f"/tenants/{acme.tenant.slug}/keys").status_code == 403
    created = api.post("/admin-keys", {"name": "escalate", "tenant": acme.tenant.slug})
    assert created.status_code == 403


# --- the cost report ---------------------------------------------------------------------------


def test_the_cost_report_equals_the_finance_page_to_the_cent(acme: Acme) -> None:
    _traffic(acme)
    api = _key(acme.tenant, "finance")
    report = api.get(f"/tenants/{acme.tenant.slug}/costs?by=user").json()
    console = Client()
    console.force_login(acme.users[Role.FINANCE])
    page = console.get(f"/console/t/{acme.tenant.slug}/finance/", {"by": "user", "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(page.content.decode())))
    assert [(r["user"], r["cost_usd"]) for r in rows] == [
        (row["label"], row["cost_usd"]) for row in report["rows"]
    ]
    shown = sum(Decimal(row["cost_usd"]) for row in report["rows"])
    assert shown == Decimal(report["total_usd"]) == Decimal("3.7440")
    assert "99" not in json.dumps(report["rows"])


def test_the_cost_report_by_team_and_for_a_custom_period(acme: Acme) -> None:
    at = _traffic(acme)
    api = _key(acme.tenant, "tenant_admin")
    day = at.date().isoformat()
    report = api.get(
        f"/tenants/{acme.tenant.slug}/costs?period=custom&start={day}&end={day}&by=team"
    ).json()
    assert [(r["label"], r["cost_usd"], r["requests"]) for r in report["rows"]] == [
        ("Quants", "3.7440", 6)
    ]
    assert report["start"] == report["end"] == day


def test_the_cost_report_by_route_adds_up_to_the_records_exactly(acme: Acme) -> None:
    """By the route asked for: the rows as shown add up to the total as shown, the exact rows to
    the exact total, and that is the sum of the tenant's records (never another tenant's)."""
    at = _day()
    spent = [
        ("advisor-chat", Decimal("1.23405")),
        ("advisor-chat", Decimal("0.00001")),
        ("demo", Decimal("0.00333")),
        ("canary-chat", Decimal("0.00333")),
        ("", Decimal("0.00334")),  # a deployment asked for by its own name
    ]
    records = [
        record(acme.key, at + timedelta(hours=i + 1), cost=cost, route=route, model="mock-gpt")
        for i, (route, cost) in enumerate(spent)
    ]
    records.append(record(acme.other_key, at + timedelta(hours=1), cost=Decimal(99), route="demo"))
    AuditRecord.objects.bulk_create(records)
    rollup_window(granularity=Granularity.DAY, start=at, end=at + timedelta(days=1))

    report = _key(acme.tenant, "finance").get(f"/tenants/{acme.tenant.slug}/costs?by=route")
    assert report.status_code == 200, report.content
    body = report.json()
    assert body["by"] == "route"
    assert [(r["label"], r["cost_usd"], r["requests"]) for r in body["rows"]] == [
        ("advisor-chat", "1.2341", 2),
        ("(no route)", "0.0034", 1),
        ("canary-chat", "0.0033", 1),
        ("demo", "0.0033", 1),
    ]
    exact_total = sum((cost for _, cost in spent), Decimal(0))
    assert Decimal(body["total_usd_exact"]) == exact_total == Decimal("1.24406")
    assert sum(Decimal(r["cost_usd_exact"]) for r in body["rows"]) == exact_total
    assert sum(Decimal(r["cost_usd"]) for r in body["rows"]) == Decimal(body["total_usd"])
    assert body["total_usd"] == "1.2441"

    # The finance page's table (its CSV) is the same rows.
    console = Client()
    console.force_login(acme.users[Role.FINANCE])
    page = console.get(f"/console/t/{acme.tenant.slug}/finance/", {"by": "route", "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(page.content.decode())))
    assert [(r["route"], r["cost_usd"]) for r in rows] == [
        (r["label"], r["cost_usd"]) for r in body["rows"]
    ]


@pytest.mark.parametrize(
    "bad", ["by=route_x", "period=custom&start=2026-13-01&end=2026-12-31", "period=someday"]
)
def test_an_invalid_cost_filter_is_refused(acme: Acme, bad: str) -> None:
    _traffic(acme)
    response = _key(acme.tenant, "finance").get(f"/tenants/{acme.tenant.slug}/costs?{bad}")
    assert response.status_code == 422
    assert "rows" not in response.json()


def test_the_cost_report_is_for_finance_and_its_own_tenant(acme: Acme) -> None:
    _traffic(acme)
    assert (
        _key(acme.tenant, "compliance").get(f"/tenants/{acme.tenant.slug}/costs").status_code == 403
    )
    other = acme.other_key.tenant.slug
    assert _key(acme.tenant, "finance").get(f"/tenants/{other}/costs").status_code == 404


# --- prompt usage ------------------------------------------------------------------------------


def test_prompt_usage_per_version(acme: Acme) -> None:
    prompt = prompt_services.prompt_create(
        tenant=acme.tenant, name="advisor", description="", actor=SYSTEM
    )
    for text in ("v1 {{x}}", "v2 {{x}}"):
        prompt_services.prompt_publish(
            prompt=prompt, messages=[{"role": "user", "content": text}], actor=SYSTEM
        )
    at = _day()
    rows = [
        record(acme.key, at, cost=Decimal("0.10")),
        record(acme.key, at, cost=Decimal("0.25"), status="upstream_error"),
        record(acme.key, at, cost=Decimal("0.05")),
    ]
    for row, version in zip(rows, (1, 1, 2), strict=True):
        row.prompt_name, row.prompt_version = "advisor", version
    AuditRecord.objects.bulk_create(rows)
    api = _key(acme.tenant, "developer")
    usage = api.get(f"/tenants/{acme.tenant.slug}/prompts/advisor/usage")
    assert usage.status_code == 200, usage.content
    by_version = {row["version"]: row for row in usage.json()}
    assert by_version[1]["requests"] == 2 and by_version[1]["errors"] == 1
    assert Decimal(by_version[1]["cost_usd"]) == Decimal("0.35")
    assert by_version[1]["prompt_tokens"] == 200 and by_version[1]["completion_tokens"] == 100
    assert by_version[2]["requests"] == 1 and by_version[2]["error_rate"] == 0.0
    assert (
        _key(acme.tenant, "finance")
        .get(f"/tenants/{acme.tenant.slug}/prompts/advisor/usage")
        .status_code
        == 403
    )
    other = acme.other_key.tenant.slug
    assert api.get(f"/tenants/{other}/prompts/advisor/usage").status_code == 404


def test_a_tenant_admin_makes_a_compliance_key_that_only_reads_the_audit(acme: Acme) -> None:
    admin = _key(acme.tenant, "tenant_admin")
    made = admin.post(
        "/admin-keys", {"name": "audit bot", "tenant": acme.tenant.slug, "role": "compliance"}
    )
    assert made.status_code == 201, made.content
    assert made.json()["role"] == "compliance"
    reader = Api(made.json()["key"])
    assert reader.get(f"/tenants/{acme.tenant.slug}/audit/records").status_code == 200
    assert reader.get(f"/tenants/{acme.tenant.slug}/teams").status_code == 403
    platform = _key(None)
    assert platform.post("/admin-keys", {"name": "x", "role": "finance"}).status_code == 422
    listed = platform.get("/admin-keys").json()["items"]
    assert {k["role"] for k in listed if k["tenant"] is None} == {None}  # platform keys
    ours = {k["role"] for k in listed if k["tenant"] == acme.tenant.slug}
    assert ours == {"tenant_admin", "compliance"}


def test_create_admin_key_takes_a_role(acme: Acme) -> None:
    from io import StringIO

    from django.core.management import call_command

    from gateway_site.api.models import AdminKey

    out = StringIO()
    call_command(
        "create_admin_key",
        "--tenant",
        acme.tenant.slug,
        "--name",
        "cli",
        "--role",
        "finance",
        stdout=out,
        stderr=StringIO(),
    )
    assert AdminKey.objects.get(name="cli").role == "finance"
    assert Api(out.getvalue().strip()).get(f"/tenants/{acme.tenant.slug}/costs").status_code == 200
