"""End to end against the live gateway: a tenant, a team and a key made through the management
API, then used by the official openai SDK on the proxy, then revoked through the API again."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from audit.activity.models import ActivityEvent
from audit.activity.services import SYSTEM
from gateway_site.api.services import admin_key_create
from tests.conftest import wait_for_record
from tests.support.live import LiveGateway, start_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


@pytest.fixture(scope="module")
def gateway(world: Any) -> Iterator[LiveGateway]:
    """Our own gateway process: warming the shared one would change what later tests see in its
    caches (they refresh in the background, serving the previous value once)."""
    live = start_gateway()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def live_platform_key(django_db_setup: None, django_db_blocker: Any) -> str:
    """Committed, so that the gateway subprocess sees it."""
    with django_db_blocker.unblock():
        _, material = admin_key_create(
            name="e2e platform", tenant=None, created_by="e2e", actor=SYSTEM
        )
    return material.plaintext


def test_a_key_made_through_the_api_serves_requests_until_revoked_through_it(
    gateway: Any, live_platform_key: str
) -> None:
    slug = f"api-made-{secrets.token_hex(3)}"
    api = httpx.Client(
        base_url=gateway.url + "/api/v1",
        headers={"authorization": f"Bearer {live_platform_key}"},
        timeout=10,
    )
    assert api.post("/tenants", json={"slug": slug, "name": "Made by API"}).status_code == 201
    team = api.post(
        f"/tenants/{slug}/teams", json={"slug": "apps", "name": "Apps", "allowed_models": ["demo"]}
    )
    assert team.status_code == 201, team.text
    created = api.post(f"/tenants/{slug}/keys", json={"team": "apps", "name": "first"})
    assert created.status_code == 201, created.text
    client = openai.OpenAI(base_url=gateway.api_url, api_key=created.json()["key"], max_retries=0)

    raw = client.chat.completions.with_raw_response.create(
        model="demo", messages=[{"role": "user", "content": "hello from a new tenant"}]
    )

    assert raw.parse().choices[0].message.content
    record = wait_for_record(raw.headers["x-request-id"])
    assert record.tenant.slug == slug and record.api_key_id == created.json()["id"]
    assert [m.id for m in client.models.list()] == ["demo"]

    revoked = api.post(f"/tenants/{slug}/keys/{created.json()['id']}/revoke")
    assert revoked.status_code == 200
    deadline = time.monotonic() + 3
    while True:
        try:
            client.models.list()
        except openai.AuthenticationError as exc:
            assert "revoked" in str(exc)
            break
        assert time.monotonic() < deadline, "the revoked key still works after 3 s"
        time.sleep(0.1)

    actions = set(
        ActivityEvent.objects.filter(tenant__slug=slug, actor_kind="admin_key").values_list(
            "action", flat=True
        )
    )
    assert actions == {"tenant.create", "team.create", "key.create", "key.revoke"}


def test_a_deactivated_tenant_is_cut_off_at_the_proxy(gateway: Any, live_platform_key: str) -> None:
    slug = f"api-cut-{secrets.token_hex(3)}"
    api = httpx.Client(
        base_url=gateway.url + "/api/v1",
        headers={"authorization": f"Bearer {live_platform_key}"},
        timeout=10,
    )
    api.post("/tenants", json={"slug": slug, "name": "Soon gone"})
    api.post(f"/tenants/{slug}/teams", json={"slug": "apps", "name": "Apps"})
    key = api.post(f"/tenants/{slug}/keys", json={"team": "apps", "name": "k"}).json()["key"]
    client = openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)
    assert client.models.list().data

    assert api.post(f"/tenants/{slug}/deactivate").json()["is_active"] is False

    deadline = time.monotonic() + 3
    while True:
        try:
            client.models.list()
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "a key of a deactivated tenant still works after 3 s"
        time.sleep(0.1)


def test_a_pin_set_through_the_api_holds_the_proxy_to_that_version(
    gateway: Any, live_platform_key: str
) -> None:
    slug = f"api-pin-{secrets.token_hex(3)}"
    api = httpx.Client(
        base_url=gateway.url + "/api/v1",
        headers={"authorization": f"Bearer {live_platform_key}"},
        timeout=10,
    )
    api.post("/tenants", json={"slug": slug, "name": "Pinned by API"})
    team = api.post(
        f"/tenants/{slug}/teams",
        json={"slug": "apps", "name": "Apps", "model_pins": {"canary-chat": "mock-gpt-next"}},
    )
    assert team.status_code == 201, team.text
    key = api.post(f"/tenants/{slug}/keys", json={"team": "apps", "name": "k"}).json()["key"]
    client = openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)

    def served() -> str:
        raw = client.chat.completions.with_raw_response.create(
            model="canary-chat", messages=[{"role": "user", "content": "which version?"}]
        )
        return str(raw.headers["x-gateway-deployment"])

    assert {served() for _ in range(6)} == {"mock-gpt-next"}

    # Re-pinned by upstream model: the stable version, once the key's cached identity refreshes.
    repinned = api.patch(
        f"/tenants/{slug}/teams/apps", json={"model_pins": {"canary-chat": "mock-gpt-2026-01-01"}}
    )
    assert repinned.json()["model_pins"] == {"canary-chat": "mock-gpt-2026-01-01"}
    deadline = time.monotonic() + 3
    while served() != "mock-gpt":
        assert time.monotonic() < deadline, "the new pin is not applied after 3 s"
        time.sleep(0.1)
    assert {served() for _ in range(6)} == {"mock-gpt"}
