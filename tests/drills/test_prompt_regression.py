"""Drill: a prompt edit breaks allocation answers; the operator traces it and rolls back.

The seed's fourth incident: "a new prompt version to adjust the agent's tone … hours later the agent
began failing on allocation questions … the pipeline did not pin or log the prompt version used
for each request". Here v2 of the advisor prompt changes the tone, and the mock provider fails any
request whose prompt carries the marker v2 produces for allocation questions. In a real browser,
a tenant admin finds when v2 went live (label history), its error rate against v1's, the requests
it broke, and rolls back with one button; a compliance officer follows v2 into the audit search.
Every request's audit record names the version it used. Run alone:
`pytest tests/drills/test_prompt_regression.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import openai
import pytest
from django.db import connections

from audit.activity.services import Actor
from routing import services as routing
from routing.models import Provider
from routing.prompts import services
from routing.prompts.models import LabelMove
from tenants import services as tenant_services
from tenants.models import Tenant
from tests.conftest import wait_for_record

# The console's browser fixtures (Playwright, chromium, the live gateway with static files).
from tests.support.browser import (  # noqa: F401
    PASSWORD,
    People,
    browser,
    console_gateway,
    page,
    people,
    save_screenshot,
    sign_in,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

PROMPT = "drill-advisor"
ROUTE = "drill-prompt-chat"
# What v2 renders for allocation questions, and what the mock is told to fail on.
MARKER = "allocation-casual-mode"
V1 = "You are a formal wealth advisor. The topic is {{ topic }}. Cite the client's holdings."
V2 = "You are a relaxed, friendly advisor. Topic: {{ topic }}-casual-mode. Keep it light."
TOPICS = ("allocation", "tax", "retirement")
OPS = Actor("user", "ops-lead")
COMPLIANCE_USER = "drill-compliance"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
T = TypeVar("T")


def committed(change: Callable[[], T]) -> T:
    """Make a change the live gateway can see: on another thread, outside the test's transaction."""

    def run() -> T:
        try:
            return change()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


@pytest.fixture(scope="module")
def drill(
    console_gateway: Any,  # noqa: F811 - the fixture imported above
    world: Any,
    django_db_blocker: Any,
    mock_server: Any,
) -> Any:
    """Its own deployment (so its breaker is its own), and v1 of the prompt in production."""
    with django_db_blocker.unblock():
        deployment = routing.deployment_upsert(
            name="drill-prompt-gpt",
            provider=Provider.objects.get(name="mock-ok"),
            upstream_model="mock-gpt",
            input_price_per_mtok=Decimal("2.5"),
            output_price_per_mtok=Decimal("10"),
        )
        routing.route_upsert(alias=ROUTE, description="", deployments=[deployment])
        prompt = services.prompt_declare(
            actor=OPS, tenant=Tenant.objects.get(slug="acme"), name=PROMPT
        )
        services.prompt_publish(
            actor=OPS,
            prompt=prompt,
            messages=[{"role": "system", "content": V1}],
            model=ROUTE,
            note="launch",
        )
        services.prompt_label_move(actor=OPS, prompt=prompt, label="production", version=1)
        tenant_services.member_apply(
            tenant=prompt.tenant,
            username=COMPLIANCE_USER,
            email="compliance@acme.example",
            role="compliance",
            teams=[],
            password=PASSWORD,
        )
    _wait_for_route(console_gateway, world.key)
    mock_server.configure(fail_marker=MARKER)
    yield prompt
    mock_server.configure()


def _wait_for_route(gateway: Any, key: str) -> None:
    """A running gateway reloads its routing table every 0.5 s: wait until it has the drill's."""
    api = openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)
    deadline = time.monotonic() + 10
    while True:
        try:
            api.chat.completions.create(model=ROUTE, messages=[{"role": "user", "content": "hi"}])
            return
        except openai.NotFoundError:
            assert time.monotonic() < deadline, "the gateway never loaded the drill's route"
            time.sleep(0.1)


def _ask(api: openai.OpenAI, i: int) -> tuple[str, str, int, str]:
    """One advisor question; returns (request id, prompt version served, HTTP status, topic)."""
    topic = TOPICS[i % len(TOPICS)]
    try:
        raw = api.chat.completions.with_raw_response.create(
            model="",  # the prompt's default route
            messages=[{"role": "user", "content": f"Question {i} about my {topic}"}],
            user=f"advisor-{i % 7}",
            extra_headers={"x-gateway-prompt": f"{PROMPT}@production"},
            extra_body={"prompt_variables": {"topic": topic}},
        )
        headers, status = raw.headers, raw.status_code
    except openai.APIStatusError as error:
        headers, status = error.response.headers, error.status_code
    # No version header: the gateway has not loaded the prompt yet (a warm-up, see `_traffic`).
    return headers["x-request-id"], headers.get("x-gateway-prompt-version", ""), status, topic


