"""Screenshots of the console pages, taken in the real browser.

Always taken (so a page that breaks fails here); written to docs/screenshots/ when
GATEWAY_SCREENSHOTS=1, which is how the committed ones are regenerated:
`GATEWAY_SCREENSHOTS=1 pytest tests/console/test_screenshots.py`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import People, create_key, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return DOCS if os.environ.get("GATEWAY_SCREENSHOTS") == "1" else tmp_path


def shoot(page: Any, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    assert (folder / f"{name}.png").stat().st_size > 10_000


def test_screenshots_of_the_developer_portal(
    page: Any, people: People, console_gateway: Any, shots: Path
) -> None:
    page.goto("/console/login/")
    shoot(page, shots, "01-sign-in")
    sign_in(page, people.developer)
    shoot(page, shots, "02-overview")
    key = create_key(page, "acme", "notebook")
    page.locator("#new-key-secret").evaluate("e => e.value = e.value.slice(0, 10) + '…'")
    shoot(page, shots, "03-key-created")
    for i in range(3):
        httpx.post(
            console_gateway.api_url + "/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "demo", "messages": [{"role": "user", "content": f"Question {i}"}]},
            timeout=10,
        )
    page.get_by_role("link", name="See this key's usage").click()
    shoot(page, shots, "04-key-usage")
    page.get_by_role("link", name="My keys").click()
    shoot(page, shots, "05-my-keys")
    page.get_by_role("link", name="Quickstart").click()
    shoot(page, shots, "06-quickstart")
    page.get_by_role("link", name="Playground").click()
    page.get_by_label("Your key").fill(key)
    page.get_by_label("Message").fill("Summarise our travel policy in one line.")
    page.get_by_role("button", name="Send").click()
    page.get_by_test_id("answer").wait_for()
    shoot(page, shots, "07-playground")


def test_screenshots_of_tenant_administration(
    page: Any, people: People, console_gateway: Any, shots: Path
) -> None:
    sign_in(page, people.tenant_admin)
    for link, name in (
        ("Teams", "10-admin-teams"),
        ("Members", "11-admin-members"),
        ("All keys", "12-admin-keys"),
        ("Models", "13-admin-models"),
        ("Activity log", "14-admin-activity"),
    ):
        page.get_by_role("link", name=link).click()
        shoot(page, shots, name)
    page.context.clear_cookies()
    sign_in(page, people.finance)
    page.goto("/console/t/acme/keys/")
    shoot(page, shots, "15-role-denied")
