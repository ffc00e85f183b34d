"""Drill: audit storage that grows for years. Records over 24 monthly partitions: a compliance search with common filters answers in under 1 s; dropping a retention-expired month takes under 1 s and the chain still verifies; a month archived to an S3-compatible store verifies from the archive alone, and one altered byte is named.

Scale: AUDIT_YEARS_ROWS records (10,000,000 under `make drills`, scripts/drills.py; 120,000 in
the normal suite, where generating ten million would take most of its time budget). The records
are generated in SQL (generate_series) straight into each month's table, which is then attached;
the two oldest months are chained with the sealer's own hashing (audit/chain.py) in bulk.
Everything the drill makes is removed at its end (partitions dropped; its tenants' seals,
checkpoints and heads deleted with the triggers off), so the rest of the suite never sees it.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from typing import Any

import boto3
import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from moto.server import ThreadedMotoServer

from audit import chain
from audit.archive import archive_verify, audit_month_archive, audit_month_attach
from audit.models import (
    AuditChainHead,
    AuditMonth,
    AuditPolicy,
    AuditRecord,
    MonthState,
)
from audit.partitions import (
    TABLE,
    month_bounds,
    month_current,
    month_drop,
    month_seal,
    month_verdict,
    next_month,
    partitioned,
    table_name,
)
from audit.sealer import audit_checkpoint_heads
from audit.selectors import AuditFilters, audit_records_page
from audit.verify import audit_chain_verify
from tenants.models import ApiKey, Team, Tenant

pytestmark = [
    pytest.mark.django_db(transaction=False),
    pytest.mark.timeout(int(os.environ.get("AUDIT_YEARS_TIMEOUT", "5400"))),
]

ROWS = int(os.environ.get("AUDIT_YEARS_ROWS", "120000"))
MONTHS = 24
FIRST = date(2019, 1, 1)
TENANTS = 8
USERS = 2000
BUCKET = "audit-archive"
WORDS = [
    "pension",
    "annuity",
    "retirement",
    "allocation",
    "equities",
    "bonds",
    "fees",
    "mortgage",
    "insurance",
    "savings",
    "transfer",
    "withdrawal",
    "rebalance",
    "dividend",
    "inflation",
]


def _months() -> list[date]:
    months, month = [], FIRST
    for _ in range(MONTHS):
        months.append(month)
        month = next_month(month)
    return months


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """A local S3-compatible server (moto's server mode), and boto3 pointed at it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {
        k: os.environ.get(k)
        for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    }
    os.environ.update(
        AWS_ACCESS_KEY_ID="drill", AWS_SECRET_ACCESS_KEY="drill", AWS_DEFAULT_REGION="us-east-1"
    )
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    with override_settings(AUDIT_ARCHIVE_S3_ENDPOINT=endpoint):
        yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _tenants() -> list[tuple[int, int, int]]:
    made = []
    run = uuid.uuid4().hex[:8]
    for number in range(TENANTS):
        tenant = Tenant.objects.create(slug=f"years-{run}-{number}", name=f"Years {number}")
        team = Team.objects.create(tenant=tenant, slug="advice", name="Advice")
        key = ApiKey.objects.create(
            tenant=tenant, team=team, name="bulk", prefix="gw-years", key_hash=uuid.uuid4().hex * 2
        )
        # Seven years' retention, as regulators often ask: 2019 is past it.
        AuditPolicy.objects.create(tenant=tenant, retention_days=365 * 5)
        made.append((tenant.pk, team.pk, key.pk))
    return made


GENERATE = f"""
INSERT INTO {{stage}} (id, request_id, tenant_id, team_id, api_key_id, end_user, feature, agent,
    client_context, endpoint, model_requested, route_alias, deployment_name, provider_name,
    upstream_model, stream, attempts, routing, request_body, response_body, tool_calls,
    tool_results, guardrail_findings, prompt_name, prompt_version, prompt_label,
    prompt_fingerprint, quota, usage_estimated, status, http_status, error_type, error_message,
    prompt_tokens, completion_tokens, cached_tokens, cost_usd, latency_ms, ttft_ms, started_at,
    completed_at, stored_escaped)
SELECT nextval(pg_get_serial_sequence('{TABLE}', 'id')),
    'req_y' || %(run)s || '_' || %(month)s || '_' || g,
    (%(tenants)s::bigint[])[g %% {TENANTS} + 1], (%(teams)s::bigint[])[g %% {TENANTS} + 1],
    (%(keys)s::bigint[])[g %% {TENANTS} + 1],
    'advisor-' || ((g * 7919) %% {USERS}), '', '', '{{}}'::jsonb, 'chat.completions', 'demo', '',
    'mock-gpt', 'mock-ok', 'mock-gpt', false, '[]'::jsonb, '{{}}'::jsonb,
    jsonb_build_object('model', 'demo', 'messages', jsonb_build_array(jsonb_build_object(
        'role', 'user', 'content', 'client asks about ' || (%(words)s::text[])[g %% 15 + 1]
        || ' and ' || (%(words)s::text[])[(g / 15) %% 15 + 1]))),
    jsonb_build_object('choices', jsonb_build_array(jsonb_build_object('message',
        jsonb_build_object('role', 'assistant', 'content', 'noted')))),
    '[]'::jsonb, '[]'::jsonb, '[]'::jsonb, '', NULL, '', '', '{{}}'::jsonb, false,
    CASE WHEN g %% 49 = 0 THEN 'upstream_error' ELSE 'success' END,
    CASE WHEN g %% 49 = 0 THEN 502 ELSE 200 END, '', '', 12, 8, 0, 0.000115, 12.5, NULL,
    %(start)s::timestamptz + make_interval(secs => g * %(step)s),
    %(start)s::timestamptz + make_interval(secs => g * %(step)s + 0.012), '[]'::jsonb
FROM generate_series(0::bigint, %(rows)s - 1) AS g
"""  # noqa: S608 - names from constants


