"""A platform admin builds a route with a fallback in the console, in a real browser, and a
developer's request through the live gateway is served by the fallback when the primary fails."""

from __future__ import annotations

import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import wait_for_record
from tests.support.browser import PASSWORD, People, save_screenshot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

# GATEWAY_SCREENSHOTS=1 refreshes the platform pages' shots in docs/screenshots/.
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _shot(page: Any, name: str) -> None:
    if os.environ.get("GATEWAY_SCREENSHOTS") == "1":
        save_screenshot(page, DOCS / f"{name}.png")


@pytest.fixture(scope="module")
def platform_admin(people: People, django_db_blocker: Any) -> str:
    from tenants import services
    from tenants.models import Tenant

    with django_db_blocker.unblock():
        services.member_apply(
            tenant=Tenant.objects.get(slug="globex"),
            username="web-pia",
            email="web-pia@example.com",
            role="platform_admin",
            teams=[],
            password=PASSWORD,
        )
    return "web-pia"


def test_a_route_with_a_fallback_made_in_the_console_serves_a_request(
    page: Any, platform_admin: str, world: Any, console_gateway: Any, django_db_blocker: Any
) -> None:
    alias = f"console-failover-{uuid.uuid4().hex[:6]}"
    sign_in(page, platform_admin)
    page.goto("/console/t/acme/")
    page.get_by_role("navigation", name="Console").get_by_role(
        "link", name="Routes", exact=True
    ).click()
    page.get_by_role("link", name="Add a route").click()
    page.get_by_label("Alias").fill(alias)
    # The primary is a deployment whose provider answers every call with a 429.
    page.get_by_label(re.compile(r"^Primary deployment")).select_option("mock-gpt-limited")
    page.get_by_label(re.compile(r"^Fallback 1")).select_option("mock-gpt")
    _shot(page, "18-platform-route-new")
    page.get_by_role("button", name="Create route").click()
    page.wait_for_load_state()
    _shot(page, "18b-platform-routes")
    row = page.get_by_test_id("routes-table").get_by_role("row").filter(has_text=alias)
    assert "mock-gpt-limited" in row.inner_text() and "mock-gpt" in row.inner_text()

    try:
        deadline = time.monotonic() + 10  # the gateway reloads its routes every 0.5 s in tests
        while True:
            reply = httpx.post(
                console_gateway.api_url + "/chat/completions",
                headers={"authorization": f"Bearer {world.key}"},
                json={"model": alias, "messages": [{"role": "user", "content": "ping"}]},
                timeout=15,
            )
            if reply.status_code != 404 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"]
        with django_db_blocker.unblock():
            record = wait_for_record(reply.headers["x-request-id"])
        assert record.model_requested == alias
        assert record.deployment_name == "mock-gpt"  # served by the fallback
        tried = [a["deployment"] for a in record.attempts]
        # The primary was tried and failed (unless a test before this one left it cooling).
        assert tried[-1] == "mock-gpt" and set(tried) <= {"mock-gpt-limited", "mock-gpt"}
    finally:
        with django_db_blocker.unblock():
            from routing.models import Route

            Route.objects.filter(alias=alias).delete()
