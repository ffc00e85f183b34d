"""Unknown records, refusals, stale forms and server errors are console pages, never Django's bare
ones: the frame (stylesheet, top bar, the tenant's navigation when there is one) and a way back."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tenants.models import Role
from tests.console.conftest import Acme, make_acme

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def acme(settings: Any) -> Acme:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_acme()


def _as(acme: Acme, role: str, **options: Any) -> Client:
    client = Client(**options)
    client.force_login(acme.users[role])
    return client


def _assert_styled(body: str) -> None:
    assert "console/console.css" in body
    assert 'class="topbar"' in body
    assert "Console home" in body or "Back to the console" in body
    assert "Traceback" not in body and "Request Method" not in body


def test_an_unknown_record_is_a_styled_404_in_the_tenants_frame(acme: Acme) -> None:
    url = f"/console/t/{acme.tenant.slug}/compliance/records/req_does_not_exist/"

    response = _as(acme, Role.COMPLIANCE).get(url)

    body = response.content.decode()
    assert response.status_code == 404
    _assert_styled(body)
    assert "No such record in this tenant." in body
    assert 'class="sidenav"' in body  # the tenant's navigation stays
    assert f"Back to {acme.tenant.name}" in body


@pytest.mark.parametrize(
    "path",
    ["/console/no-such-page/", "/console/t/acme-c/finance/teams/999999/", "/nowhere"],
)
def test_an_unknown_address_is_a_styled_404(acme: Acme, path: str) -> None:
    response = _as(acme, Role.FINANCE).get(path)

    body = response.content.decode()
    assert response.status_code == 404
    _assert_styled(body)
    assert "'tried'" not in body and "URLconf" not in body


def test_a_page_outside_the_role_is_a_styled_403(acme: Acme) -> None:
    response = _as(acme, Role.DEVELOPER).get(f"/console/t/{acme.tenant.slug}/compliance/")

    assert response.status_code == 403
    _assert_styled(response.content.decode())


def test_a_stale_form_is_a_styled_403_that_says_what_to_do(acme: Acme) -> None:
    client = _as(acme, Role.TENANT_ADMIN, enforce_csrf_checks=True)

    response = client.post(f"/console/t/{acme.tenant.slug}/admin/teams/", {"name": "x"})

    body = response.content.decode()
    assert response.status_code == 403
    _assert_styled(body)
    assert "Reload the page and send it again." in body
    assert "CSRF verification failed" not in body


def test_a_server_error_is_a_styled_500_without_details(
    acme: Acme, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("secret internals: connection string postgres://x")

    monkeypatch.setattr("audit.views.audit_record_get", broken)
    client = _as(acme, Role.COMPLIANCE, raise_request_exception=False)

    response = client.get(f"/console/t/{acme.tenant.slug}/compliance/records/req_x/")

    body = response.content.decode()
    assert response.status_code == 500
    _assert_styled(body)
    assert "Something went wrong" in body
    assert "secret internals" not in body


def test_a_server_error_whose_page_cannot_render_still_answers_in_the_console_look(
    acme: Acme, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("the database is gone")

    monkeypatch.setattr("audit.views.audit_record_get", broken)
    monkeypatch.setattr(
        "gateway_site.console.context_processors.nav_for", broken
    )  # the frame fails too
    client = _as(acme, Role.COMPLIANCE, raise_request_exception=False)

    response = client.get(f"/console/t/{acme.tenant.slug}/compliance/records/req_x/")

    body = response.content.decode()
    assert response.status_code == 500
    assert "console/console.css" in body and "Something went wrong" in body
    assert "the database is gone" not in body
