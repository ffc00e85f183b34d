"""Every console URL is declared through gateway_site.console.access, and refuses people it should refuse.

For each tenant page (views, HTMX partials, exports; GET and POST): an outsider gets 404, a member
whose role is not allowed gets 403, and neither sees any of the tenant's data.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter, UUIDConverter

from gateway_site.console.access import ALL_ROLES, access_of
from tests.console.conftest import Acme

pytestmark = pytest.mark.django_db


def console_patterns(with_route: bool = False) -> list[Any]:
    """(url name, pattern[, full route]) for every URL under /console/, whichever app adds it."""
    found: list[Any] = []

    def walk(patterns: list[Any], namespace: str, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                inner = ":".join(n for n in (namespace, pattern.namespace) if n)
                walk(pattern.url_patterns, inner, route)
            elif route.startswith("console/"):
                entry = (f"{namespace}:{pattern.name}", pattern)
                found.append((*entry, route) if with_route else entry)

    walk(get_resolver().url_patterns, "", "")
    return found


def test_every_console_url_is_declared_through_the_access_mechanism() -> None:
    patterns = console_patterns()
    assert len(patterns) > 15
    undeclared = [name for name, p in patterns if access_of(p.callback) is None]
    assert undeclared == []
    for name, pattern, route in console_patterns(with_route=True):
        is_tenant_page = access_of(pattern.callback).kind == "tenant"
        assert is_tenant_page == ("<slug:tenant_slug>" in route), name
    public = {name for name, p in patterns if access_of(p.callback).kind == "public"}
    assert public == {
        "console:login",
        "console:logout",
        "console:oidc_start",
        "console:oidc_callback",
    }


def _url(name: str, pattern: URLPattern, acme: Acme, tenant_slug: str = "") -> str:
    """The page's URL for acme's objects; arguments naming other objects get a sample value."""
    values = {
        "key_id": acme.key.pk,
        "team_id": acme.team.pk,
        "membership_id": acme.membership.pk,
        "fmt": "csv",
        "export_id": "00000000-0000-4000-8000-000000000000",
        "name": "a-prompt",
        "label": "production",
        "pin_id": 1,
        "number": 1,
        "kind": "limit",
        "rule_id": 1,
    }
    samples = {IntConverter: 1, UUIDConverter: "00000000-0000-4000-8000-000000000000"}
    kwargs: dict[str, Any] = {
        arg: values.get(arg, samples.get(type(converter), "sample"))
        for arg, converter in pattern.pattern.converters.items()
    }
    kwargs["tenant_slug"] = tenant_slug or acme.tenant.slug
    return reverse(name, kwargs=kwargs)


def _tenant_pages() -> list[tuple[str, URLPattern, frozenset[str]]]:
    return [
        (name, p, access_of(p.callback).roles)  # type: ignore[union-attr]
        for name, p in console_patterns()
        if access_of(p.callback).kind == "tenant"  # type: ignore[union-attr]
    ]


def _secrets(acme: Acme, viewer: str = "") -> list[str]:
    """What the page must not show: tenant data, and members other than the viewer."""
    members = [f"acme-{role}" for role in ALL_ROLES if role != viewer]
    return [acme.tenant.name, acme.key.prefix, acme.key.name, acme.team.name, *members]


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_outsider_gets_404_and_no_data_on_every_tenant_page(acme: Acme, method: str) -> None:
    client = Client()
    client.force_login(acme.users["outsider"])
    for name, pattern, _ in _tenant_pages():
        response = getattr(client, method)(_url(name, pattern, acme), HTTP_HX_REQUEST="true")
        if response.status_code == 405:
            # The view refuses the method before anything else: the same for any tenant, so
            # it tells nothing about this one.
            nowhere = getattr(client, method)(_url(name, pattern, acme, "no-such-tenant"))
            assert nowhere.status_code == 405, name
        else:
            assert response.status_code == 404, name
        body = response.content.decode()
        assert not any(secret in body for secret in _secrets(acme)), name
    acme.key.refresh_from_db()
    assert acme.key.revoked_at is None


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_member_without_the_role_gets_403_and_no_data(acme: Acme, method: str) -> None:
    checked = 0
    for role in sorted(ALL_ROLES - {"platform_admin"}):
        client = Client()
        client.force_login(acme.users[role])
        for name, pattern, roles in _tenant_pages():
            if role in roles:
                continue
            response = getattr(client, method)(_url(name, pattern, acme))
            assert response.status_code in (403, 405), (role, name)  # 405: see above
            body = response.content.decode()
            assert not any(secret in body for secret in _secrets(acme, role)), (role, name)
            checked += 1
    assert checked > 20
    acme.key.refresh_from_db()
    assert acme.key.revoked_at is None


def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in(acme: Acme) -> None:
    for name, pattern, _ in _tenant_pages():
        response = Client().get(_url(name, pattern, acme), HTTP_HX_REQUEST="true")
        if response.status_code == 405:
            continue  # a POST-only view refusing GET before anything else
        assert response.status_code == 302, name
        assert response["Location"].startswith("/console/login/?next=")
        assert response["HX-Redirect"] == response["Location"]


def test_a_platform_admin_reaches_every_tenant_page(acme: Acme) -> None:
    client = Client()
    client.force_login(acme.users["platform_admin"])
    for name, pattern, _ in _tenant_pages():
        if name.endswith(("_revoke", "_rotate", "_remove", "key_create")):
            continue  # writes: covered by their own tests
        response = client.get(_url(name, pattern, acme))
        # 404 only where the URL names an object this test did not create (an audit record).
        names_other_object = bool(
            set(pattern.pattern.regex.groupindex)
            - {"tenant_slug", "key_id", "team_id", "membership_id"}
        )
        assert response.status_code in ((200, 404, 405) if names_other_object else (200, 405)), name


def test_an_unknown_tenant_is_a_404_even_for_a_member_elsewhere(acme: Acme) -> None:
    client = Client()
    client.force_login(acme.users["developer"])
    assert client.get("/console/t/no-such-tenant/keys/").status_code == 404
