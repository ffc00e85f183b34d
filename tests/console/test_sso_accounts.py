"""Which account a single sign-on lands in, and how long its session lasts.

The identity provider's answer is faked in-process (token, signature and userinfo), so these tests
look only at what the gateway does with the claims it is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import SuspiciousOperation
from django.test import Client, RequestFactory

from gateway_site.console.oidc import ConsoleOIDCBackend
from tenants import services
from tenants.models import Membership, Role
from tests.console.conftest import Acme
from tests.support.oidc_provider import OIDCProvider

pytestmark = pytest.mark.django_db

OIDC_BACKEND = "gateway_site.console.oidc.ConsoleOIDCBackend"


@pytest.fixture
def sso(settings: Any) -> None:
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, OIDC_BACKEND]


def sign_in(claims: dict[str, Any]) -> User | None:
    """The backend's whole callback step, with the provider's answer being `claims`."""
    backend = ConsoleOIDCBackend()
    request = RequestFactory().get("/console/oidc/callback/", {"code": "c", "state": "s"})
    request.session = SessionStore()
    tokens = {"id_token": "i", "access_token": "a"}
    with (
        mock.patch.object(backend, "get_token", return_value=tokens),
        mock.patch.object(backend, "verify_token", return_value={"sub": "x"}),
        mock.patch.object(backend, "get_userinfo", return_value=claims),
    ):
        user: User | None = backend.authenticate(request, nonce="n")
    return user


def test_an_identity_provider_user_never_lands_in_a_superusers_account(
    acme: Acme, sso: None
) -> None:
    root = User.objects.create_superuser("root", "root@example.com", "a local password")
    claims = {"preferred_username": "root", "gateway_roles": ["acme-c:developer"]}
    assert sign_in(claims) is None
    root.refresh_from_db()
    assert root.is_superuser and not Membership.objects.filter(user=root).exists()


def test_an_identity_provider_user_never_lands_in_an_account_with_a_password(
    acme: Acme, sso: None
) -> None:
    # acme's tenant admin signs in with a password; an IdP user naming itself so is someone else.
    admin = acme.users[Role.TENANT_ADMIN]
    claims = {"preferred_username": admin.username, "gateway_roles": ["acme-c:developer"]}
    assert sign_in(claims) is None
    assert Membership.objects.get(user=admin).role == Role.TENANT_ADMIN


def test_a_tenant_admin_cannot_plant_a_password_account_for_a_user_of_another_tenant(
    acme: Acme, sso: None
) -> None:
    # initrode's admin creates "alice", with a password they know, before acme's real alice (an
    # acme tenant admin at the provider) first signs in through SSO.
    initrode = acme.other_key.tenant
    services.member_create(
        tenant=initrode,
        username="alice",
        email="",
        role=Role.DEVELOPER,
        teams=[],
        password="x" * 12,
    )
    assert (
        sign_in({"preferred_username": "alice", "gateway_roles": ["acme-c:tenant_admin"]}) is None
    )
    assert not Membership.objects.filter(tenant=acme.tenant, user__username="alice").exists()


def test_an_account_made_for_sso_is_signed_into(acme: Acme, sso: None) -> None:
    sam = User.objects.create_user("sam")  # no password: made to sign in by SSO
    claims = {"preferred_username": "sam", "gateway_roles": ["acme-c:developer"]}
    assert sign_in(claims) == sam
    assert Membership.objects.get(user=sam).role == Role.DEVELOPER


def test_an_unverified_email_does_not_name_the_account(acme: Acme, sso: None) -> None:
    sso_user = User.objects.create_user("pat@acme.example")
    claims = {
        "email": "pat@acme.example",
        "email_verified": False,
        "gateway_roles": ["acme-c:finance"],
    }
    assert sign_in(claims) is None
    assert not Membership.objects.filter(user=sso_user).exists()
    assert sign_in({**claims, "email_verified": True}) == sso_user


def test_a_deactivated_sso_users_session_ends(acme: Acme, sso: None) -> None:
    sam = User.objects.create_user("sam")
    Membership.objects.create(user=sam, tenant=acme.tenant, role=Role.DEVELOPER)
    client = Client()
    client.force_login(sam, backend=OIDC_BACKEND)
    assert client.get(f"/console/t/{acme.tenant.slug}/").status_code == 200
    User.objects.filter(pk=sam.pk).update(is_active=False)
    response = client.get(f"/console/t/{acme.tenant.slug}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/console/login/")


def verify(audience: Any, settings: Any) -> dict[str, Any]:
    """The backend's check of a correctly signed token whose audience is `audience`."""
    settings.OIDC_RP_CLIENT_ID = "gateway-console"
    backend = ConsoleOIDCBackend()
    payload = {"sub": "s", "nonce": "n", "aud": audience}
    with (
        mock.patch.object(backend, "retrieve_matching_jwk", return_value=None),
        mock.patch.object(backend, "get_payload_data", return_value=payload),
    ):
        checked: dict[str, Any] = backend.verify_token("t", nonce="n")
    return checked


