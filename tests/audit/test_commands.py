from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

pytestmark = [pytest.mark.django_db]


def test_audit_verify_reports_a_sound_chain(make_record):
    make_record()
    out = io.StringIO()

    call_command("audit_verify", "--tenant", "acme", stdout=out)

    assert out.getvalue().startswith("acme: OK")


def test_audit_verify_fails_naming_the_tampered_request(make_record):
    victim = make_record()
    call_command("audit_seal", stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE audit_auditrecord SET end_user = 'nobody' WHERE id = %s", [victim.pk]
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    out = io.StringIO()

    with pytest.raises(CommandError, match="acme"):
        call_command("audit_verify", "--tenant", "acme", stdout=out)

    assert "BROKEN at link" in out.getvalue()
    assert victim.request_id in out.getvalue()


def test_audit_verify_takes_a_date_range(make_record):
    make_record()
    out = io.StringIO()

    call_command("audit_verify", "--tenant", "acme", "--since", "2020-01-01", stdout=out)

    assert "acme: OK" in out.getvalue()


def test_holds_policies_and_erasure_from_the_command_line(make_record):
    make_record(end_user="client-cli")
    out = io.StringIO()

    call_command("audit_policy", "--tenant", "acme", "--content-mode", "masked", stdout=out)
    call_command(
        "audit_hold",
        "place",
        "--tenant",
        "acme",
        "--end-user",
        "client-cli",
        "--reason",
        "m-1",
        stdout=out,
    )
    with pytest.raises(CommandError, match="legal hold"):
        call_command(
            "audit_erase",
            "--tenant",
            "acme",
            "--end-user",
            "client-cli",
            "--reason",
            "r",
            stdout=out,
        )
    hold_id = out.getvalue().split("placed hold ")[1].split()[0]
    call_command("audit_hold", "release", "--tenant", "acme", "--id", hold_id, stdout=out)
    call_command(
        "audit_erase", "--tenant", "acme", "--end-user", "client-cli", "--reason", "r", stdout=out
    )

    text = out.getvalue()
    assert "acme: content masked, records kept 2555 days" in text
    assert "hold " in text and "end user client-cli" in text
    assert "erased the content of 1 records of client-cli" in text
