"""Screenshots of the console pages, taken in the real browser.

Always taken (so a page that breaks fails here); written to docs/screenshots/ when
GATEWAY_SCREENSHOTS=1, which is how the committed ones are regenerated:
`GATEWAY_SCREENSHOTS=1 pytest tests/console/test_screenshots.py`.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import People, create_key, save_screenshot, sign_in
from tests.support.live import test_database_url as live_database_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def limited_key(people: People, django_db_blocker: Any) -> tuple[int, str]:
    """A key of the developer with its own rate limit and budget (committed; no other key is
    affected), so the key page shows what is left."""
    from django.contrib.auth import get_user_model

    from tenants import services as tenants
    from tenants.models import Team
    from tenants.quotas import services as quotas

    with django_db_blocker.unblock():
        team = Team.objects.get(tenant__slug="acme", slug="advisors")
        owner = get_user_model().objects.get(username=people.developer)
        key, material = tenants.key_create(team=team, name="reporting-job", owner=owner)
        quotas.rate_limit_set(tenant=team.tenant, scope="key", api_key=key, requests_per_minute=120)
        quotas.budget_set(tenant=team.tenant, scope="key", api_key=key, amount_usd=Decimal("25"))
    return key.pk, material.plaintext


@pytest.fixture(scope="module")
def evaluated_route(people: People, django_db_blocker: Any) -> None:
    """A route by task category over mock-gpt and the mock's small model, scored by a real run of
    the demo evaluation set, so the routing quality page has something to show."""
    from django.core.management import call_command

    from routing import services as routing
    from routing.evaluations import services as evaluations
    from routing.models import Deployment, Provider

    with django_db_blocker.unblock():
        mini = routing.deployment_upsert(
            name="mock-gpt-mini",
            provider=Provider.objects.get(name="mock-ok"),
            upstream_model="mock-gpt-mini",
            input_price_per_mtok=Decimal("0.15"),
            output_price_per_mtok=Decimal("0.6"),
        )
        big = Deployment.objects.get(name="mock-gpt")
        routing.route_upsert(
            alias="auto-chat", description="", deployments=[big, mini], strategy="category"
        )
        evaluations.category_upsert(
            name="classification",
            description="Label a text with one of a few classes.",
            threshold=0.9,
            pattern=r"\b(classify|label|sentiment)\b",
        )
        evaluations.category_upsert(
            name="extraction",
            description="Pull a field out of a document.",
            threshold=0.9,
            pattern=r"\b(extract|invoice number)\b",
        )
        # On its own thread: the browser's event loop runs on this one.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(
                call_command,
                "run_evals",
                str(DOCS.parents[1] / "config" / "evals" / "demo.jsonl"),
                "--route",
                "auto-chat",
                stdout=io.StringIO(),
            ).result()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return DOCS if os.environ.get("GATEWAY_SCREENSHOTS") == "1" else tmp_path


def shoot(page: Any, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_screenshot(page, folder / f"{name}.png")
    assert (folder / f"{name}.png").stat().st_size > 5_000  # not a blank page


def test_screenshots_of_the_developer_portal(
    page: Any, people: People, console_gateway: Any, shots: Path, limited_key: tuple[int, str]
) -> None:
    page.goto("/console/login/")
    shoot(page, shots, "01-sign-in")
    sign_in(page, people.developer)
    shoot(page, shots, "02-overview")
    key = create_key(page, "acme", "notebook")
    page.locator("#new-key-secret").evaluate("e => e.value = e.value.slice(0, 10) + '…'")
    shoot(page, shots, "03-key-created")
    key_id, limited = limited_key
    for i in range(3):
        for secret in (key, limited):
            httpx.post(
                console_gateway.api_url + "/chat/completions",
                headers={"authorization": f"Bearer {secret}"},
                json={"model": "demo", "messages": [{"role": "user", "content": f"Question {i}"}]},
                timeout=10,
            )
    page.goto(f"/console/t/acme/keys/{key_id}/")
    page.get_by_text("of $25.00").wait_for()
    shoot(page, shots, "04-key-usage")
    page.get_by_role("link", name="My keys").click()
    shoot(page, shots, "05-my-keys")
    page.get_by_role("link", name="Quickstart").click()
    shoot(page, shots, "06-quickstart")
    page.get_by_role("link", name="Playground").click()
    page.get_by_label("Your key").fill(key)
    page.get_by_label("Message").fill("Summarise our travel policy in one line.")
    page.get_by_role("button", name="Send").click()
    page.get_by_label("Model", exact=True).select_option("demo")
    page.get_by_label("Compare with").select_option("advisor-chat")
    page.get_by_label("Stream the answer").check()
    page.get_by_label("Message").fill("And in one word?")
    page.get_by_role("button", name="Send").click()
    page.get_by_test_id("reply-figures").nth(1).wait_for()
    shoot(page, shots, "07-playground")
    page.get_by_role("link", name="My requests").click()
    page.get_by_test_id("my-requests").wait_for()
    shoot(page, shots, "08-my-requests")
    page.get_by_test_id("my-requests").get_by_role("link").first.click()
    page.get_by_test_id("request-facts").wait_for()
    shoot(page, shots, "09-my-request")


def test_screenshots_of_tenant_administration(
    page: Any,
    people: People,
    console_gateway: Any,
    shots: Path,
    evaluated_route: None,
    django_db_blocker: Any,
) -> None:
    sign_in(page, people.tenant_admin)
    for link, name in (
        ("Teams", "10-admin-teams"),
        ("Members", "11-admin-members"),
        ("All keys", "12-admin-keys"),
        ("Models", "13-admin-models"),
        ("Activity log", "14-admin-activity"),
        ("Limits and budgets", "16-admin-limits"),
        ("Routing quality", "17-admin-routing-quality"),
    ):
        page.get_by_role("link", name=link).click()
        shoot(page, shots, name)
    page.context.clear_cookies()
    sign_in(page, people.finance)
    # What the scheduler does every few minutes, in its own process (the test's transaction
    # would hide the rollups from the live gateway).
    subprocess.run(
        [sys.executable, "manage.py", "billing_rollup"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DATABASE_URL": live_database_url()},
        check=True,
        capture_output=True,
    )
    page.get_by_role("link", name="Dashboards").click()
    page.get_by_test_id("totals").wait_for()
    shoot(page, shots, "18-dashboards")
    page.goto("/console/t/acme/keys/")
    shoot(page, shots, "15-role-denied")


def test_adding_a_member_with_a_taken_username_says_so_and_changes_nobody(
    page: Any, people: People, console_gateway: Any, shots: Path, django_db_blocker: Any
) -> None:
    """The account-takeover attempt as a tenant admin meets it: another tenant's username."""
    from django.contrib.auth import get_user_model

    with django_db_blocker.unblock():
        before = (
            get_user_model().objects.values_list("email", "password").get(username=people.outsider)
        )
    sign_in(page, people.tenant_admin)
    page.get_by_role("link", name="Members").click()
    page.get_by_label("Username").fill(people.outsider)
    page.get_by_label("Email").fill("mine@attacker.example")
    page.get_by_label("Password").fill("attacker chosen password")
    page.get_by_role("button", name="Add member").click()

    assert page.get_by_text("is taken: choose another").is_visible()
    shoot(page, shots, "11b-admin-member-taken")
    with django_db_blocker.unblock():
        after = (
            get_user_model().objects.values_list("email", "password").get(username=people.outsider)
        )
    assert after == before
