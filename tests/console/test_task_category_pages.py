"""Task categories in the console: platform admins only; create never overwrites, edit never creates."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from audit.activity.models import ActivityEvent
from routing.evaluations.models import TaskCategory
from routing.evaluations.services import category_upsert
from tests.console.conftest import Acme

pytestmark = pytest.mark.django_db


@pytest.fixture
def platform(acme: Acme) -> Client:
    category_upsert(name="code", threshold=0.8, pattern=r"\bdef\b")
    client = Client()
    client.force_login(acme.users["platform_admin"])
    return client


def _url(acme: Acme, page: str = "") -> str:
    return f"/console/t/{acme.tenant.slug}/routing-quality/categories/{page}"


def _data(**overrides: Any) -> dict[str, Any]:
    return {"name": "summarise", "threshold": "0.7", "priority": "50", **overrides}


@pytest.mark.parametrize("role", ["developer", "tenant_admin", "finance", "compliance"])
def test_only_platform_admins_edit_task_categories(acme: Acme, platform: Client, role: str) -> None:
    client = Client()
    client.force_login(acme.users[role])
    assert client.get(_url(acme)).status_code == 403
    assert client.get(_url(acme, "code/")).status_code == 403
    assert client.post(_url(acme), _data()).status_code == 403
    assert not TaskCategory.objects.filter(name="summarise").exists()


def test_a_category_is_created_listed_and_logged(acme: Acme, platform: Client) -> None:
    assert platform.post(_url(acme), _data(strict="on")).status_code == 302
    category = TaskCategory.objects.get(name="summarise")
    assert (category.threshold, category.strict, category.priority) == (0.7, True, 50)
    assert "summarise" in platform.get(_url(acme)).content.decode()
    assert ActivityEvent.objects.filter(
        action="task_category.create", actor_label="acme-platform_admin"
    ).exists()
    assert (
        "/routing-quality/categories/"
        in platform.get(f"/console/t/{acme.tenant.slug}/").content.decode()
    )


def test_create_never_overwrites_and_edit_never_creates(acme: Acme, platform: Client) -> None:
    response = platform.post(_url(acme), _data(name="code", threshold="0.1"))
    assert response.status_code == 409
    assert TaskCategory.objects.get(name="code").threshold == 0.8
    assert platform.post(_url(acme, "nope/"), _data(name="nope")).status_code == 404
    assert not TaskCategory.objects.filter(name="nope").exists()


def test_an_edit_changes_the_category_and_a_bad_pattern_is_a_field_error(
    acme: Acme, platform: Client
) -> None:
    response = platform.post(_url(acme, "code/"), _data(name="other", threshold="0.9"))
    assert response.status_code == 302
    assert TaskCategory.objects.get(name="code").threshold == 0.9
    assert not TaskCategory.objects.filter(name="other").exists()
    response = platform.post(_url(acme, "code/"), _data(pattern="(unclosed"))
    assert response.status_code == 400
    assert "regular expression" in response.context["form"].errors["pattern"][0]
