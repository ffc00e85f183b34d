"""Drill: a newcomer gets from sign-in to a working request, and sees it, in under two minutes.

In a real browser, with no docs: sign in as a developer, create a key, copy the Python snippet,
run it, and find the request on the key's usage page.
Run alone: `pytest tests/drills/test_developer_onboarding.py`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from audit.models import AuditRecord
from tests.support.browser import (  # noqa: F401 - fixtures
    PASSWORD,
    browser,
    console_gateway,
    page,
    people,
    sign_in,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

BUDGET_SECONDS = 120


@pytest.fixture(scope="module")
def newcomer(world: Any, django_db_blocker: Any) -> str:
    from tenants import services
    from tenants.models import Team

    with django_db_blocker.unblock():
        advisors = Team.objects.get(tenant__slug="acme", slug="advisors")
        services.member_apply(
            tenant=advisors.tenant,
            username="nia-newcomer",
            email="nia@example.com",
            role="developer",
            teams=[advisors],
            password=PASSWORD,
        )
    return "nia-newcomer"


def test_a_newcomer_makes_a_first_request_and_sees_it_within_two_minutes(
    page: Any,  # noqa: F811 - the imported fixture
    newcomer: str,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    sign_in(page, newcomer)
    page.get_by_role("link", name="My keys").click()
    page.get_by_label("Name").fill("first-key")
    page.get_by_role("button", name="Create key").click()
    prefix = page.get_by_test_id("new-key").input_value()[:10]

    page.get_by_role("button", name="Copy Python (openai SDK)").click()
    snippet = page.evaluate("navigator.clipboard.readText()")
    assert "from openai import OpenAI" in snippet
    script = tmp_path / "first_request.py"
    script.write_text(snippet)
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    assert "Mock reply to: Hello, gateway" in run.stdout

    page.get_by_role("link", name="See this key's usage").click()
    assert page.get_by_test_id("usage-requests").inner_text() == "1"
    record = AuditRecord.objects.get(api_key__prefix=prefix)
    assert page.get_by_text(record.request_id).is_visible()
    elapsed = time.monotonic() - started
    assert elapsed < BUDGET_SECONDS, f"took {elapsed:.1f} s"
    print(f"\nnewcomer onboarding: sign-in to seen request in {elapsed:.1f} s")
