"""The first hour of a new team, in a real browser on a fresh demo (`make run`'s steps on
non-default ports): each role signs in with the credentials the run printed and finds what it came
for by clicking, never by typing a URL.

Covered here: the developer (a new key with a limit and a budget, its snippet working as pasted,
its own request in its log, opened), finance (this month's cost by team, non-zero, matching the
audit records to the cent), compliance (a demo request found by end user and time, its chain
link verified, the search exported), the tenant admin (a new team, a member in it, a limit on
it) and the platform admin (on the console's platform pages: a new provider, a deployment on it,
and a route that falls over to it, which then serves a request). GATEWAY_SCREENSHOTS=1 writes
each page to docs/screenshots/.
"""

from __future__ import annotations

import csv
import io
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_demo_run import demo  # noqa: F401  (the module's demo fixture)
from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS, save_screenshot

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.e2e,
    # A fresh demo (migrate, seed, an hour of traffic) is made by the first test to run, and the
    # platform admin clicks through three pages of forms: minutes on a busy machine.
    pytest.mark.timeout(300),
    pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="no .venv"),
]

DOCS = ROOT / "docs" / "screenshots"
SHOOT = os.environ.get("GATEWAY_SCREENSHOTS") == "1"


def _shoot(page: Any, name: str) -> None:
    if SHOOT:
        save_screenshot(page, DOCS / f"first-hour-{name}.png")


def _credentials(printed: str) -> tuple[str, dict[str, tuple[str, str]]]:
    console = re.search(r"^Console: (\S+) ", printed, re.MULTILINE)
    assert console, printed
    people = {
        role.strip(): (user, password)
        for role, user, password in re.findall(
            r"^\s+([a-z ]+):\s+(\S+) / (\S+)$", printed, re.MULTILINE
        )
    }
    return console.group(1), people


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        yield launched
        launched.close()


def _signed_in(browser: Any, demo: dict[str, Any], role: str) -> Any:  # noqa: F811
    console, people = _credentials(str(demo["seeded"]) + str(demo["printed"]))
    user, password = people[role]
    page = browser.new_page(viewport={"width": 1366, "height": 860})
    page.set_default_timeout(20_000)
    page.goto(console)  # the address the run printed
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_load_state()
    return page


def _records_cost_this_month(demo: dict[str, Any]) -> Decimal:  # noqa: F811
    start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    database = sqlite3.connect(Path(str(demo["folder"])) / "gateway.sqlite3")
    try:
        costs = database.execute(
            "SELECT cost_usd, started_at FROM audit_auditrecord WHERE status != 'in_progress'"
        ).fetchall()
    finally:
        database.close()
    total = sum(
        (
            Decimal(str(cost))
            for cost, at in costs
            if datetime.fromisoformat(str(at)).replace(tzinfo=UTC) >= start
        ),
        Decimal(0),
    )
    return total.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def test_finance_finds_this_months_cost_by_team_matching_the_records(
    browser: Any,
    demo: dict[str, Any],  # noqa: F811
) -> None:
    page = _signed_in(browser, demo, "finance")
    page.get_by_role("link", name="Cost", exact=True).click()
    table = page.get_by_test_id("cost-table")
    table.wait_for()
    _shoot(page, "finance-cost")
    shown = Decimal(page.get_by_test_id("total").inner_text().replace(",", ""))
    assert shown > 0
    assert table.locator("tbody tr").count() >= 2  # several teams
    assert shown == _records_cost_this_month(demo)  # to the cent (and the hundredth of a cent)
    page.get_by_role("link", name="Dashboards").click()
    page.get_by_test_id("totals").wait_for()
    _shoot(page, "dashboards")
    assert int(page.get_by_test_id("requests").inner_text()) > 0


