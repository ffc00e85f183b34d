"""A list filter the API does not know, or cannot read, is refused: never a wider list."""

from __future__ import annotations

from typing import Any

import pytest

from tenants import services as tenant_services
from tests.management.conftest import Api, Side

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def two_teams(ours: Side) -> Side:
    other = tenant_services.team_apply(
        tenant=ours.tenant, slug="hooli-ops", name="Hooli Ops", allowed_models=[]
    )
    tenant_services.key_create(team=other, name="ops backend")
    return ours


def _names(response: Any) -> list[str]:
    return [item["name"] for item in response.json()["items"]]


def test_a_known_team_filter_narrows_the_keys(as_ours: Api, two_teams: Side) -> None:
    response = as_ours.get(f"/tenants/{two_teams.tenant.slug}/keys?team=hooli-ops")

    assert response.status_code == 200
    assert _names(response) == ["ops backend"]


def test_a_misspelt_filter_is_refused_not_ignored(as_ours: Api, two_teams: Side) -> None:
    response = as_ours.get(f"/tenants/{two_teams.tenant.slug}/keys?tem=hooli-ops")

    error = response.json()["error"]
    assert response.status_code == 422
    assert error["code"] == "validation_error"
    assert error["fields"][0]["field"] == "tem"
    assert "team" in error["fields"][0]["message"]  # it names what the endpoint takes
    assert "items" not in response.json()


def test_a_filter_of_the_wrong_type_is_refused(as_ours: Api, two_teams: Side) -> None:
    response = as_ours.get(f"/tenants/{two_teams.tenant.slug}/keys?include_revoked=perhaps")

    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "include_revoked"


@pytest.mark.parametrize(
    "path", ["/tenants/hooli/activity?actoin=key.", "/tenants/hooli/teams?team=x"]
)
def test_every_list_refuses_unknown_parameters(as_ours: Api, ours: Side, path: str) -> None:
    assert as_ours.get(path).status_code == 422


def test_paging_parameters_are_still_taken(as_ours: Api, two_teams: Side) -> None:
    response = as_ours.get(f"/tenants/{two_teams.tenant.slug}/keys?limit=1&offset=1")

    assert response.status_code == 200
    assert len(_names(response)) == 1
