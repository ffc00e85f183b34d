"""Password sign-in, throttling, CSRF, and how single sign-on claims become memberships."""

from __future__ import annotations

import pytest
from django.test import Client

from tenants import services
from tenants.models import Membership, Role
from tests.console.conftest import PASSWORD, Acme

pytestmark = pytest.mark.django_db


def test_signing_in_with_a_password_lands_on_the_tenant(acme: Acme) -> None:
    client = Client()
    response = client.post(
        "/console/login/", {"username": "acme-developer", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == f"/console/t/{acme.tenant.slug}/"
    assert "Acme Console Corp" in response.content.decode()


def test_the_sign_in_form_needs_its_csrf_token(acme: Acme) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/console/login/", {"username": "acme-developer", "password": PASSWORD})
    assert response.status_code == 403


def test_repeated_wrong_passwords_lock_the_account_out_even_with_the_right_one(
    acme: Acme, settings
) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(3):
        wrong = client.post("/console/login/", {"username": "acme-developer", "password": "nope"})
        assert wrong.status_code in (200, 429)
    locked = client.post("/console/login/", {"username": "acme-developer", "password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_sso_is_hidden_when_not_configured(db: None) -> None:
    page = Client().get("/console/login/").content.decode()
    assert "single sign-on" not in page


def test_sso_claims_make_the_memberships_exactly_what_they_list(acme: Acme) -> None:
    user = acme.users["developer"]
    services.tenant_apply(slug="umbrella", name="Umbrella")
    services.memberships_sync_from_claims(
        user=user,
        entries=["umbrella:finance", "acme-c:tenant_admin:quants", "nowhere:developer", "x:bad"],
    )
    roles = dict(Membership.objects.filter(user=user).values_list("tenant__slug", "role"))
    assert roles == {"umbrella": Role.FINANCE, "acme-c": Role.TENANT_ADMIN}
    services.memberships_sync_from_claims(user=user, entries=["umbrella:finance"])
    assert list(Membership.objects.filter(user=user).values_list("tenant__slug", flat=True)) == [
        "umbrella"
    ]
    assert not acme.team.members.filter(pk=user.pk).exists()
