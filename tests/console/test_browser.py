"""The console in a real browser (headless chromium) against the live gateway."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import openai
import pytest

from tests.support.browser import People, create_key, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


def ask(gateway: Any, key: str) -> httpx.Response:
    return httpx.post(
        gateway.api_url + "/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "demo", "messages": [{"role": "user", "content": "ping"}]},
        timeout=10,
    )


def test_a_developer_signs_in_creates_a_key_and_revokes_it(
    page: Any, people: People, console_gateway: Any
) -> None:
    sign_in(page, people.developer)
    assert page.get_by_role("heading", name="Acme Wealth").is_visible()
    key = create_key(page, "acme", f"browser-{uuid.uuid4().hex[:6]}")
    api = openai.OpenAI(base_url=console_gateway.api_url, api_key=key, max_retries=0)
    reply = api.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content

    page.get_by_role("link", name="See this key's usage").click()
    assert page.get_by_test_id("usage-requests").inner_text() == "1"
    assert ask(console_gateway, key).status_code == 200  # the key is now in the worker's cache
    page.get_by_role("button", name="Revoke key").click()
    page.get_by_text("is revoked").wait_for()
    revoked_at = time.monotonic()
    while (status := ask(console_gateway, key).status_code) == 200:
        time.sleep(0.05)
    refused_after = time.monotonic() - revoked_at
    assert status == 401
    # The worker trusts a cached key for GATEWAY_KEY_CACHE_SECONDS (1 s); allow for scheduling.
    assert refused_after < 1.25, refused_after
    assert "revoked" in ask(console_gateway, key).json()["error"]["message"]


def test_a_tenant_admin_revokes_any_key_in_place_with_htmx(
    page: Any, people: People, console_gateway: Any
) -> None:
    sign_in(page, people.developer)
    name = f"to-revoke-{uuid.uuid4().hex[:6]}"
    key = create_key(page, "acme", name)
    page.context.clear_cookies()
    sign_in(page, people.tenant_admin)
    page.get_by_role("link", name="All keys").click()
    page.on("dialog", lambda dialog: dialog.accept())
    row = page.locator("tr", has_text=name)
    url_before = page.url
    row.get_by_role("button", name="Revoke").click()
    page.locator("tr", has_text=name).get_by_text("Revoked").wait_for()
    assert page.url == url_before  # swapped in place, no page load
    deadline = time.monotonic() + 1.25
    while ask(console_gateway, key).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ask(console_gateway, key).status_code == 401


def test_roles_are_refused_in_the_browser(page: Any, people: People) -> None:
    sign_in(page, people.finance)
    assert page.get_by_role("link", name="My keys").count() == 0
    response = page.goto("/console/t/acme/keys/")
    assert response.status == 403
    assert page.get_by_role("heading", name="Not allowed").is_visible()
    page.context.clear_cookies()
    sign_in(page, people.outsider)
    response = page.goto("/console/t/acme/")
    assert response.status == 404
    assert "Acme" not in page.content()


def test_the_playground_answers_through_the_gateway(
    page: Any, people: People, world: Any, console_gateway: Any
) -> None:
    sign_in(page, people.developer)
    page.get_by_role("link", name="Playground").click()
    page.get_by_label("Your key").fill(world.key)
    page.get_by_label("Model").select_option("demo")
    page.get_by_label("Message").fill("What is a gateway?")
    page.get_by_role("button", name="Send").click()
    answer = page.get_by_test_id("answer")
    answer.wait_for()
    assert "Mock reply to: What is a gateway?" in answer.inner_text()
    assert page.get_by_label("Your key").input_value() == world.key  # HTMX kept the page
    page.get_by_label("Your key").fill("gw-not-a-key")
    page.get_by_role("button", name="Send").click()
    page.get_by_role("alert").wait_for()
    assert "401" in page.get_by_role("alert").inner_text()


def test_signing_in_with_a_wrong_password_says_so(page: Any, people: People) -> None:
    sign_in(page, people.developer, password="wrong password")
    assert page.get_by_role("alert").is_visible()
    assert "/console/login/" in page.url


def test_every_snippet_on_the_new_key_page_works_as_pasted(
    page: Any, people: People, tmp_path: Any
) -> None:
    sign_in(page, people.developer)
    create_key(page, "acme", f"snippets-{uuid.uuid4().hex[:6]}")
    code = {
        slug: page.locator(f"#code-{slug}").inner_text()
        for slug in ("curl", "python-openai", "python-anthropic")
    }
    curl = subprocess.run(
        ["sh", "-c", code["curl"]], capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(curl.stdout)["choices"][0]["message"]["content"].startswith("Mock reply")
    for slug in ("python-openai", "python-anthropic"):
        script = tmp_path / f"{slug}.py"
        script.write_text(code[slug])
        run = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
        )
        assert run.returncode == 0, (slug, run.stderr)
        assert "Hello, gateway" in run.stdout, slug


def test_rotating_without_grace_stops_the_old_key_and_the_new_one_works(
    page: Any, people: People, console_gateway: Any
) -> None:
    sign_in(page, people.developer)
    name = f"rotate-{uuid.uuid4().hex[:6]}"
    old = create_key(page, "acme", name)
    assert ask(console_gateway, old).status_code == 200
    page.get_by_role("link", name="See this key's usage").click()
    page.get_by_label("Old key keeps working for").select_option("0")
    page.get_by_role("button", name="Rotate key").click()
    new = page.get_by_test_id("new-key").input_value()
    assert new != old and page.get_by_text("has stopped working").is_visible()
    deadline = time.monotonic() + 1.25
    while ask(console_gateway, old).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ask(console_gateway, old).status_code == 401
    assert ask(console_gateway, new).status_code == 200
