"""Drill: the day after the outage, compliance asks for the audit log of one advisor's requests.

The seed's second incident: "which advisor initiated the request, the client context, the
specific tool calls made by the agent, and the agent's final response". We replay the advisor's
agent turns through the gateway during the provider outage (the route's primary answers 429 and
the gateway falls over), then, as a compliance officer in a real browser: find them by advisor
and time, open the record, check its chain, and export them. The export holds the advisor, the
client context, the tool calls and the final response, and its manifest matches the file.
Run alone: `pytest tests/drills/test_compliance_finds_incident.py`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openai
import pytest

from audit.models import AuditAccess
from tests.conftest import wait_for_record
from tests.support import live
from tests.support.browser import (  # noqa: F401 - fixtures
    PASSWORD,
    browser,
    console_gateway,
    page,
    save_screenshot,
    sign_in,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

# The committed screenshots are regenerated with GATEWAY_SCREENSHOTS=1 (as tests/console does).
DOCS_SCREENSHOTS = live.ROOT / "docs" / "screenshots"
ADVISOR = "advisor-chen-17"
CLIENT = "HARTLEY-0042"
PORTFOLIO_TOOL = {
    "type": "function",
    "function": {
        "name": "get_portfolio",
        "description": "Look up a client's current allocation",
        "parameters": {
            "type": "object",
            "properties": {"client_id": {"type": "string"}},
            "required": ["client_id"],
        },
    },
}


@pytest.fixture(scope="module")
def officer(world: Any, django_db_blocker: Any) -> str:
    from tenants import services
    from tenants.models import Tenant

    with django_db_blocker.unblock():
        services.member_apply(
            tenant=Tenant.objects.get(slug="acme"),
            username="cora-compliance",
            email="cora@acme.example",
            role="compliance",
            teams=[],
            password=PASSWORD,
        )
    return "cora-compliance"


def _agent_turn(api: openai.OpenAI) -> tuple[str, str]:
    """The advisor's agent: asks, the model calls a tool, the agent answers with its result."""
    context = {"x-gateway-client-id": CLIENT, "x-gateway-session-id": "sess-2026-11-23-0930"}
    messages: list[Any] = [
        {"role": "system", "content": "You are Acme Wealth's advisor assistant."},
        {"role": "user", "content": f"Should we rebalance client {CLIENT} towards bonds?"},
    ]
    first = api.chat.completions.with_raw_response.create(
        model="advisor-chat",
        messages=messages,
        tools=[PORTFOLIO_TOOL],
        user=ADVISOR,
        extra_headers={**context, "x-gateway-feature": "portfolio-agent"},
    )
    message = first.parse().choices[0].message
    assert message.tool_calls, "the model was expected to call get_portfolio"
    messages.append(message.model_dump(exclude_none=True))
    messages.append(
        {
            "role": "tool",
            "tool_call_id": message.tool_calls[0].id,
            "content": json.dumps({"client_id": CLIENT, "equities": 0.82, "bonds": 0.18}),
        }
    )
    second = api.chat.completions.with_raw_response.create(
        model="advisor-chat",
        messages=messages,
        tools=[PORTFOLIO_TOOL],
        tool_choice="none",
        user=ADVISOR,
        extra_headers={**context, "x-gateway-feature": "portfolio-agent"},
    )
    return first.headers["x-request-id"], second.headers["x-request-id"]


def _seal_as_the_beat_task_does() -> None:
    subprocess.run(
        [sys.executable, "manage.py", "audit_seal"],
        cwd=live.ROOT,
        env={**os.environ, "DATABASE_URL": live.test_database_url()},
        check=True,
        capture_output=True,
    )


