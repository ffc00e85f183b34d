"""A rotated key keeps working for its grace period, then the proxy refuses it."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

GRACE = timedelta(seconds=2)


@pytest.fixture(scope="module")
def rotated(world: Any, django_db_blocker: Any) -> tuple[str, str, float]:
    from tenants import services
    from tenants.models import Team

    with django_db_blocker.unblock():
        team = Team.objects.get(tenant__slug="acme", slug="advisors")
        key, old = services.key_create(team=team, name="grace-demo")
        _, new = services.key_rotate(key=key, grace=GRACE)
    return old.plaintext, new.plaintext, time.monotonic()


def status(gateway: Any, key: str) -> int:
    return httpx.post(
        gateway.api_url + "/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "demo", "messages": [{"role": "user", "content": "still there?"}]},
        timeout=10,
    ).status_code


def test_the_old_key_works_during_the_grace_then_gets_401(
    gateway: Any, rotated: tuple[str, str, float]
) -> None:
    old, new, rotated_at = rotated
    assert status(gateway, old) == 200
    assert status(gateway, new) == 200
    # The grace ends 2 s after rotation; a worker may trust its cached key 1 s more.
    deadline = rotated_at + GRACE.total_seconds() + 1.25
    while status(gateway, old) == 200:
        assert time.monotonic() < deadline, "the old key outlived its grace"
        time.sleep(0.1)
    assert time.monotonic() > rotated_at + GRACE.total_seconds() - 0.1
    body = httpx.post(
        gateway.api_url + "/chat/completions",
        headers={"authorization": f"Bearer {old}"},
        json={"model": "demo", "messages": []},
        timeout=10,
    ).json()
    assert body["error"]["code"] == "expired_api_key"
    assert status(gateway, new) == 200
