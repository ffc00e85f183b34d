"""Cross-site request forgery: a page on another site cannot make a signed-in admin's browser
change anything. Every console URL (from the resolver) that accepts POST is posted to by a
signed-in platform admin without a token, as a plain form and as an HTMX request: 403, and the
tenant's rows are unchanged. The same POST with a token is the control: it is not refused, so
the 403 comes from the CSRF check and not from the page refusing the method or the person.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from tests.security.test_tenant_walk import (
    Walk,
    build_walk,
    changed,
    console_form,
    console_pages,
    console_url,
    snapshot,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def walk(db: None, settings: Any) -> Walk:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return build_walk()


TOKEN = "walkcsrftokenwalkcsrftokenwalk12"  # 32 characters: a valid unmasked secret


def _admin_client(walk: Walk) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(walk.acme.users["platform_admin"])
    client.cookies["csrftoken"] = TOKEN
    return client


def _url(page: Any, walk: Walk) -> str:
    if "tenant_slug" in page.params:
        return console_url(page, walk.victim.path_values(), walk.victim.tenant.slug)
    return reverse(page.name)


def _post(client: Client, url: str, data: dict[str, Any], **headers: str) -> Any:
    with transaction.atomic():  # each attempt starts from the same world
        response = client.post(url, data, **headers)
        transaction.set_rollback(True)
    return response


def test_it_refuses_a_forged_post_to_every_console_url_that_takes_one(walk: Walk) -> None:
    client = _admin_client(walk)
    form = console_form(walk.victim)
    accepting, problems = [], []
    for page in console_pages():
        url = _url(page, walk)
        control = _post(client, url, {**form, "csrfmiddlewaretoken": TOKEN})
        if control.status_code == 405:
            continue  # takes no POST
        if control.status_code == 403:
            problems.append(f"{url}: refused even with a token; the walk cannot test it")
            continue
        accepting.append(url)
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            with transaction.atomic():
                before = snapshot(walk.victim.tenant)
                response = client.post(url, form, **headers)
                after = snapshot(walk.victim.tenant)
                transaction.set_rollback(True)
            where = f"POST {url}{' (htmx)' if headers else ''} without a token"
            if response.status_code != 403:
                problems.append(f"{where}: {response.status_code}")
            if changed(before, after):
                problems.append(f"{where}: changed {changed(before, after)}")
    assert len(accepting) >= 20, accepting
    assert not problems, "\n".join(problems)


def test_it_refuses_a_token_from_another_session(walk: Walk) -> None:
    """A token the attacker got from their own session does not pass with the victim's cookie."""
    client = _admin_client(walk)
    url = reverse("console:admin_teams", kwargs={"tenant_slug": walk.victim.tenant.slug})
    response = _post(
        client,
        url,
        {"slug": "forged", "name": "Forged", "csrfmiddlewaretoken": "x" * 32},
        HTTP_X_CSRFTOKEN="y" * 32,
    )
    assert response.status_code == 403


def test_the_management_api_ignores_a_console_session(walk: Walk) -> None:
    """The API authenticates by key only, so a forged request riding on a cookie gets 401."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(walk.acme.users["platform_admin"])
    before = snapshot(walk.victim.tenant)
    response = client.post(
        f"/api/v1/tenants/{walk.victim.tenant.slug}/teams",
        {"slug": "forged", "name": "Forged"},
        content_type="application/json",
    )
    assert response.status_code == 401
    assert not changed(before, snapshot(walk.victim.tenant))