def test_a_developer_creates_a_key_runs_its_snippet_and_finds_the_request(
    browser: Any,
    demo: dict[str, Any],  # noqa: F811
) -> None:
    page = _signed_in(browser, demo, "developer")
    page.get_by_role("link", name="My keys").click()
    page.get_by_label("Name").fill("first-hour")
    page.get_by_label("Requests per minute (optional)").fill("60")
    page.get_by_label("Budget in USD (optional)").fill("5")
    page.get_by_role("button", name="Create key").click()
    page.get_by_test_id("new-key").wait_for()
    assert page.get_by_test_id("new-key-limits").is_visible()
    _shoot(page, "developer-key")
    curl = page.locator("#code-curl").inner_text()
    ran = subprocess.run(["sh", "-c", curl], capture_output=True, text=True, timeout=60)
    assert "Mock reply" in ran.stdout, ran.stdout + ran.stderr

    page.get_by_role("link", name="My requests").click()
    log = page.get_by_test_id("my-requests")
    log.wait_for()
    row = log.locator("tr", has_text="first-hour").first
    assert row.is_visible()
    _shoot(page, "developer-requests")
    row.get_by_role("link").click()
    page.get_by_test_id("request-facts").wait_for()
    assert "Mock reply" in page.content()
    _shoot(page, "developer-request")


def _a_demo_request(demo: dict[str, Any]) -> tuple[str, str, datetime]:  # noqa: F811
    database = sqlite3.connect(Path(str(demo["folder"])) / "gateway.sqlite3")
    try:
        request_id, user, at = database.execute(
            "SELECT request_id, end_user, started_at FROM audit_auditrecord "
            "WHERE end_user != '' AND status = 'success' ORDER BY started_at LIMIT 1"
        ).fetchone()
    finally:
        database.close()
    return str(request_id), str(user), datetime.fromisoformat(str(at))


def test_compliance_finds_a_request_by_user_and_time_verifies_and_exports_it(
    browser: Any,
    demo: dict[str, Any],  # noqa: F811
) -> None:
    request_id, user, at = _a_demo_request(demo)
    page = _signed_in(browser, demo, "compliance")
    page.get_by_role("link", name="Audit trail").click()
    page.get_by_label("End user (advisor)").fill(user)
    page.get_by_label("From (UTC)").fill(at.strftime("%Y-%m-%d %H:%M"))
    page.get_by_role("button", name="Search").click()
    found = page.locator("a.rid", has_text=request_id)
    found.wait_for()
    _shoot(page, "compliance-search")
    found.click()
    chain = page.get_by_test_id("chain-status")
    chain.wait_for()
    assert "verified" in chain.inner_text()
    _shoot(page, "compliance-record")
    page.go_back()
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert request_id in {row["request_id"] for row in rows}
    assert {row["end_user"] for row in rows} == {user}  # the filters, applied to the export


def test_a_tenant_admin_adds_a_team_a_member_and_a_limit(
    browser: Any,
    demo: dict[str, Any],  # noqa: F811
) -> None:
    page = _signed_in(browser, demo, "tenant admin")
    page.get_by_role("link", name="Teams").click()
    page.get_by_label("Slug").fill("research-lab")
    page.get_by_label("Name", exact=True).fill("Research Lab")
    page.get_by_role("button", name="Save team").click()
    page.get_by_role("cell", name="Research Lab").first.wait_for()
    _shoot(page, "admin-team")

    page.get_by_role("link", name="Members").click()
    page.get_by_label("Username").fill("new-analyst")
    page.get_by_label("Email").fill("analyst@demo.example")
    page.get_by_label("Role").select_option("developer")
    page.get_by_label("Research Lab").check()
    page.get_by_label("Password").fill("a long first password")
    page.get_by_role("button", name="Add member").click()
    page.get_by_role("cell", name="new-analyst").first.wait_for()
    _shoot(page, "admin-member")

    page.get_by_role("link", name="Limits and budgets").click()
    form = page.locator("form", has=page.get_by_role("button", name="Save rate limit"))
    form.get_by_label("Applies to").select_option("team")
    team = form.get_by_label("Team").locator("option", has_text="research-lab")
    form.get_by_label("Team").select_option(team.get_attribute("value"))
    form.get_by_label("Requests per minute").fill("100")
    form.get_by_role("button", name="Save rate limit").click()
    page.get_by_role("cell", name=re.compile("research-lab")).first.wait_for()
    assert page.get_by_role("cell", name=re.compile("100")).first.is_visible()
    _shoot(page, "admin-limit")


