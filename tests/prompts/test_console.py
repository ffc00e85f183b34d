"""The prompt pages of the console: who may read, who may change, and what they show."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.activity.models import ActivityEvent
from audit.activity.services import Actor
from audit.models import AuditRecord
from routing.prompts import services
from routing.prompts.models import LabelMove, PromptLabel, PromptVersion
from tenants.models import Role
from tests.console.conftest import Acme, make_acme

pytestmark = [pytest.mark.django_db]

V1 = "You are a formal advisor.\nCite the holdings."
V2 = "You are a relaxed advisor.\nCite the holdings."


@pytest.fixture
def acme(db: None, settings: Any) -> Acme:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    acme = make_acme()
    actor = Actor("user", "acme-developer")
    prompt = services.prompt_declare(actor=actor, tenant=acme.tenant, name="advisor")
    for text, note in ((V1, "launch"), (V2, "friendlier tone")):
        services.prompt_publish(
            actor=actor, prompt=prompt, messages=[{"role": "system", "content": text}], note=note
        )
    services.prompt_label_move(actor=actor, prompt=prompt, label="production", version=1)
    services.prompt_label_move(actor=actor, prompt=prompt, label="production", version=2)
    now = timezone.now()
    for n in range(6):
        version = 1 if n < 3 else 2
        AuditRecord.objects.create(
            request_id=f"req_console_{n}",
            tenant=acme.tenant,
            team=acme.team,
            api_key=acme.key,
            endpoint="chat.completions",
            status="upstream_error" if n == 5 else "success",
            prompt_name="advisor",
            prompt_version=version,
            prompt_label="production",
            latency_ms=100.0,
            started_at=now - timedelta(minutes=10 - n),
        )
    return acme


def _as(acme: Acme, role: str) -> Client:
    client = Client()
    client.force_login(acme.users[role])
    return client


def _url(view: str, **kwargs: Any) -> str:
    return reverse(f"prompts:{view}", kwargs={"tenant_slug": "acme-c", **kwargs})


def test_a_developer_sees_versions_outcomes_labels_and_history(acme):
    page = _as(acme, Role.DEVELOPER).get(_url("detail", name="advisor")).content.decode()

    assert 'id="version-2"' in page and 'id="version-1"' in page
    assert "friendlier tone" in page
    assert "33 % (1)" in page  # v2: one of its three requests failed
    assert "0 % (0)" in page
    assert "Roll back production to v1" in page
    assert "(new label)" in page  # the label's first move, in the history


def test_the_diff_shows_removed_and_added_lines(acme):
    page = _as(acme, Role.COMPLIANCE).get(_url("diff", name="advisor") + "?old=1&new=2")
    text = page.content.decode()
    assert page.status_code == 200
    assert "<del>-You are a formal advisor.</del>" in text
    assert "<ins>+You are a relaxed advisor.</ins>" in text


def test_the_version_page_lists_its_failed_requests(acme):
    page = _as(acme, Role.COMPLIANCE).get(_url("version", name="advisor", number=2) + "?failed=on")
    text = page.content.decode()
    assert "req_console_5" in text and "req_console_4" not in text


def test_rollback_is_one_recorded_action(acme):
    client = _as(acme, Role.TENANT_ADMIN)
    response = client.post(_url("label_rollback", name="advisor", label="production"))

    assert response.status_code == 302
    assert PromptLabel.objects.get(prompt__name="advisor", name="production").version.number == 1
    last = LabelMove.objects.filter(label__prompt__name="advisor").order_by("-id").first()
    assert (last.from_version, last.to_version, last.is_rollback) == (2, 1, True)
    assert last.actor_label == "acme-tenant_admin"
    event = ActivityEvent.objects.get(action="prompt.label_rollback", tenant=acme.tenant)
    assert event.actor_user == acme.users[Role.TENANT_ADMIN]


def test_a_developer_moves_a_label_with_a_canary(acme):
    response = _as(acme, Role.DEVELOPER).post(
        _url("label_move", name="advisor"),
        {"label": "staging", "version": "1", "canary_version": "2", "canary_percent": "20"},
    )
    assert response.status_code == 302
    label = PromptLabel.objects.get(prompt__name="advisor", name="staging")
    assert (label.version.number, label.canary_version.number, label.canary_percent) == (1, 2, 20)


def test_publishing_from_the_console_adds_a_version_and_never_edits_one(acme):
    client = _as(acme, Role.DEVELOPER)
    response = client.post(
        _url("publish", name="advisor"),
        {"system": "You are a careful advisor for {{ client }}.", "note": "fix", "parameters": ""},
    )
    assert response.status_code == 302
    v3 = PromptVersion.objects.get(prompt__name="advisor", number=3)
    assert (v3.variables, v3.author_label) == (["client"], "acme-developer")

    # A published version has no way to be changed: its page only answers GET.
    changed = client.post(_url("version", name="advisor", number=1), {"system": "Be sloppy."})
    assert changed.status_code == 405
    assert PromptVersion.objects.get(prompt__name="advisor", number=1).messages[0]["content"] == V1


@pytest.mark.parametrize(
    ("view", "kwargs", "method"),
    [
        ("publish", {"name": "advisor"}, "post"),
        ("label_move", {"name": "advisor"}, "post"),
        ("label_rollback", {"name": "advisor", "label": "production"}, "post"),
        ("create", {}, "post"),
        ("pin_set", {"name": "advisor"}, "post"),
    ],
)
def test_compliance_reads_but_cannot_change_anything(acme, view, kwargs, method):
    client = _as(acme, Role.COMPLIANCE)
    assert client.get(_url("detail", name="advisor")).status_code == 200
    assert "Roll back" not in client.get(_url("detail", name="advisor")).content.decode()
    response = getattr(client, method)(_url(view, **kwargs), {"label": "production", "version": 1})
    assert response.status_code == 403
    assert PromptVersion.objects.filter(prompt__name="advisor").count() == 2
    assert PromptLabel.objects.get(prompt__name="advisor", name="production").version.number == 2


def test_finance_is_refused_and_an_outsider_does_not_see_the_prompt_exists(acme):
    assert _as(acme, Role.FINANCE).get(_url("detail", name="advisor")).status_code == 403
    outsider = _as(acme, "outsider")
    assert outsider.get(_url("detail", name="advisor")).status_code == 404
    assert outsider.get(_url("list")).status_code == 404


def test_a_team_is_pinned_and_unpinned_from_the_console(acme):
    from routing.prompts.models import PromptPin

    client = _as(acme, Role.TENANT_ADMIN)
    response = client.post(
        _url("pin_set", name="advisor"), {"holder": f"team:{acme.team.pk}", "version": "1"}
    )
    assert response.status_code == 302
    pin = PromptPin.objects.get(prompt__name="advisor", team=acme.team)
    assert pin.version.number == 1
    assert "team Quants" in client.get(_url("detail", name="advisor")).content.decode()

    client.post(_url("pin_clear", name="advisor", pin_id=pin.pk))
    assert not PromptPin.objects.filter(pk=pin.pk).exists()
    assert ActivityEvent.objects.filter(action="prompt.unpin", tenant=acme.tenant).exists()


def test_compliance_follows_a_version_into_the_audit_search(acme):
    client = _as(acme, Role.COMPLIANCE)
    page = client.get(_url("detail", name="advisor")).content.decode()
    search = reverse("compliance:search", kwargs={"tenant_slug": "acme-c"})
    link = f"{search}?prompt_name=advisor&amp;prompt_version=2"
    assert link in page

    results = client.get(link.replace("&amp;", "&")).content.decode()
    assert "req_console_5" in results and "req_console_3" in results
    assert "req_console_0" not in results  # a v1 request
    # A developer cannot open the audit search, so is not offered the link.
    assert (
        search not in _as(acme, Role.DEVELOPER).get(_url("detail", name="advisor")).content.decode()
    )


def test_an_invalid_page_beside_failed_only_shows_the_error_not_every_request(acme):
    page = _as(acme, Role.COMPLIANCE).get(
        _url("version", name="advisor", number=2) + "?failed=on&page=abc"
    )
    text = page.content.decode()
    assert page.status_code == 400
    assert 'data-testid="filter-errors"' in text
    assert "req_console_5" not in text and "req_console_4" not in text


def test_a_developer_pins_only_their_own_keys_and_is_not_shown_other_teams_keys(acme):
    from routing.prompts.models import PromptPin
    from tenants import services as tenants

    desk = tenants.team_apply(tenant=acme.tenant, slug="desk", name="Desk", allowed_models=[])
    theirs, _ = tenants.key_create(team=desk, name="desk-production-bot")
    admin, developer = _as(acme, Role.TENANT_ADMIN), _as(acme, Role.DEVELOPER)
    admin.post(_url("pin_set", name="advisor"), {"holder": f"key:{theirs.pk}", "version": "1"})
    pin = PromptPin.objects.get(api_key=theirs)

    page = developer.get(_url("detail", name="advisor")).content.decode()
    assert "desk-production-bot" not in page and theirs.prefix not in page
    assert "a key of team Desk" in page  # the pin is there, its key not named
    assert "quant-notebook" in page  # their own key, offered to pin

    developer.post(_url("pin_set", name="advisor"), {"holder": f"key:{theirs.pk}", "version": "2"})
    cleared = developer.post(_url("pin_clear", name="advisor", pin_id=pin.pk))

    pin.refresh_from_db()
    assert pin.version.number == 1  # neither re-pinned
    assert cleared.status_code == 404  # nor cleared
    own = developer.post(
        _url("pin_set", name="advisor"), {"holder": f"key:{acme.key.pk}", "version": "2"}
    )
    assert own.status_code == 302
    assert PromptPin.objects.get(api_key=acme.key).version.number == 2
    # The admin sees every key by name.
    assert "desk-production-bot" in admin.get(_url("detail", name="advisor")).content.decode()
