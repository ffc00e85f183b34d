"""The end of the audit trail cannot quietly go, and the activity log cannot be rewritten.

An attacker with database superuser rights can disable the triggers and delete the newest records
together with their seals and checkpoints; verification compares what it finds with the chain
head and says how many links are gone. The activity log refuses UPDATE and DELETE as the audit
tables do.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.activity.models import ActivityEvent
from audit.activity.services import Actor, activity_record
from audit.models import AuditChainHead, AuditCheckpoint, AuditSeal
from audit.sealer import audit_checkpoint_heads, audit_seal_pending
from audit.verify import audit_chain_verify
from tests.audit.conftest import make_record  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.django_db]


def _as_superuser_without_triggers(sql: str, params: list[object]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = origin")


def _verify_command() -> tuple[bool, str]:
    out = io.StringIO()
    try:
        call_command("audit_verify", "--tenant", "acme", stdout=out)
    except CommandError:
        return False, out.getvalue()
    return True, out.getvalue()


def _cut_the_tail(tenant_id: int, after_seq: int) -> None:
    """Delete every link after `after_seq`: records, seals and every checkpoint."""
    seals = list(AuditSeal.objects.filter(tenant_id=tenant_id, seq__gt=after_seq))
    for seal in seals:
        _as_superuser_without_triggers("DELETE FROM audit_auditseal WHERE id = %s", [seal.pk])
        _as_superuser_without_triggers(
            "DELETE FROM audit_auditrecord WHERE id = %s", [seal.record_id]
        )
    _as_superuser_without_triggers(
        "DELETE FROM audit_auditcheckpoint WHERE tenant_id = %s", [tenant_id]
    )


def test_it_refuses_a_chain_whose_newest_links_and_checkpoints_were_deleted(make_record):  # noqa: F811
    records = [make_record() for _ in range(3)]
    audit_seal_pending()
    audit_checkpoint_heads(min_interval=timedelta(0))
    tenant_id = records[0].tenant_id
    head = AuditChainHead.objects.get(tenant_id=tenant_id).seq
    kept = head - 2

    _cut_the_tail(tenant_id, kept)
    ok, out = _verify_command()

    assert not ok, out
    assert "BROKEN" in out
    assert f"the chain head knows {head} links, {kept} found" in out
    assert f"links #{kept + 1}..#{head} are missing" in out


def test_it_refuses_a_chain_cut_back_to_nothing(make_record):  # noqa: F811
    """The review's case: everything gone, and verification used to say "OK, 0 checkpoints"."""
    record = make_record()
    audit_seal_pending()
    audit_checkpoint_heads(min_interval=timedelta(0))
    head = AuditChainHead.objects.get(tenant_id=record.tenant_id).seq

    _cut_the_tail(record.tenant_id, 0)
    report = audit_chain_verify(tenant_id=record.tenant_id)

    assert not report.ok
    assert report.first_break is not None
    assert f"the chain head knows {head} links, 0 found" in report.first_break.reason


def test_it_refuses_a_chain_whose_head_disagrees_with_its_last_link(make_record):  # noqa: F811
    record = make_record()
    audit_seal_pending()

    _as_superuser_without_triggers(
        "UPDATE audit_auditchainhead SET hash = %s WHERE tenant_id = %s",
        ["f" * 64, record.tenant_id],
    )
    report = audit_chain_verify(tenant_id=record.tenant_id)

    assert not report.ok
    assert any("chain head" in b.reason for b in report.breaks)


