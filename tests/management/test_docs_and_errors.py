"""The API's documentation and its error format, where a newcomer meets them first."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.management.conftest import Api

pytestmark = pytest.mark.django_db


def test_the_docs_are_at_a_stable_url_and_load_nothing_from_a_cdn() -> None:
    page = Client().get("/api/docs")

    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.content.decode())
    assert assets and all(a.startswith("/static/") for a in assets), assets
    assert "/api/v1/openapi.json" in page.content.decode()


def test_the_schema_documents_the_bearer_admin_key() -> None:
    schema = Client().get("/api/v1/openapi.json").json()

    assert schema["info"]["title"] == "AI gateway: management API"
    assert schema["components"]["securitySchemes"]["AdminKeyAuth"]["scheme"] == "bearer"
    assert "/api/v1/tenants/{slug}/keys" in schema["paths"]


def test_a_key_authenticated_write_needs_no_csrf_token(platform_key: str) -> None:
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        "/api/v1/tenants",
        {"slug": "csrf-free", "name": "No cookies here"},
        content_type="application/json",
        headers={"authorization": f"Bearer {platform_key}"},
    )

    assert response.status_code == 201, response.content


def test_a_wrong_method_answers_in_the_api_error_format(platform: Api) -> None:
    response = platform.delete("/tenants")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert set(response["Allow"].split(", ")) == {"GET", "POST"}


def test_a_body_that_is_not_json_is_a_clear_400(platform_key: str) -> None:
    response = Client().post(
        "/api/v1/tenants",
        "{not json",
        content_type="application/json",
        headers={"authorization": f"Bearer {platform_key}"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
