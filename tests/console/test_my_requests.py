"""A developer's own request log and record page: its keys' requests only, bodies as stored."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditAccess, AuditRecord
from tenants import services
from tenants.models import Role
from tests.billing.support import record
from tests.console.conftest import Acme

pytestmark = [pytest.mark.django_db]


def _client(acme: Acme, who: str) -> Client:
    client = Client()
    client.force_login(acme.users[who])
    return client


def _mine_and_theirs(acme: Acme) -> tuple[AuditRecord, AuditRecord, AuditRecord]:
    now = timezone.now()
    colleague_key, _ = services.key_create(
        team=acme.team, name="colleague", owner=acme.users[Role.TENANT_ADMIN]
    )
    mine = record(acme.key, now - timedelta(minutes=5), cost=Decimal("0.0123"), user="dev")
    mine.request_body = {"messages": [{"role": "user", "content": "what is a bond ladder?"}]}
    mine.response_body = {"choices": [{"message": {"role": "assistant", "content": "Rungs."}}]}
    mine.attempts = [{"deployment": "gpt-4o", "provider": "openai", "status": 200, "error": ""}]
    colleague = record(colleague_key, now - timedelta(minutes=4), cost=Decimal("1"))
    colleague.request_body = {"messages": [{"role": "user", "content": "colleague secret"}]}
    outsider = record(acme.other_key, now - timedelta(minutes=3), cost=Decimal("2"))
    AuditRecord.objects.bulk_create([mine, colleague, outsider])
    return mine, colleague, outsider


def test_a_developer_sees_its_own_requests_and_opens_one(acme: Acme) -> None:
    mine, colleague, outsider = _mine_and_theirs(acme)
    client = _client(acme, Role.DEVELOPER)
    base = f"/console/t/{acme.tenant.slug}/requests/"

    log = client.get(base).content.decode()
    assert mine.request_id in log and "what is a bond ladder?" in log
    assert colleague.request_id not in log and outsider.request_id not in log
    assert f'href="{base}{mine.request_id}/"' in log  # the id opens its record

    page = client.get(f"{base}{mine.request_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Rungs." in html and "what is a bond ladder?" in html and "0.0123" in html
    assert "Full content" in html  # the tenant's privacy mode, said
    assert AuditAccess.objects.filter(
        action="audit.view_own", user=acme.users[Role.DEVELOPER]
    ).exists()

    assert client.get(f"{base}{colleague.request_id}/").status_code == 404
    assert client.get(f"{base}{outsider.request_id}/").status_code == 404
    assert client.get(f"{base}req_nothing/").status_code == 404


def test_the_log_pages_and_filters_fail_closed(acme: Acme) -> None:
    now = timezone.now()
    AuditRecord.objects.bulk_create(
        [record(acme.key, now - timedelta(seconds=i), cost=Decimal("0.001")) for i in range(60)]
    )
    client = _client(acme, Role.DEVELOPER)
    base = f"/console/t/{acme.tenant.slug}/requests/"
    first = client.get(base).content.decode()
    assert first.count("<tr>") == 51  # header + 50 rows
    assert "Older requests" in first

    older = re.search(r'href="\?([^"]*before=[^"]*)"', first)
    assert older is not None
    second = client.get(base + "?" + older.group(1).replace("&amp;", "&")).content.decode()
    assert second.count("<tr>") == 11 and "Older requests" not in second

    for bad in ({"window": "forever"}, {"key": "x"}, {"color": "1"}, {"before": "nonsense"}):
        assert client.get(base, bad).status_code == 400, bad
    assert client.get(base, {"key": str(acme.other_key.pk)}).status_code == 404


def test_who_may_read_the_log(acme: Acme) -> None:
    base = f"/console/t/{acme.tenant.slug}/requests/"
    assert _client(acme, Role.FINANCE).get(base).status_code == 403
    assert _client(acme, "outsider").get(base).status_code == 404
    assert _client(acme, Role.TENANT_ADMIN).get(base).status_code == 200