def test_compliance_finds_the_advisors_requests_and_exports_them(
    console_gateway: Any,  # noqa: F811
    page: Any,  # noqa: F811
    world: Any,
    officer: str,
    tmp_path: Path,
) -> None:
    shots = DOCS_SCREENSHOTS if os.environ.get("GATEWAY_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    began = datetime.now(UTC) - timedelta(minutes=1)
    api = openai.OpenAI(base_url=console_gateway.api_url, api_key=world.key, max_retries=0)
    asked, answered = _agent_turn(api)
    noise = api.chat.completions.with_raw_response.create(
        model="demo", messages=[{"role": "user", "content": "unrelated"}], user="advisor-other"
    )
    for request_id in (asked, answered, noise.headers["x-request-id"]):
        wait_for_record(request_id)
    _seal_as_the_beat_task_does()

    # Find them by advisor and time.
    sign_in(page, officer)
    page.goto("/console/t/acme/compliance/")
    page.get_by_label("End user (advisor)").fill(ADVISOR)
    page.get_by_label("From (UTC)").fill(began.strftime("%Y-%m-%d %H:%M"))
    page.get_by_label("From (UTC)").press("Tab")  # a date searches once complete, on change
    results = page.locator("#results tbody tr")
    results.first.wait_for()
    page.wait_for_function("document.querySelectorAll('#results tbody tr').length === 2")
    assert CLIENT in page.locator("#results").inner_text()
    assert "advisor-other" not in page.locator("#results").inner_text()
    # Full text, as typed: only the final answer says it received the tool's result.
    page.get_by_label("Prompt or response text").fill("receiv")
    page.wait_for_function("document.querySelectorAll('#results tbody tr').length === 1")
    page.get_by_label("Prompt or response text").fill("")
    page.wait_for_function("document.querySelectorAll('#results tbody tr').length === 2")
    save_screenshot(page, shots / "20-compliance-search.png")

    # Open the record: the conversation, the tool call, the attempts and the chain.
    search_url = page.url  # the filters are in the address (pushed as they were typed)
    page.get_by_role("link", name=asked).click()
    page.wait_for_load_state()
    body = page.locator("main").inner_text()
    assert ADVISOR in body and CLIENT in body
    assert "get_portfolio" in body
    assert "mock-gpt-limited" in body and "claude-fallback" in body  # the 429, then the fallback
    assert "Chain status: verified" in page.get_by_test_id("chain-status").inner_text()
    save_screenshot(page, shots / "21-compliance-record.png")

    # The whole chain of the tenant verifies, and says so in words.
    page.get_by_role("link", name="Chain verification").click()
    page.get_by_role("button", name="Verify chain").click()
    assert "The chain verifies" in page.get_by_test_id("chain-report").inner_text()
    save_screenshot(page, shots / "22-compliance-chain.png")

    page.goto(search_url)
    page.wait_for_function("document.querySelectorAll('#results tbody tr').length === 2")

    # Export them, both ways.
    with page.expect_download() as download:
        page.get_by_test_id("export-jsonl").click()
    jsonl_path = tmp_path / "export.jsonl"
    download.value.save_as(jsonl_path)
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    csv_path = tmp_path / "export.csv"
    download.value.save_as(csv_path)

    lines = [json.loads(line) for line in jsonl_path.read_text().splitlines()]
    by_id = {line["request_id"]: line for line in lines}
    assert set(by_id) == {asked, answered}
    tool_call = by_id[asked]
    assert tool_call["end_user"] == ADVISOR
    assert tool_call["client_context"]["client_id"] == CLIENT
    assert tool_call["tool_calls"][0]["function"]["name"] == "get_portfolio"
    final = by_id[answered]
    assert final["tool_results"][0]["content"].startswith('{"client_id": "HARTLEY-0042"')
    assert final["response_body"]["choices"][0]["message"]["content"].startswith(
        "Tool result received"
    )
    rows = {row["request_id"]: row for row in csv.DictReader(io.StringIO(csv_path.read_text()))}
    assert rows[asked]["end_user"] == ADVISOR and CLIENT in rows[asked]["client_context"]
    assert "get_portfolio" in rows[asked]["tool_calls"]
    assert rows[answered]["response"].startswith("Tool result received")

    # The manifest names the file's hash, its rows and its chain anchors.
    page.reload()
    page.get_by_text("Recent exports and their manifests").click()
    manifest_link = page.get_by_role("link", name="manifest").first
    manifest = page.request.get(manifest_link.get_attribute("href")).json()["manifest"]
    assert manifest["row_count"] == 2
    assert manifest["file_sha256"] == hashlib.sha256(csv_path.read_bytes()).hexdigest()
    assert manifest["chain"]["rows_not_yet_chained"] == 0

    # Who looked at what is on record too.
    looked = set(AuditAccess.objects.filter(user_label=officer).values_list("action", flat=True))
    assert {"audit.search", "audit.view", "audit.export"} <= looked
