"""Three kinds of people for every console test: members of acme in each role, and an outsider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User

from tenants.models import ApiKey, Membership, Role, Team, Tenant
from tests.support.world import EVERY_ROLE, Key, Member, build_tenant

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
    acme = build_tenant(
        "acme-c",
        name="Acme Console Corp",
        teams=["quants"],
        roles=EVERY_ROLE,
        people="acme",
        password=PASSWORD,
        keys=[Key("quant-notebook", owner=Role.DEVELOPER)],
    )
    initrode = build_tenant(
        "initrode",
        teams=["ops"],
        members=[Member(Role.DEVELOPER, "initrode-dev", "dev@initrode.example")],
        password=PASSWORD,
        keys=[Key("ops-bot", owner="initrode-dev")],
    )
    users = {**acme.users, "outsider": initrode.users["initrode-dev"]}
    # The platform admin's role is held in the other tenant: it still reaches acme.
    Membership.objects.filter(user=users[Role.PLATFORM_ADMIN]).update(tenant=initrode.tenant)
    return Acme(
        tenant=acme.tenant,
        team=acme.team,
        users=users,
        key=acme.keys["quant-notebook"].api_key,
        other_key=initrode.keys["ops-bot"].api_key,
        membership=Membership.objects.get(user=users[Role.DEVELOPER], tenant=acme.tenant),
    )


@pytest.fixture
def acme(db: None, settings: Any) -> Acme:
    # In-process tests only: a fast hasher (the live gateway keeps the real ones).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_acme()


# The browser fixtures (Playwright, chromium, the live gateway, committed users).
from tests.support.browser import browser, console_gateway, page, people  # noqa: E402, F401