def _generate(month: date, rows: int, ids: list[tuple[int, int, int]], run: str) -> None:
    """One month's records into a table of its own, then attached (its indexes built once)."""
    start, end = month_bounds(month)
    stage = table_name(month)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {stage} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING GENERATED)"
        )
        cursor.execute(
            GENERATE.replace("{stage}", stage),
            {
                "run": run,
                "month": f"{month:%Y%m}",
                "tenants": [t for t, _, _ in ids],
                "teams": [t for _, t, _ in ids],
                "keys": [k for _, _, k in ids],
                "words": list(WORDS),
                "start": start,
                "step": (end - start).total_seconds() / rows,
                "rows": rows,
            },
        )
        cursor.execute(
            f"ALTER TABLE {TABLE} ATTACH PARTITION {stage} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
        cursor.execute(
            f"CREATE TRIGGER audit_record_no_truncate BEFORE TRUNCATE ON {stage} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        )
        AuditMonth.objects.update_or_create(
            month=month, defaults={"table": stage, "state": MonthState.LIVE}
        )


def _copy_seals(lines: list[str]) -> None:
    with (
        connection.cursor() as cursor,
        cursor.copy(
            "COPY audit_auditseal (tenant_id, seq, record_id, version, payload_hash, content_hash, "
            "prev_hash, hash, sealed_at) FROM STDIN"
        ) as copy,
    ):
        copy.write("".join(lines))


def _seal_in_bulk(months: list[date], tenant_ids: list[int]) -> int:
    """Chain the given months' records as the sealer would (same hashes, same links), in bulk:
    the sealer's own pace (a few thousand a second) is not what this drill measures."""
    heads = {tenant_id: (0, chain.GENESIS) for tenant_id in tenant_ids}
    start, end = month_bounds(months[0])[0], month_bounds(months[-1])[1]
    lines: list[str] = []
    sealed = 0
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    rows = (
        AuditRecord.objects.filter(
            tenant_id__in=tenant_ids, started_at__gte=start, started_at__lt=end
        )
        .order_by("id")
        .values(*chain.RECORD_COLUMNS)
        .iterator(chunk_size=5000)
    )
    for row in rows:
        seq, previous = heads[row["tenant_id"]]
        payload = chain.payload_hash(row)
        content = chain.content_hash(row, payload)
        link = chain.link_hash(previous, seq + 1, content)
        heads[row["tenant_id"]] = (seq + 1, link)
        lines.append(
            f"{row['tenant_id']}\t{seq + 1}\t{row['id']}\t{chain.CANONICAL_VERSION}\t{payload}\t"
            f"{content}\t{previous}\t{link}\t{now}\n"
        )
        sealed += 1
        if len(lines) == 50_000:
            _copy_seals(lines)
            lines = []
    _copy_seals(lines)
    for tenant_id, (seq, link) in heads.items():
        AuditChainHead.objects.create(tenant_id=tenant_id, seq=seq, hash=link)
    return sealed


@pytest.fixture(scope="module")
def years(django_db_setup: None, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    with django_db_blocker.unblock():
        if not partitioned():
            pytest.skip("monthly partitions are PostgreSQL's")
        ids = _tenants()
        run = uuid.uuid4().hex[:6]
        months = _months()
        facts: dict[str, Any] = {"ids": ids, "months": months}
        try:
            began = time.perf_counter()
            per_month = ROWS // MONTHS
            for month in months:
                _generate(month, per_month, ids, run)
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {TABLE}")
            facts["generated_s"] = time.perf_counter() - began
            facts["rows"] = per_month * MONTHS
            began = time.perf_counter()
            facts["sealed"] = _seal_in_bulk(months[:2], [t for t, _, _ in ids])
            audit_checkpoint_heads(min_interval=timedelta(0))
            facts["sealed_s"] = time.perf_counter() - began
            yield facts
        finally:
            _remove(ids, months)


def _remove(ids: list[tuple[int, int, int]], months: list[date]) -> None:
    tenant_ids = [t for t, _, _ in ids]
    with connection.cursor() as cursor:
        for month in months:
            cursor.execute(f"DROP TABLE IF EXISTS {table_name(month)}")
        AuditMonth.objects.filter(month__in=months).delete()
        cursor.execute("SET session_replication_role = replica")
        try:
            for table in ("audit_auditseal", "audit_auditcheckpoint", "audit_auditchainhead"):
                cursor.execute(f"DELETE FROM {table} WHERE tenant_id = ANY(%s)", [tenant_ids])  # noqa: S608
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")
    AuditPolicy.objects.filter(tenant_id__in=tenant_ids).delete()
    ApiKey.objects.filter(tenant_id__in=tenant_ids).delete()
    Team.objects.filter(tenant_id__in=tenant_ids).delete()
    Tenant.objects.filter(pk__in=tenant_ids).delete()


def _timed(action: Any) -> tuple[Any, float]:
    began = time.perf_counter()
    result = action()
    return result, time.perf_counter() - began


def test_a_compliance_search_over_years_answers_in_under_a_second(
    years: dict[str, Any], record_property: Any
) -> None:
    tenant_id = years["ids"][3][0]
    since = datetime(2020, 3, 1, tzinfo=UTC)
    until = datetime(2020, 6, 1, tzinfo=UTC)
    # Generated row g belongs to tenant g % 8 and user (g * 7919) % 2000: users of tenant 3.
    one, other = (f"advisor-{(g * 7919) % USERS}" for g in (3, 3 + TENANTS * 5))
    searches = {
        "tenant + 3 months + end user": AuditFilters(since=since, until=until, end_user=one),
        "tenant + 3 months + status": AuditFilters(
            since=since, until=until, status="upstream_error"
        ),
        "tenant + 2 years + end user": AuditFilters(end_user=other),
        "tenant + 3 months + text": AuditFilters(since=since, until=until, text="annuity"),
    }
    observed = []
    for name, filters in searches.items():
        audit_records_page(tenant_id=tenant_id, filters=filters, before=None)  # warm
        (rows, _), took = _timed(
            lambda f=filters: audit_records_page(tenant_id=tenant_id, filters=f, before=None)
        )
        assert rows, name
        assert all(r.tenant_id == tenant_id for r in rows)
        if filters.since:
            assert all(since <= r.started_at < until for r in rows), name
        assert took < 1.0, f"{name}: {took:.3f} s"
        observed.append(f"{name} {took * 1000:.0f} ms")
    record_property(
        "observed",
        f"{years['rows']:,} records in {MONTHS} months generated in {years['generated_s']:.0f} s; "
        + "; ".join(observed),
    )


def test_an_expired_month_is_archived_dropped_in_under_a_second_and_verified_from_its_archive(
    years: dict[str, Any], s3: str, record_property: Any
) -> None:
    first = AuditMonth.objects.get(month=years["months"][0])
    assert month_seal(first) and month_seal(AuditMonth.objects.get(month=years["months"][1]))
    first.refresh_from_db()
    tenant_id = years["ids"][0][0]
    sample = (
        AuditRecord.objects.filter(
            tenant_id=tenant_id,
            started_at__gte=month_bounds(first.month)[0],
            started_at__lt=month_bounds(first.month)[1],
        )
        .order_by("id")
        .values_list("id", "request_id")[:1]
        .get()
    )

    # Archived first (to the S3-compatible store), then dropped by retention's own steps.
    result, archive_s = _timed(
        lambda: audit_month_archive(month=first, destination=f"s3://{BUCKET}/gateway")
    )
    assert result.records == first.record_count == years["rows"] // MONTHS
    now = datetime.now(UTC)

    def drop() -> None:
        assert month_current(first)
        verdict = month_verdict(first, now)
        assert verdict.droppable, verdict.reason
        month_drop(first, now=now)

    _, drop_s = _timed(drop)
    assert drop_s < 1.0, f"dropping a month took {drop_s:.3f} s"
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [first.table])
        assert cursor.fetchone()[0] is None
    assert not AuditRecord.objects.filter(pk=sample[0]).exists()

    # What remains of the chain verifies: the month's links are covered by signed purges.
    report, verify_s = _timed(lambda: audit_chain_verify(tenant_id=tenant_id))
    assert report.ok, [b.describe() for b in report.breaks]
    assert report.purged == first.tenants[str(tenant_id)]["count"]
    assert report.checked > report.purged  # the second month's links, still there

    # The archive alone verifies (no database read: the command says so offline too).
    verified, verify_archive_s = _timed(lambda: archive_verify(result.url))
    assert verified.ok, verified.problems
    assert verified.records == first.record_count
    call_command("audit_verify", archive=result.url)

    # One altered byte: verification names the file, the line and the record.
    client = boto3.client("s3", endpoint_url=s3)
    key = "gateway/" + f"{first.month:%Y-%m}" + "/records.jsonl"
    original = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    lines = original.split(b"\n")
    target = len(lines) // 2
    line = lines[target]
    at = line.index(b'"end_user":"advisor-') + len(b'"end_user":"advisor-')
    lines[target] = line[:at] + (b"9" if line[at : at + 1] != b"9" else b"8") + line[at + 1 :]
    client.put_object(Bucket=BUCKET, Key=key, Body=b"\n".join(lines))
    altered = archive_verify(result.url)
    record_id = int(line.split(b'"id":')[1].split(b",")[0])
    assert not altered.ok
    assert any(
        p.startswith(f"records.jsonl line {target + 1} (record {record_id}, request ")
        and "content differs from its seal" in p
        for p in altered.problems
    ), altered.problems
    assert any("records.jsonl: its SHA-256 differs" in p for p in altered.problems)
    printed = StringIO()
    with pytest.raises(CommandError, match="does not verify"):
        call_command("audit_verify", archive=result.url, stdout=printed)
    assert f"BROKEN: records.jsonl line {target + 1} (record {record_id}" in printed.getvalue()
    client.put_object(Bucket=BUCKET, Key=key, Body=original)

    # Re-attached read-only: searchable again, verifiable, and nothing can be written to it.
    attached, attach_s = _timed(lambda: audit_month_attach(url=result.url))
    assert attached.state == MonthState.ATTACHED
    assert AuditRecord.objects.filter(pk=sample[0], request_id=sample[1]).exists()
    assert audit_chain_verify(tenant_id=tenant_id).ok
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT set_config('audit.purge', 'on', true)")
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [sample[0]])  # noqa: S608
    call_command("audit_archive", "detach", month=f"{first.month:%Y-%m}")

    record_property(
        "observed",
        f"month of {first.record_count:,} records: archived in {archive_s:.1f} s, dropped in "
        f"{drop_s * 1000:.0f} ms, chain of one tenant verified in {verify_s:.1f} s "
        f"({report.purged:,} purged, {report.checked - report.purged:,} checked), archive "
        f"verified in {verify_archive_s:.1f} s, altered byte named at records.jsonl line "
        f"{target + 1}, re-attached in {attach_s:.1f} s; bulk sealing {years['sealed']:,} "
        f"records took {years['sealed_s']:.0f} s",
    )


def _sealed_second_month(years: dict[str, Any]) -> tuple[AuditMonth, Tenant]:
    """The second month, sealed, and a tenant with records in it."""
    second = AuditMonth.objects.get(month=years["months"][1])
    if second.state != MonthState.SEALED:
        assert month_seal(second)
        second.refresh_from_db()
    return second, Tenant.objects.get(pk=years["ids"][5][0])


def test_a_legal_hold_keeps_its_month(years: dict[str, Any]) -> None:
    from audit.activity.services import SYSTEM
    from audit.services import legal_hold_place

    second, tenant = _sealed_second_month(years)
    start, end = month_bounds(second.month)
    with transaction.atomic():
        legal_hold_place(
            tenant=tenant,
            reason="matter 7",
            actor=SYSTEM,
            end_user=f"advisor-{(5 * 7919) % USERS}",
            starts_at=start,
            ends_at=end,
        )
        verdict = month_verdict(second, datetime.now(UTC))
        transaction.set_rollback(True)
    assert not verdict.droppable
    assert "legal hold" in verdict.reason


def test_a_legal_hold_placed_after_the_verdict_still_keeps_its_month(
    years: dict[str, Any],
) -> None:
    """Retention reads its verdict, then drops: a hold placed in between keeps the month."""
    from audit.activity.services import SYSTEM
    from audit.partitions import PartitionError
    from audit.services import legal_hold_place

    second, tenant = _sealed_second_month(years)
    start, end = month_bounds(second.month)
    now = datetime.now(UTC)
    with transaction.atomic():
        assert month_verdict(second, now).droppable  # read by retention: nothing held yet
        legal_hold_place(
            tenant=tenant,
            reason="matter 8",
            actor=SYSTEM,
            end_user=f"advisor-{(5 * 7919) % USERS}",
            starts_at=start,
            ends_at=end,
        )
        with pytest.raises(PartitionError, match="legal hold"):
            month_drop(second, now=now)
        attached = AuditRecord.objects.filter(started_at__gte=start, started_at__lt=end).exists()
        transaction.set_rollback(True)
    assert attached
