"""Stored responses without the network: retention per tenant, the purge command, and the
management command that sets a retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from routing.responses_state.models import StoredResponse
from routing.responses_state.selectors import response_get, retention_days
from routing.responses_state.services import response_keep, responses_retention_set
from tenants import services as tenants

pytestmark = pytest.mark.django_db


def keep(tenant_id: int, response_id: str) -> StoredResponse:
    return response_keep(
        tenant_id=tenant_id,
        api_key_id=1,
        request_id="req_" + response_id.removeprefix("resp_"),
        response={"id": response_id, "object": "response", "output": []},
        input_items=[],
        previous_response_id=None,
        model="demo",
        content_mode="full",
        retention_days=retention_days(tenant_id=tenant_id),
    )


def test_a_response_lives_its_tenants_retention_then_the_purge_deletes_it(settings, capsys):
    settings.GATEWAY_RESPONSES_RETENTION_DAYS = 30
    short = tenants.tenant_apply(slug="short-memory", name="Short")
    default = tenants.tenant_apply(slug="default-memory", name="Default")
    responses_retention_set(tenant=short, retention_days=2)
    keep(short.id, "resp_short")
    keep(default.id, "resp_default")
    with time_machine.travel(timezone.now() + timedelta(days=3)):
        assert response_get(tenant_id=short.id, response_id="resp_short") is None
        assert response_get(tenant_id=default.id, response_id="resp_default") is not None
        call_command("responses_purge")
    assert "stored response(s) past retention deleted" in capsys.readouterr().out
    left = StoredResponse.objects.filter(response_id__in=["resp_short", "resp_default"])
    assert list(left.values_list("response_id", flat=True)) == ["resp_default"]


def test_a_response_is_found_only_by_its_own_tenant(settings):
    ours = tenants.tenant_apply(slug="ours-memory", name="Ours")
    theirs = tenants.tenant_apply(slug="theirs-memory", name="Theirs")
    keep(ours.id, "resp_ours")
    assert response_get(tenant_id=ours.id, response_id="resp_ours") is not None
    assert response_get(tenant_id=theirs.id, response_id="resp_ours") is None


def test_the_policy_command_shows_and_sets_a_retention(settings, capsys):
    settings.GATEWAY_RESPONSES_RETENTION_DAYS = 30
    tenants.tenant_apply(slug="cmd-memory", name="Cmd")
    call_command("responses_policy", "--tenant", "cmd-memory")
    assert "kept 30 days" in capsys.readouterr().out
    call_command("responses_policy", "--tenant", "cmd-memory", "--retention-days", "5")
    assert "kept 5 days" in capsys.readouterr().out


def test_a_conversation_lives_its_tenants_retention_from_its_last_turn(settings, capsys):
    from routing.responses_state.models import Conversation
    from routing.responses_state.selectors import conversation_get
    from routing.responses_state.services import conversation_append, conversation_create

    settings.GATEWAY_RESPONSES_RETENTION_DAYS = 30
    short = tenants.tenant_apply(slug="short-talk", name="Short")
    responses_retention_set(tenant=short, retention_days=2)
    for conversation_id in ("conv_quiet", "conv_busy"):
        conversation_create(
            tenant_id=short.id,
            api_key_id=1,
            conversation_id=conversation_id,
            metadata={},
            items=[],
            content_mode="full",
            retention_days=retention_days(tenant_id=short.id),
        )
    with time_machine.travel(timezone.now() + timedelta(days=1)):
        item = {"type": "message", "id": "msg_1", "role": "user", "content": "Still here."}
        conversation_append(
            tenant_id=short.id,
            conversation_id="conv_busy",
            items=[item],
            content_mode="full",
            retention_days=2,
        )
    with time_machine.travel(timezone.now() + timedelta(days=2, hours=1)):
        assert conversation_get(tenant_id=short.id, conversation_id="conv_quiet") is None
        assert conversation_get(tenant_id=short.id, conversation_id="conv_busy") is not None
        call_command("responses_purge")
    assert "conversation(s) past retention deleted" in capsys.readouterr().out
    left = Conversation.objects.filter(tenant=short).values_list("conversation_id", flat=True)
    assert list(left) == ["conv_busy"]
