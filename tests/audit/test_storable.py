"""Records hold any text the gateway forwards: what PostgreSQL refuses is stored escaped, named in
`stored_escaped`, read back exactly, and the chain covers it as stored."""

from __future__ import annotations

import csv
import dataclasses
import io
import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from audit import chain
from audit.entries import AuditEntry
from audit.export import ExportRun
from audit.models import AuditExport, AuditRecord, AuditSeal, AuditStatus
from audit.sealer import audit_seal_pending
from audit.selectors import AuditFilters
from audit.storable import original, readable, refused_in, storable, storable_entry
from audit.verify import audit_chain_verify
from audit.writer import AuditWriter
from tenants import services
from tenants.models import ApiKey, Role
from tenants.quotas.models import SpendEntry

# Every code point, surrogates included, plus the texts the escaping itself uses.
_CHARS = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
TEXTS = st.text(alphabet=_CHARS) | st.sampled_from(
    ["\x00", "\\", "\\u0000", "\\\\u0000", "\ud800", "a\x00b", "\\ud83d\\ude00", "\udfff\\"]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | TEXTS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXTS, inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_any_json_value_is_stored_as_postgresql_accepts_and_read_back_exactly(value: Any) -> None:
    stored, escaped = storable(value)

    assert not refused_in(stored)
    orjson.dumps(stored)  # what the writer sends: no NUL survives, no surrogate to refuse
    assert original(stored, escaped=escaped) == value
    if not escaped:
        assert stored is value  # text without a refused character is stored untouched
    assert not refused_in(readable(stored, escaped=escaped))


def test_a_page_shows_the_original_text_with_refused_characters_marked() -> None:
    stored, escaped = storable({"content": "a\x00b \\u0000 \ud800"})

    assert stored == {"content": "a\\u0000b \\\\u0000 \\ud800"}
    assert readable(stored, escaped=escaped) == {"content": "a⟨U+0000⟩b \\u0000 ⟨U+D800⟩"}


def _entry(world: Any, **fields: Any) -> AuditEntry:
    key = ApiKey.objects.filter(team=world.team).first()
    assert key is not None
    values: dict[str, Any] = {
        "request_id": f"req_{uuid.uuid4().hex}",
        "tenant_id": world.team.tenant_id,
        "team_id": world.team.pk,
        "api_key_id": key.pk,
        "endpoint": "chat.completions",
        "started_at": timezone.now(),
        "status": AuditStatus.SUCCESS,
        "cost_usd": Decimal("0.01"),
        **fields,
    }
    return AuditEntry(**values)


@pytest.mark.django_db
def test_the_entry_names_each_column_it_escaped_and_keeps_its_own_text(world) -> None:
    entry = _entry(
        world,
        model_requested="de\x00mo",
        request_body={"messages": [{"role": "user", "content": "a\x00b"}]},
        client_context={"k\x00": "v"},
        response_body={"choices": [{"message": {"content": "fine"}}]},
    )

    stored = storable_entry(entry)

    assert stored.stored_escaped == ["client_context", "model_requested", "request_body"]
    assert stored.request_body == {"messages": [{"role": "user", "content": "a\\u0000b"}]}
    assert stored.response_body is entry.response_body
    assert entry.request_body == {"messages": [{"role": "user", "content": "a\x00b"}]}
    assert (
        storable_entry(
            dataclasses.replace(entry, model_requested="demo", request_body=None, client_context={})
        ).stored_escaped
        == []
    )


def _read(request_id: str) -> AuditRecord:
    return AuditRecord.objects.get(request_id=request_id)


@pytest.fixture
async def shared_thread_closed():
    """The ORM calls below run on asgiref's shared thread: close its connection afterwards."""
    yield
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db
async def test_records_with_nul_everywhere_are_written_chained_and_read_back(
    world, shared_thread_closed
) -> None:
    build = sync_to_async(_entry)
    odd = "a\x00b \\ \\u0000"
    entries = [
        await build(
            world,
            model_requested=f"model {odd}",
            request_body={"messages": [{"role": "user", "content": odd}], f"x{odd}": [odd]},
            response_body={"choices": [{"message": {"content": odd}}]},
            tool_calls=[{"function": {"name": "f", "arguments": odd}}],
            tool_results=[{"tool_call_id": "c", "content": odd}],
            client_context={odd: odd},
            error_message=odd,
        )
        for _ in range(3)
    ]
    writer = AuditWriter()
    try:
        for entry in entries:  # the first from the writer's thread, the next from the loop
            await writer.insert(entry)
    finally:
        await writer.aclose()

    for entry in entries:
        record = await sync_to_async(_read)(entry.request_id)
        for column in record.stored_escaped:
            assert original(getattr(record, column), escaped=True) == getattr(entry, column)
        assert set(record.stored_escaped) == {
            "client_context",
            "error_message",
            "model_requested",
            "request_body",
            "response_body",
            "tool_calls",
            "tool_results",
        }
        assert await sync_to_async(SpendEntry.objects.filter(request_id=entry.request_id).exists)()
    await sync_to_async(audit_seal_pending)()
    report = await sync_to_async(audit_chain_verify)(tenant_id=world.team.tenant_id)
    assert report.ok, report.breaks


@pytest.mark.django_db
async def test_a_streams_answer_may_be_the_first_part_stored_escaped(
    world, shared_thread_closed
) -> None:
    entry = await sync_to_async(_entry)(
        world,
        status=AuditStatus.IN_PROGRESS,
        stream=True,
        cost_usd=Decimal(0),
        request_body={"messages": [{"role": "user", "content": "plain"}]},
    )
    writer = AuditWriter()
    try:
        await writer.insert(entry)
        entry.status, entry.cost_usd = AuditStatus.SUCCESS, Decimal("0.02")
        entry.response_body = {"choices": [{"message": {"content": "a\x00b"}}]}
        entry.completed_at = timezone.now()
        await writer.complete(entry)  # the append-only guard lets the completion name it
    finally:
        await writer.aclose()

    record = await sync_to_async(_read)(entry.request_id)
    assert record.status == AuditStatus.SUCCESS
    assert record.stored_escaped == ["response_body"]
    assert original(record.response_body, escaped=True) == entry.response_body
    await sync_to_async(audit_seal_pending)()
    report = await sync_to_async(audit_chain_verify)(tenant_id=world.team.tenant_id)
    assert report.ok, report.breaks


# --- what people see: the console shows the original, exports carry what is stored ----------


def _stored_record(make_record: Any, text: str) -> AuditRecord:
    """A record as the writer stores a prompt and answer holding `text`."""
    entry_body = {"model": "mock-gpt", "messages": [{"role": "user", "content": text}]}
    answer = {"choices": [{"message": {"role": "assistant", "content": f"echo {text}"}}]}
    request_body, _ = storable(entry_body)
    response_body, _ = storable(answer)
    return make_record(
        end_user="advisor-odd",
        request_body=request_body,
        response_body=response_body,
        stored_escaped=["request_body", "response_body"],
    )


@pytest.mark.django_db
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators")
def test_the_record_page_shows_the_original_text_with_the_nul_marked(make_record, world) -> None:
    record = _stored_record(make_record, "a\x00b c:\\temp")
    officer = services.member_apply(
        tenant=world.team.tenant,
        username="odd-compliance",
        email="",
        role=Role.COMPLIANCE,
        teams=[],
        password="a compliance password",
    )
    client = Client()
    client.force_login(officer)
    args = {"tenant_slug": world.team.tenant.slug}

    page = client.get(
        reverse("compliance:record", kwargs={**args, "request_id": record.request_id})
    ).content.decode()
    listing = client.get(reverse("compliance:search", kwargs=args)).content.decode()

    # As sent, the backslash single; the NUL, which a page cannot carry, visibly marked.
    assert "a⟨U+0000⟩b c:\\temp" in page and "echo a⟨U+0000⟩b" in page
    assert "stored escaped" in page
    assert "Chain status: verified" in page
    assert "a⟨U+0000⟩b c:\\temp" in listing
    assert "\\u0000" not in page  # the stored form is not what a reader is shown


@pytest.mark.django_db
def test_exports_carry_the_stored_form_and_name_the_escaped_columns(make_record, world) -> None:
    from django.contrib.auth import get_user_model

    record = _stored_record(make_record, "a\x00b")
    user = get_user_model().objects.create_user("odd-exporter", password="x" * 12)
    bodies = {}
    for fmt in ("csv", "jsonl"):
        run = ExportRun(
            tenant=world.team.tenant,
            filters=AuditFilters(end_user="advisor-odd"),
            format=fmt,
            user=user,
        )
        bodies[fmt] = b"".join(run.chunks())
        manifest = AuditExport.objects.get(pk=run.id).manifest
        assert "stored_escaped" in manifest["stored_escaping"]

    row = next(csv.DictReader(io.StringIO(bodies["csv"].decode())))
    assert row["stored_escaped"] == "request_body response_body"
    assert row["prompt"] == "a\\u0000b"
    line = orjson.loads(bodies["jsonl"].splitlines()[0])
    assert line["stored_escaped"] == ["request_body", "response_body"]
    assert original(line["request_body"], escaped=True)["messages"][0]["content"] == "a\x00b"
    # The line is the record as stored: it hashes to the content hash its chain link holds.
    seal = AuditSeal.objects.get(record_id=record.pk)
    assert chain.payload_hash(line) == seal.payload_hash
