"""Once caches are warm, a proxied request touches the database only to write its audit record."""

from __future__ import annotations

import threading

import orjson
import psycopg
import pytest
from django.db.backends.utils import CursorWrapper
from django.test import AsyncClient

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SQL statement run by any thread (the proxy's ORM work runs off the event loop)."""
    seen: list[str] = []
    lock = threading.Lock()
    for name in ("execute", "executemany"):
        original = getattr(CursorWrapper, name)

        def counting(self, sql, params=None, _original=original):  # type: ignore[no-untyped-def]
            with lock:
                seen.append(str(sql))
            return _original(self, sql, params)

        monkeypatch.setattr(CursorWrapper, name, counting)
    # The audit writer sends new records on its own connection, from the event loop.
    original_execute = psycopg.AsyncConnection.execute

    async def counting_async(self, query, params=None, **kwargs):  # type: ignore[no-untyped-def]
        with lock:
            seen.append(str(query))
        return await original_execute(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.AsyncConnection, "execute", counting_async)
    return seen


def only_the_record_and_its_charge(statements: list[str]) -> bool:
    """The one statement a warm request runs: its ledger row inserted with its audit record."""
    return (
        len(statements) == 1
        and statements[0].startswith('WITH also AS (INSERT INTO "quotas_spendentry"')
        and 'INSERT INTO "audit_auditrecord"' in statements[0]
    )


async def test_a_warm_request_makes_no_query_but_the_one_statement_of_its_audit_and_ledger_rows(
    world, statements, in_process_proxy
):
    client, auth = AsyncClient(), {"authorization": f"Bearer {world.key}"}
    body = orjson.dumps({"model": "demo", "messages": [{"role": "user", "content": "warm up"}]})
    first = await client.post(
        "/v1/chat/completions", body, content_type="application/json", headers=auth
    )
    assert first.status_code == 200, first.content
    statements.clear()

    second = await client.post(
        "/v1/chat/completions", body, content_type="application/json", headers=auth
    )

    assert second.status_code == 200
    assert only_the_record_and_its_charge(statements), statements