def _env_file(demo: dict[str, Any]) -> dict[str, str]:  # noqa: F811
    values = {}
    for line in (Path(str(demo["folder"])) / ".env.demo").read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        if name and not name.startswith("#"):
            values[name.strip()] = value.strip().strip("'\"")
    return values


def test_a_platform_admin_adds_a_provider_a_deployment_and_a_route_with_a_fallback(
    browser: Any,
    demo: dict[str, Any],  # noqa: F811
) -> None:
    """As a new platform engineer would: everything on the console's platform pages, by clicking;
    then the demo key's request to the new route is served by the new deployment after the
    offline primary fails."""
    import httpx

    page = _signed_in(browser, demo, "platform admin")
    nav = page.get_by_role("navigation", name="Console")
    _shoot(page, "platform-admin")

    # Where the existing provider points (the bundled mock): the new one goes to the same place.
    nav.get_by_role("link", name="Providers", exact=True).click()
    page.get_by_role("link", name="mock-openai", exact=True).click()
    mock_url = page.get_by_label("Base URL").input_value()
    assert mock_url == f"http://127.0.0.1:{demo['MOCK_PORT']}/v1"
    nav.get_by_role("link", name="Providers", exact=True).click()
    page.get_by_role("link", name="Add a provider").click()
    page.get_by_label("Name").fill("first-hour-mock")
    page.get_by_label("Kind").select_option("openai")
    page.get_by_label("Base URL").fill(mock_url)
    page.get_by_label("Credential").fill("a provider credential")
    page.get_by_label("Region").fill("us")
    page.get_by_role("button", name="Create provider").click()
    page.get_by_role("link", name="first-hour-mock", exact=True).wait_for()

    nav.get_by_role("link", name="Deployments", exact=True).click()
    page.get_by_role("link", name="Add a deployment").click()
    page.get_by_label("Name").fill("first-hour-gpt")
    page.get_by_label("Provider").select_option("first-hour-mock")
    page.get_by_label("Upstream model").fill("mock-gpt-2026-01-01")
    page.get_by_label("Input, USD per 1M tokens").fill("1.25")
    page.get_by_label("Output, USD per 1M tokens").fill("5")
    page.get_by_role("button", name="Create deployment").click()
    page.get_by_role("link", name="first-hour-gpt", exact=True).wait_for()

    nav.get_by_role("link", name="Routes", exact=True).click()
    page.get_by_role("link", name="Add a route").click()
    page.get_by_label("Alias").fill("first-hour")
    page.get_by_label("Description").fill("first hour: the offline primary, then our deployment")
    page.get_by_label(re.compile(r"^Primary deployment")).select_option("mock-gpt-offline")
    page.get_by_label(re.compile(r"^Fallback 1")).select_option("first-hour-gpt")
    page.get_by_role("button", name="Create route").click()
    row = page.get_by_test_id("routes-table").get_by_role("row").filter(has_text="first-hour")
    row.wait_for()
    assert "mock-gpt-offline" in row.inner_text() and "first-hour-gpt" in row.inner_text()
    _shoot(page, "platform-routes")

    gateway = _env_file(demo)
    deadline = time.monotonic() + 20  # each worker reloads its routing table every 2 s
    while True:
        answer = httpx.post(
            f"{gateway['GATEWAY_URL']}/chat/completions",
            headers={"authorization": f"Bearer {gateway['GATEWAY_API_KEY']}"},
            json={"model": "first-hour", "messages": [{"role": "user", "content": "Hello"}]},
            timeout=30,
        )
        if answer.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert answer.status_code == 200, answer.text
    assert "Mock reply" in answer.json()["choices"][0]["message"]["content"]
    assert answer.headers["x-gateway-route"] == "first-hour"
    assert int(answer.headers["x-gateway-attempts"]) >= 2  # the fallback served it
    assert answer.headers["x-gateway-deployment"] == "first-hour-gpt"
