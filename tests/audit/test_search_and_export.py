"""Compliance search (full text and filters) and streamed exports with a verifiable manifest."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import timedelta
from decimal import Decimal

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from audit import chain
from audit.export import ExportRun
from audit.models import AuditExport
from audit.selectors import AuditFilters, audit_records_page, audit_records_search
from tenants.models import Team

pytestmark = [pytest.mark.django_db]


def _ids(records) -> set[int]:
    return {r.pk for r in records}


def test_full_text_search_finds_prompts_and_answers_as_you_type(make_record, world):
    tenant = world.team.tenant_id
    rebalance = make_record(prompt="Please rebalance the Hartley portfolio towards bonds")
    answer = make_record(answer="The Hartley trust holds 12% in emerging markets.")
    other = make_record(prompt="Unrelated question about the weather")

    found = audit_records_search(tenant_id=tenant, filters=AuditFilters(text="hartl"))
    narrowed = audit_records_search(tenant_id=tenant, filters=AuditFilters(text="hartley bonds"))

    assert {rebalance.pk, answer.pk} <= _ids(found)
    assert other.pk not in _ids(found)
    assert _ids(narrowed) & {rebalance.pk, answer.pk, other.pk} == {rebalance.pk}


def test_filters_by_user_time_status_model_cost_and_finding(make_record, world):
    tenant = world.team.tenant_id
    now = timezone.now()
    target = make_record(
        end_user="advisor-filter",
        started_at=now - timedelta(hours=2),
        status="upstream_error",
        model_requested="advisor-chat",
        cost_usd=Decimal("0.5"),
        guardrail_findings=[{"check": "pii", "type": "email", "action": "mask"}],
    )
    make_record(end_user="advisor-filter", started_at=now - timedelta(days=3))
    make_record(end_user="someone-else", started_at=now - timedelta(hours=2))

    filters = AuditFilters(
        end_user="advisor-filter",
        since=now - timedelta(hours=3),
        until=now,
        status="upstream_error",
        model="advisor-chat",
        min_cost=Decimal("0.1"),
        finding="email",
    )

    assert _ids(audit_records_search(tenant_id=tenant, filters=filters)) == {target.pk}


def test_search_never_returns_another_tenants_records(make_record, world):
    globex_team = Team.objects.get(tenant__slug="globex", slug="ops")
    theirs = make_record(team=globex_team, prompt="globex secret merger plan")

    found = audit_records_search(
        tenant_id=world.team.tenant_id, filters=AuditFilters(text="merger")
    )

    assert theirs.pk not in _ids(found)


def test_pages_follow_by_keyset_newest_first(make_record, world):
    now = timezone.now()
    made = [make_record(end_user="pager", started_at=now - timedelta(minutes=n)) for n in range(5)]
    filters = AuditFilters(end_user="pager")

    first, cursor = audit_records_page(
        tenant_id=world.team.tenant_id, filters=filters, before=None, size=2
    )
    second, _ = audit_records_page(
        tenant_id=world.team.tenant_id, filters=filters, before=cursor, size=2
    )

    assert [r.pk for r in first + second] == [r.pk for r in made[:4]]


def _export(world, fmt: str, **filters) -> tuple[bytes, AuditExport]:
    user = get_user_model().objects.create_user("exporter", password="x" * 12)
    run = ExportRun(
        tenant=world.team.tenant, filters=AuditFilters(**filters), format=fmt, user=user
    )
    body = b"".join(run.chunks())
    return body, AuditExport.objects.get(pk=run.id)


def test_a_csv_export_has_the_advisor_context_tools_and_answer_and_a_manifest(make_record, world):
    record = make_record(
        end_user="advisor-export",
        tool_calls=[{"id": "call_1", "function": {"name": "get_portfolio", "arguments": "{}"}}],
        tool_results=[{"tool_call_id": "call_1", "content": '{"equities": 0.6}'}],
    )

    body, export = _export(world, "csv", end_user="advisor-export")

    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert [r["request_id"] for r in rows] == [record.request_id]
    row = rows[0]
    assert row["end_user"] == "advisor-export"
    assert "C-1042" in row["client_context"]
    assert "get_portfolio" in row["tool_calls"] and "equities" in row["tool_results"]
    assert row["response"] == "60% equities, 40% bonds."
    assert row["chain_seq"] and row["chain_hash"]
    manifest = export.manifest
    assert manifest["row_count"] == 1
    assert manifest["file_sha256"] == hashlib.sha256(body).hexdigest()
    assert manifest["chain"]["newest"]["hash"] == row["chain_hash"]
    assert chain.signature_valid(manifest, export.signature)


def test_a_json_lines_export_carries_whole_records_with_their_links(make_record, world):
    records = [make_record(end_user="advisor-jsonl") for _ in range(3)]

    body, export = _export(world, "jsonl", end_user="advisor-jsonl")

    lines = [orjson.loads(line) for line in body.splitlines()]
    assert {line["request_id"] for line in lines} == {r.request_id for r in records}
    assert all(line["chain"]["seq"] for line in lines)
    assert lines[0]["request_body"]["messages"][0]["content"].startswith("What is")
    assert export.manifest["row_count"] == 3


def test_a_page_of_a_text_search_is_right_whichever_plan_answers_it(
    make_record, world, monkeypatch
):
    # With a 1 ms bound the time-ordered walk is usually cancelled and the index path answers.
    monkeypatch.setattr("audit.selectors.WALK_TIMEOUT_MS", 1)
    wanted = [
        make_record(end_user="walker", prompt=f"quarterly annuity review {n}") for n in range(3)
    ]
    make_record(end_user="walker", prompt="something else")

    rows, _ = audit_records_page(
        tenant_id=world.team.tenant_id,
        filters=AuditFilters(text="annuit", end_user="walker"),
        before=None,
    )

    assert [r.pk for r in rows] == [r.pk for r in reversed(wanted)]


def test_the_search_index_is_tidied_off_the_request_path_and_still_finds_new_rows(
    make_record, world
):
    """The merge of the index's pending list, which an insert would otherwise do inside the
    commit requests wait for, is done by the tidy step; what was pending stays searchable."""
    from audit.maintenance import search_index_tidy

    tenant = world.team.tenant_id
    search_index_tidy()
    rows = [
        make_record(prompt=f"Quarterly review of the Okonkwo mandate number {n}") for n in range(60)
    ]

    removed = search_index_tidy()
    again = search_index_tidy()
    found = audit_records_search(tenant_id=tenant, filters=AuditFilters(text="okonkwo"))

    assert removed > 0  # the new rows' entries were pending and are now merged
    assert again == 0
    assert _ids(found) >= {row.pk for row in rows}


def test_the_kind_filter_keeps_model_requests_or_tool_calls(make_record, world):
    from audit.models import MCP_TOOL_CALL_ENDPOINT, RecordKind

    tenant = world.team.tenant_id
    model = make_record(prompt="kindfilter model question")
    tool = make_record(
        prompt="kindfilter tool arguments",
        endpoint=MCP_TOOL_CALL_ENDPOINT,
        model_requested="crm__lookup_customer",
    )

    def found(kind: str) -> set[int]:
        return _ids(
            audit_records_search(
                tenant_id=tenant, filters=AuditFilters(text="kindfilter", kind=kind)
            )
        ) & {model.pk, tool.pk}

    assert found(RecordKind.TOOL) == {tool.pk}
    assert found(RecordKind.MODEL) == {model.pk}
    assert found("") == {model.pk, tool.pk}