def test_it_refuses_a_head_moved_back_behind_a_signed_checkpoint(make_record):  # noqa: F811
    records = [make_record() for _ in range(2)]
    audit_seal_pending()
    audit_checkpoint_heads(min_interval=timedelta(0))
    tenant_id = records[0].tenant_id
    head = AuditChainHead.objects.get(tenant_id=tenant_id).seq
    last = AuditSeal.objects.get(tenant_id=tenant_id, seq=head)
    before = AuditSeal.objects.get(tenant_id=tenant_id, seq=head - 1)

    _as_superuser_without_triggers("DELETE FROM audit_auditseal WHERE id = %s", [last.pk])
    _as_superuser_without_triggers("DELETE FROM audit_auditrecord WHERE id = %s", [last.record_id])
    _as_superuser_without_triggers(
        "UPDATE audit_auditchainhead SET seq = %s, hash = %s WHERE tenant_id = %s",
        [before.seq, before.hash, tenant_id],
    )
    report = audit_chain_verify(tenant_id=tenant_id)

    assert not report.ok
    assert any("the head was moved back" in b.reason for b in report.breaks)


def test_links_left_without_a_signed_checkpoint_for_too_long_fail(make_record, settings):  # noqa: F811
    settings.AUDIT_CHECKPOINT_GRACE_MINUTES = 60
    record = make_record()
    audit_seal_pending()
    audit_checkpoint_heads(min_interval=timedelta(0))
    make_record()
    audit_seal_pending()  # a newer link; its checkpoint is then deleted
    newest = AuditCheckpoint.objects.filter(tenant_id=record.tenant_id).order_by("-seq").first()
    assert newest is not None
    head = AuditChainHead.objects.get(tenant_id=record.tenant_id).seq

    assert audit_chain_verify(tenant_id=record.tenant_id).ok  # fresh: the next run signs it
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        report = audit_chain_verify(tenant_id=record.tenant_id)

    assert not report.ok
    assert any(
        f"no signed checkpoint covers links #{newest.seq + 1}..#{head}" in b.reason
        for b in report.breaks
    )


def test_the_checkpoint_age_check_can_be_turned_off(make_record, settings):  # noqa: F811
    settings.AUDIT_CHECKPOINT_GRACE_MINUTES = 0
    record = make_record()
    audit_seal_pending()

    with time_machine.travel(timezone.now() + timedelta(days=3)):
        assert audit_chain_verify(tenant_id=record.tenant_id).ok


# The activity log ------------------------------------------------------------------------------


def _refused(sql: str, params: list[object]) -> str:
    with (
        pytest.raises(DatabaseError) as caught,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, params)
    return str(caught.value)


@pytest.fixture
def event(world) -> ActivityEvent:
    return activity_record(
        actor=Actor("user", "admin-ana"),
        action="key.revoke",
        target=world.team,
        tenant_id=world.team.tenant_id,
        details={"reason": "leaked"},
    )


def test_it_refuses_to_rewrite_an_activity_event(event):
    message = _refused(
        "UPDATE activity_activityevent SET actor_label = 'someone-else' WHERE id = %s", [event.pk]
    )

    assert "append-only" in message
    event.refresh_from_db()
    assert event.actor_label == "admin-ana"


def test_it_refuses_to_delete_an_activity_event(event):
    assert "append-only" in _refused("DELETE FROM activity_activityevent WHERE id = %s", [event.pk])
    assert ActivityEvent.objects.filter(pk=event.pk).exists()


def test_it_refuses_to_truncate_the_activity_log(event):
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # settle the insert's deferred checks
    assert "append-only" in _refused("TRUNCATE activity_activityevent CASCADE", [])


def test_it_refuses_to_pin_an_activity_event_on_another_user(event):
    someone = get_user_model().objects.create_user("ana-framed")

    message = _refused(
        "UPDATE activity_activityevent SET actor_user_id = %s WHERE id = %s",
        [someone.pk, event.pk],
    )

    assert "append-only" in message


def test_deleting_a_user_keeps_their_activity_under_their_name(world):
    user = get_user_model().objects.create_user("ana-leaves")
    made = activity_record(
        actor=Actor.user(user), action="key.create", target=world.team, tenant_id=None
    )

    user.delete()

    made.refresh_from_db()
    assert (made.actor_user_id, made.actor_label) == (None, "ana-leaves")
    message = _refused(
        "UPDATE activity_activityevent SET actor_user_id = NULL, actor_label = 'x' WHERE id = %s",
        [made.pk],
    )
    assert "append-only" in message
