"""Single sign-on end to end: a real OpenID provider on loopback, the live gateway, a real browser."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from audit.activity.models import ActivityEvent
from tenants.models import Membership
from tests.support.browser import save_screenshot
from tests.support.live import LiveGateway, start_gateway
from tests.support.oidc_provider import OIDCProvider

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


@pytest.fixture(scope="module")
def idp() -> Iterator[OIDCProvider]:
    provider = OIDCProvider(
        client_id="gateway-console",
        client_secret="idp-client-secret",
        users={
            "sso-sam": {"email": "sam@example.com", "gateway_roles": ["acme:developer:advisors"]},
            "sso-stranger": {"email": "x@example.com", "gateway_roles": ["elsewhere:developer"]},
            "sso-noroles": {"email": "n@example.com"},
        },
    ).start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def sso_gateway(idp: OIDCProvider, console_gateway: LiveGateway) -> Iterator[LiveGateway]:
    live = start_gateway(**idp.env())
    yield live
    live.stop()


@pytest.fixture
def sso_page(browser: Any, sso_gateway: LiveGateway) -> Iterator[Any]:
    context = browser.new_context(base_url=sso_gateway.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def sign_in_through_the_idp(page: Any, username: str) -> None:
    page.goto("/console/login/")
    if os.environ.get("GATEWAY_SCREENSHOTS") == "1":
        save_screenshot(page, DOCS / "01-sign-in-with-sso.png")
    page.get_by_role("link", name="Sign in with single sign-on").click()
    page.get_by_role("heading", name="Test identity provider").wait_for()
    page.get_by_label("Username").fill(username)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state()


def test_a_user_signs_in_through_the_identity_provider_with_the_role_it_grants(
    sso_page: Any,
) -> None:
    sign_in_through_the_idp(sso_page, "sso-sam")
    assert sso_page.url.endswith("/console/t/acme/")
    assert sso_page.get_by_role("heading", name="Acme Wealth").is_visible()
    assert sso_page.locator(".role-badge").inner_text() == "Developer"
    membership = Membership.objects.get(user__username="sso-sam")
    assert (membership.tenant.slug, membership.role) == ("acme", "developer")
    assert membership.user.teams.filter(slug="advisors").exists()
    assert not membership.user.has_usable_password()
    event = ActivityEvent.objects.get(action="member.sso", actor_user=membership.user)
    assert event.details == {"role": "developer", "teams": ["advisors"]}
    # The role it grants is all it grants.
    assert sso_page.goto("/console/t/acme/admin/members/").status == 403


def test_a_user_whose_claims_name_no_known_tenant_sees_no_tenant(sso_page: Any) -> None:
    sign_in_through_the_idp(sso_page, "sso-stranger")
    assert "You are not a member of any tenant yet" in sso_page.content()
    assert sso_page.goto("/console/t/acme/").status == 404


def test_a_user_without_the_roles_claim_is_refused(sso_page: Any) -> None:
    sign_in_through_the_idp(sso_page, "sso-noroles")
    assert "/console/login/" in sso_page.url
    assert "Single sign-on did not succeed" in sso_page.content()
