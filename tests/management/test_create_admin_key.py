"""`manage.py create_admin_key`: the first key, printed once, alone on stdout."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.activity.models import ActivityEvent
from gateway_site.api.models import AdminKey
from tenants.keys import hash_key
from tests.management.conftest import Api, Side

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("create_admin_key", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_a_platform_key_is_printed_once_and_works() -> None:
    plaintext = run("--platform", "--name", "bootstrap", "--created-by", "alice")

    key = AdminKey.objects.get(key_hash=hash_key(plaintext))
    assert plaintext.startswith("gwa-") and key.tenant is None and key.created_by == "alice"
    assert Api(plaintext).get("/tenants").status_code == 200
    event = ActivityEvent.objects.get(action="admin_key.create", target_id=str(key.pk))
    assert plaintext not in f"{event.actor_label} {event.target_label} {event.details}"


def test_a_tenant_key_manages_that_tenant_only(ours: Side, theirs: Side) -> None:
    plaintext = run("--tenant", ours.tenant.slug, "--name", "terraform")

    assert Api(plaintext).get(f"/tenants/{ours.tenant.slug}").status_code == 200
    assert Api(plaintext).get(f"/tenants/{theirs.tenant.slug}").status_code == 404


def test_an_unknown_tenant_or_no_scope_is_refused() -> None:
    with pytest.raises(CommandError, match="no tenant 'nope'"):
        run("--tenant", "nope", "--name", "x")
    with pytest.raises(CommandError):
        run("--name", "x")
    assert not AdminKey.objects.filter(name="x").exists()
