"""A tenant admin purges the tenant's cached answers from the console, and only those."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings
from django.test import Client
from django.utils import timezone

from audit.activity.models import ActivityEvent
from routing.cache.core.keys import PREFIX, prompt_part, short
from routing.cache.models import SemanticEntry
from tenants import services as tenant_services
from tenants.models import Role

pytestmark = pytest.mark.django_db


def answer_key(tenant_id: int, route: str) -> str:
    return f"{PREFIX}:t{tenant_id}:r{short(route)}:{prompt_part('', None)}:{'0' * 64}"


def test_a_tenant_admin_purges_a_route_of_their_own_tenant_only():
    ours = tenant_services.tenant_apply(slug="purge-ours", name="Ours")
    theirs = tenant_services.tenant_apply(slug="purge-theirs", name="Theirs")
    admin = tenant_services.member_apply(
        tenant=ours,
        username="purge-admin",
        email="a@ours.example",
        role=Role.TENANT_ADMIN,
        teams=[],
        password=None,
    )
    store = redis.Redis.from_url(settings.REDIS_URL)
    keys = [answer_key(t.pk, route) for t in (ours, theirs) for route in ("chat", "other")]
    for key in keys:
        store.set(key, b"{}", ex=60)
    for tenant in (ours, theirs):
        SemanticEntry.objects.create(
            tenant=tenant,
            route_alias="chat",
            partition="p",
            cache_key="k",
            vector=b"",
            embedder="e",
            request_id="req_x",
            expires_at=timezone.now(),
        )
    client = Client()
    client.force_login(admin)

    response = client.post("/console/t/purge-ours/cache/", {"route": "chat"})

    assert response.status_code == 302
    assert [bool(store.exists(key)) for key in keys] == [False, True, True, True]
    left = SemanticEntry.objects.filter(tenant__in=[ours, theirs])  # drills may leave others
    assert list(left.values_list("tenant__slug", flat=True)) == ["purge-theirs"]
    assert ActivityEvent.objects.filter(action="cache.purge", tenant_id=ours.pk).exists()
    page = client.get("/console/t/purge-ours/cache/")
    assert "Purged 1 cached answer(s) and 1 semantic" in page.content.decode()
    assert client.post("/console/t/purge-ours/cache/", {"prompt": "bad name!"}).status_code == 400
