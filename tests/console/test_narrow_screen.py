"""The console on a phone: at 390 px wide no page is wider than the screen (nothing to scroll
sideways but a wide table inside its own box), and date fields read yyyy-mm-dd as their UTC labels
say, whatever the browser's locale."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import PASSWORD, People, save_screenshot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

WIDTH = 390
# GATEWAY_NARROW_SHOTS=<folder> keeps a screenshot of each page, to look at them;
# GATEWAY_SCREENSHOTS=1 refreshes the few of docs/screenshots/ named in DOC_SHOTS.
SHOTS = Path(os.environ["GATEWAY_NARROW_SHOTS"]) if os.environ.get("GATEWAY_NARROW_SHOTS") else None

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DOC_SHOTS = {
    "/console/t/acme/finance/": "30-phone-finance",
    "/console/t/acme/compliance/?status=nope": "31-phone-invalid-filter",
    "/console/t/acme/no-such-page/": "32-phone-not-found",
}

PAGES = {
    "developer": [
        "/console/t/acme/",
        "/console/t/acme/keys/",
        "/console/t/acme/quickstart/",
        "/console/t/acme/playground/",
        "/console/t/acme/requests/",
    ],
    "tenant_admin": [
        "/console/t/acme/admin/teams/",
        "/console/t/acme/admin/members/",
        "/console/t/acme/admin/keys/",
        "/console/t/acme/admin/activity/",
        "/console/t/acme/limits/",
        "/console/t/acme/prompts/",
        "/console/t/acme/guardrails/",
        "/console/t/acme/guardrails/new/?kind=injection",
    ],
    "finance": [
        "/console/t/acme/finance/",
        "/console/t/acme/finance/?by=model",
        "/console/t/acme/finance/dashboard/",
        "/console/t/acme/finance/dashboard/?window=365d&by=route",
        "/console/t/acme/finance/?period=custom&start=2026-99-01&end=x",  # with errors
        "/console/t/acme/no-such-page/",
    ],
    "compliance": [
        "/console/t/acme/compliance/",
        "/console/t/acme/compliance/?status=nope",
        "/console/t/acme/compliance/chain/",
        "/console/t/acme/guardrails/review/?status=all",
        "/console/t/acme/compliance/policy/",
        "/console/t/acme/compliance/holds/",
        "/console/t/acme/compliance/erasure/",
    ],
    "platform_admin": [
        "/console/t/acme/platform/providers/",
        "/console/t/acme/platform/providers/new/",
        "/console/t/acme/platform/providers/mock-ok/",
        "/console/t/acme/platform/deployments/",
        "/console/t/acme/platform/deployments/new/",
        "/console/t/acme/platform/deployments/mock-gpt/",
        "/console/t/acme/platform/routes/",
        "/console/t/acme/platform/routes/new/",
        "/console/t/acme/platform/routes/advisor-chat/",
        "/console/t/acme/finance/prices/",
        "/console/t/acme/routing-quality/categories/",
        "/console/t/acme/alerts/rules/",
    ],
}


@pytest.fixture(scope="module")
def officer(people: People, django_db_blocker: Any) -> str:
    from tenants import services
    from tenants.models import Tenant

    with django_db_blocker.unblock():
        services.member_apply(
            tenant=Tenant.objects.get(slug="acme"),
            username="web-cora",
            email="web-cora@example.com",
            role="compliance",
            teams=[],
            password=PASSWORD,
        )
    return "web-cora"


@pytest.fixture(scope="module")
def platform_admin(people: People, django_db_blocker: Any) -> str:
    from tenants import services
    from tenants.models import Tenant

    with django_db_blocker.unblock():
        services.member_apply(
            tenant=Tenant.objects.get(slug="globex"),
            username="web-pat",
            email="web-pat@example.com",
            role="platform_admin",
            teams=[],
            password=PASSWORD,
        )
    return "web-pat"


@pytest.fixture(scope="module")
def long_record(people: People, django_db_blocker: Any) -> str:
    """A committed record with long unbroken text, tool calls and a fallback (the widest page)."""
    import uuid
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from audit.models import AuditRecord
    from tenants.models import ApiKey, Team

    with django_db_blocker.unblock():
        team = Team.objects.get(tenant__slug="acme", slug="advisors")
        started = timezone.now()
        record = AuditRecord.objects.create(
            request_id=f"req_{uuid.uuid4().hex[:24]}",
            tenant_id=team.tenant_id,
            team=team,
            api_key=ApiKey.objects.filter(team=team).earliest("id"),
            endpoint="chat.completions",
            model_requested="with-fallback",
            deployment_name="mock-gpt",
            provider_name="mock-ok",
            end_user="advisor-with-a-rather-long-identifier-0123456789",
            request_body={"messages": [{"role": "user", "content": "x" * 300}]},
            response_body={"choices": [{"message": {"role": "assistant", "content": "y" * 300}}]},
            tool_calls=[
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "get_portfolio",
                        "arguments": '{"client_id": "' + "C" * 120 + '"}',
                    },
                }
            ],
            attempts=[
                {"deployment": "mock-gpt-limited", "provider": "mock-429", "status": 429},
                {"deployment": "mock-gpt", "provider": "mock-ok", "status": 200},
            ],
            status="success",
            http_status=200,
            cost_usd=Decimal("0.000368"),
            started_at=started,
            completed_at=started + timedelta(milliseconds=20),
        )
    return record.request_id


@pytest.fixture
def phone(browser: Any, console_gateway: Any) -> Iterator[Any]:
    context = browser.new_context(
        base_url=console_gateway.url,
        viewport={"width": WIDTH, "height": 844},
        locale="en-US",  # the locale whose date inputs read mm/dd/yyyy
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def _who(people: People, officer: str, role: str, platform_admin: str) -> str:
    return {
        "platform_admin": platform_admin,
        "developer": people.developer,
        "tenant_admin": people.tenant_admin,
        "finance": people.finance,
        "compliance": officer,
    }[role]


@pytest.mark.parametrize("role", list(PAGES))
def test_no_page_is_wider_than_a_phone(
    phone: Any,
    people: People,
    officer: str,
    platform_admin: str,
    long_record: str,
    role: str,
) -> None:
    sign_in(phone, _who(people, officer, role, platform_admin))
    too_wide = {}
    extra = {
        "compliance": [f"/console/t/acme/compliance/records/{long_record}/"],
        "developer": ["/console/t/acme/no-such-page/"],
    }
    for url in [*PAGES[role], *extra.get(role, [])]:
        phone.goto(url)
        width = phone.evaluate("document.documentElement.scrollWidth")
        if width > WIDTH:
            too_wide[url] = width
        if SHOTS is not None:
            SHOTS.mkdir(parents=True, exist_ok=True)
            name = url.strip("/").replace("/", "_").replace("?", "_").replace("&", "_")
            phone.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        if os.environ.get("GATEWAY_SCREENSHOTS") == "1" and url in DOC_SHOTS:
            save_screenshot(phone, DOCS / f"{DOC_SHOTS[url]}.png")
    assert too_wide == {}


def test_date_fields_take_and_show_iso_dates(phone: Any, people: People, officer: str) -> None:
    sign_in(phone, people.finance)
    phone.goto("/console/t/acme/finance/?period=custom&start=2026-11-01&end=2026-11-30")

    start = phone.locator("#id_start")
    assert start.input_value() == "2026-11-01"
    assert start.get_attribute("type") == "text"  # a date input would show 11/01/2026
    assert start.get_attribute("placeholder") == "yyyy-mm-dd"
    assert "2026-11-01 to 2026-11-30 (UTC)" in phone.locator("p.lead").inner_text()

    phone.context.clear_cookies()
    sign_in(phone, officer)
    phone.goto("/console/t/acme/compliance/?since=2026-11-01+08:30")
    since = phone.locator("#id_since")
    assert since.input_value() == "2026-11-01 08:30"
    assert since.get_attribute("placeholder") == "yyyy-mm-dd hh:mm"
