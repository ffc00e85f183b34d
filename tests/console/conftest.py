"""Three kinds of people for every console test: members of acme in each role, and an outsider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User

from tenants import services
from tenants.models import ApiKey, Membership, Role, Team, Tenant

PASSWORD = "correct horse battery staple"


@dataclass
class Acme:
    tenant: Tenant
    team: Team
    users: dict[str, User]  # by role, plus "outsider" (a developer of another tenant)
    key: ApiKey  # the developer's key in acme
    other_key: ApiKey  # the outsider's key in their own tenant
    membership: Membership  # the developer's membership


def make_acme() -> Acme:
    tenant = services.tenant_apply(slug="acme-c", name="Acme Console Corp")
    team = services.team_apply(tenant=tenant, slug="quants", name="Quants", allowed_models=[])
    users = {
        role: services.member_apply(
            tenant=tenant,
            username=f"acme-{role}",
            email=f"{role}@acme.example",
            role=role,
            teams=[team],
            password=PASSWORD,
        )
        for role in Role.values
    }
    other = services.tenant_apply(slug="initrode", name="Initrode")
    other_team = services.team_apply(tenant=other, slug="ops", name="Ops", allowed_models=[])
    users["outsider"] = services.member_apply(
        tenant=other,
        username="initrode-dev",
        email="dev@initrode.example",
        role=Role.DEVELOPER,
        teams=[other_team],
        password=PASSWORD,
    )
    # The platform admin's role is held in the other tenant: it still reaches acme.
    Membership.objects.filter(user=users[Role.PLATFORM_ADMIN]).update(tenant=other)
    key, _ = services.key_create(team=team, name="quant-notebook", owner=users[Role.DEVELOPER])
    other_key, _ = services.key_create(team=other_team, name="ops-bot", owner=users["outsider"])
    return Acme(
        tenant=tenant,
        team=team,
        users=users,
        key=key,
        other_key=other_key,
        membership=Membership.objects.get(user=users[Role.DEVELOPER], tenant=tenant),
    )


@pytest.fixture
def acme(db: None, settings: Any) -> Acme:
    # In-process tests only: a fast hasher (the live gateway keeps the real ones).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_acme()


# The browser fixtures (Playwright, chromium, the live gateway, committed users).
from tests.support.browser import browser, console_gateway, page, people  # noqa: E402, F401
