"""Playwright (sync API) with Debian's chromium against the live gateway, and the people who sign in.

Import the fixtures into a test module or conftest: `from tests.support.browser import *`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections

from tests.support.live import LiveGateway, start_gateway

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "a console password for tests"


@dataclass(frozen=True)
class People:
    developer: str  # acme, team advisors
    tenant_admin: str  # acme
    finance: str  # acme
    outsider: str  # a developer of globex
    password: str = PASSWORD


@pytest.fixture(scope="session")
def people(world: Any, django_db_blocker: Any) -> People:
    """Committed users (the live gateway reads them) in the world's tenants.

    Modules that import this fixture each get their own session instance, so it adds only the
    members the world does not hold yet."""
    from tests.support.world import Member, add_members

    wanted = {
        "acme": [
            Member("developer", "web-ada", "web-ada@example.com", teams=["advisors"]),
            Member("tenant_admin", "web-avery", "web-avery@example.com", teams=[]),
            Member("finance", "web-finn", "web-finn@example.com", teams=[]),
        ],
        "globex": [Member("developer", "web-gus", "web-gus@example.com", teams=["ops"])],
    }
    with django_db_blocker.unblock():
        for name, members in wanted.items():
            handle = getattr(world, name)
            new = [m for m in members if m.username not in handle.users]
            if new:
                add_members(handle, new, password=PASSWORD)
    return People("web-ada", "web-avery", "web-finn", "web-gus")


@pytest.fixture(scope="session")
def console_gateway(world: Any) -> Iterator[LiveGateway]:
    """A live gateway started after the console's static files are collected (it indexes them at
    start-up), so pages get their stylesheet and htmx."""
    call_command("collectstatic", "--noinput", verbosity=0)
    live = start_gateway(GATEWAY_KEY_CACHE_SECONDS="1")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def browser(console_gateway: LiveGateway) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop marked running in this thread, which makes
    # Django refuse the test's own (plain, synchronous) ORM calls; allow them while it runs.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
            )
            yield browser
            browser.close()
            # ORM calls made meanwhile used a context-local connection: close it too.
            connections.close_all()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser: Any, console_gateway: LiveGateway) -> Iterator[Any]:
    context = browser.new_context(
        base_url=console_gateway.url, viewport={"width": 1366, "height": 860}
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console_gateway.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def sign_in(page: Any, username: str, password: str = PASSWORD) -> None:
    page.goto("/console/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_load_state()


def create_key(page: Any, tenant: str, name: str) -> str:
    """Create a key on My keys; returns the secret the page shows once."""
    page.goto(f"/console/t/{tenant}/keys/")
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("new-key")
    secret.wait_for()
    value: str = secret.input_value()
    return value


__all__ = ["browser", "console_gateway", "page", "people"]


def save_screenshot(page: Any, path: str | os.PathLike[str]) -> None:
    """The whole page as a small PNG: 128 colours are plenty for the console's flat colours and
    make a committed screenshot about a third of Chromium's size."""
    from io import BytesIO

    from PIL import Image

    image = Image.open(BytesIO(page.screenshot(full_page=True))).convert("RGB")
    small = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    Path(path).parent.mkdir(parents=True, exist_ok=True)  # as page.screenshot(path=…) does
    small.save(path, optimize=True)