def _traffic(api: openai.OpenAI, count: int, *, until_version: str) -> list[Any]:
    """Ask until the gateway serves `until_version` (it reloads its tables every 0.5 s), then
    `count` more questions."""
    served = []
    deadline = time.monotonic() + 10
    while not served or served[-1][1] != until_version or served[-1][2] == 404:
        assert time.monotonic() < deadline, f"the gateway never served v{until_version}"
        served.append(_ask(api, len(served)))
        time.sleep(0.05)
    served += [_ask(api, i) for i in range(count)]
    # 404s are the warm-up of a gateway that had not loaded the drill's prompt or route yet.
    return [answer for answer in served if answer[1] and answer[2] != 404]


def test_a_prompt_regression_is_traced_to_its_version_and_rolled_back(
    console_gateway: Any,  # noqa: F811 - the browser fixtures imported above
    world: Any,
    drill: Any,
    page: Any,  # noqa: F811
    people: People,  # noqa: F811
) -> None:
    api = openai.OpenAI(base_url=console_gateway.api_url, api_key=world.key, max_retries=0)

    before = _traffic(api, 30, until_version="1")
    assert {status for _, _, status, _ in before} == {200}

    # The tone change ships (from git or a script: the operator was not involved).
    committed(
        lambda: services.prompt_publish(
            actor=OPS,
            prompt=drill,
            messages=[{"role": "system", "content": V2}],
            model=ROUTE,
            note="friendlier tone",
        )
    )
    committed(
        lambda: services.prompt_label_move(actor=OPS, prompt=drill, label="production", version=2)
    )
    after = _traffic(api, 30, until_version="2")
    on_v2 = [(rid, status, topic) for rid, version, status, topic in after if version == "2"]
    broken = {rid for rid, status, _ in on_v2 if status != 200}
    # Exactly the allocation questions fail (502: the provider failed), the others still work.
    assert broken == {rid for rid, _, topic in on_v2 if topic == "allocation"}
    assert {status for rid, status, _ in on_v2 if rid in broken} == {502}

    # The operator opens the console: when did v2 go live, and what did it do?
    sign_in(page, people.tenant_admin)
    page.get_by_role("link", name="Prompts").click()
    page.get_by_role("link", name=PROMPT).click()
    went_live = LabelMove.objects.get(label__prompt=drill, to_version=2)
    history = page.locator("#label-history tbody tr").first
    assert history.locator("td").all_inner_texts() == [
        f"{went_live.moved_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
        "ops-lead",
        "production",
        "v1",
        "v2",
        "",
    ]
    v1_rate = _percent(page.locator("#version-1 .error-rate").inner_text())
    v2_rate = _percent(page.locator("#version-2 .error-rate").inner_text())
    assert v1_rate == 0
    assert 20 <= v2_rate <= 45  # the allocation third of v2's traffic
    save_screenshot(page, SCREENSHOTS / "prompt-regression.png")

    # One click lists the affected requests.
    page.get_by_role("link", name="Failed requests of v2").click()
    listed = set(page.locator("#requests tbody tr td:first-child").all_inner_texts())
    assert listed == broken

    # Rollback: one action, recorded with who did it.
    page.go_back()
    page.get_by_role("button", name="Roll back production to v1").click()
    page.get_by_text("Rolled back").wait_for()
    rolled_back = _traffic(api, 15, until_version="1")
    assert {status for _, version, status, _ in rolled_back if version == "1"} == {200}
    last = LabelMove.objects.filter(label__prompt=drill).order_by("-id").first()
    assert (last.from_version, last.to_version, last.is_rollback) == (2, 1, True)
    assert last.actor_label == people.tenant_admin

    # Compliance reviews the affected requests in the audit search: one click from the prompt.
    page.context.clear_cookies()
    sign_in(page, COMPLIANCE_USER)
    page.goto(f"/console/t/acme/prompts/{PROMPT}/")
    page.get_by_role("link", name="v2 in the audit search").click()
    page.locator("#results").wait_for()
    in_search = set(page.locator("#results a.rid").all_inner_texts())
    assert broken <= in_search
    assert not in_search & {rid for rid, version, _, _ in before}

    # Every request's audit record names the version it was served with.
    for request_id, version, _, _ in before + after + rolled_back:
        record = wait_for_record(request_id)
        assert (record.prompt_name, record.prompt_version, record.prompt_label) == (
            PROMPT,
            int(version),
            "production",
        )


def _percent(cell: str) -> int:
    return int(cell.split("%")[0].strip())
