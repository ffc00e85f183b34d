"""The console on a phone: at 390 px wide no page is wider than the screen (nothing to scroll
sideways but a wide table inside its own box), and date fields read yyyy-mm-dd as their UTC labels
say, whatever the browser's locale."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import PASSWORD, People, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

WIDTH = 390
# GATEWAY_NARROW_SHOTS=<folder> keeps a screenshot of each page, to look at them.
SHOTS = Path(os.environ["GATEWAY_NARROW_SHOTS"]) if os.environ.get("GATEWAY_NARROW_SHOTS") else None

PAGES = {
    "developer": [
        "/console/t/acme/",
        "/console/t/acme/keys/",
        "/console/t/acme/quickstart/",
        "/console/t/acme/playground/",
    ],
    "tenant_admin": [
        "/console/t/acme/admin/teams/",
        "/console/t/acme/admin/members/",
        "/console/t/acme/admin/keys/",
        "/console/t/acme/admin/activity/",
        "/console/t/acme/limits/",
        "/console/t/acme/prompts/",
    ],
    "finance": [
        "/console/t/acme/finance/",
        "/console/t/acme/finance/?by=model",
        "/console/t/acme/finance/?period=custom&start=2026-99-01&end=x",  # with errors
        "/console/t/acme/no-such-page/",
    ],
    "compliance": [
        "/console/t/acme/compliance/",
        "/console/t/acme/compliance/?status=nope",
        "/console/t/acme/compliance/chain/",
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


def _who(people: People, officer: str, role: str) -> str:
    return {
        "developer": people.developer,
        "tenant_admin": people.tenant_admin,
        "finance": people.finance,
        "compliance": officer,
    }[role]


@pytest.mark.parametrize("role", list(PAGES))
def test_no_page_is_wider_than_a_phone(phone: Any, people: People, officer: str, role: str) -> None:
    sign_in(phone, _who(people, officer, role))
    too_wide = {}
    for url in PAGES[role]:
        phone.goto(url)
        width = phone.evaluate("document.documentElement.scrollWidth")
        if width > WIDTH:
            too_wide[url] = width
        if SHOTS is not None:
            SHOTS.mkdir(parents=True, exist_ok=True)
            name = url.strip("/").replace("/", "_").replace("?", "_").replace("&", "_")
            phone.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
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