@pytest.mark.parametrize("audience", ["another-client", ["another-client", "a-third"], None])
def test_an_id_token_minted_for_another_client_is_refused(settings: Any, audience: Any) -> None:
    with pytest.raises(SuspiciousOperation):
        verify(audience, settings)


@pytest.mark.parametrize("audience", ["gateway-console", ["gateway-console", "another-client"]])
def test_an_id_token_minted_for_this_client_is_accepted(settings: Any, audience: Any) -> None:
    assert verify(audience, settings)["aud"] == audience


@pytest.fixture
def idp(settings: Any) -> Iterator[OIDCProvider]:
    provider = OIDCProvider(
        client_id="gateway-console",
        client_secret="idp-client-secret",
        users={
            "sam": {"email": "sam@example.com", "gateway_roles": ["acme-c:developer"]},
            "acme-tenant_admin": {"gateway_roles": ["acme-c:developer"]},
        },
    ).start()
    settings.OIDC_RP_CLIENT_ID = provider.client_id
    settings.OIDC_RP_CLIENT_SECRET = provider.client_secret
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{provider.issuer}/authorize"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{provider.issuer}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{provider.issuer}/userinfo"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{provider.issuer}/jwks"
    yield provider
    provider.stop()


def code_flow(client: Client, username: str) -> Any:
    """The browser's part: start at the console, sign in at the provider, come back with a code."""
    start = client.get("/console/oidc/authenticate/")
    url = urlparse(start["Location"])
    form = {k: v[0] for k, v in parse_qs(url.query).items()} | {"username": username}
    answer = requests.post(
        f"{url.scheme}://{url.netloc}/authorize", data=form, allow_redirects=False, timeout=10
    )
    back = urlparse(answer.headers["Location"])
    return client.get(f"{back.path}?{back.query}")


def test_the_whole_code_flow_signs_in_an_sso_user_and_refuses_a_password_account(
    acme: Acme, sso: None, idp: OIDCProvider
) -> None:
    client = Client()
    code_flow(client, "sam")
    assert client.get(f"/console/t/{acme.tenant.slug}/").status_code == 200
    other = Client()
    refused = code_flow(other, "acme-tenant_admin")
    assert refused["Location"] == "/console/login/?sso=failed"
    assert other.get(f"/console/t/{acme.tenant.slug}/").status_code == 302


@pytest.mark.parametrize(
    "look_alike",
    [
        lambda name: "\u202e" + name,  # a right-to-left override before it
        lambda name: "\uff50" + name[1:],  # a full-width first letter, which sign-in folds
        str.upper,  # the same name in other case
    ],
    ids=["right-to-left override", "full-width letter", "other case"],
)
def test_an_identity_provider_user_never_gets_a_look_alike_of_an_existing_account(
    acme: Acme, sso: None, look_alike: Any
) -> None:
    username = look_alike(acme.users[Role.TENANT_ADMIN].username)
    claims = {"preferred_username": username, "gateway_roles": ["acme-c:developer"]}

    assert sign_in(claims) is None
    assert not User.objects.filter(username=username).exists()
