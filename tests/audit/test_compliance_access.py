"""Only compliance members of a tenant (and platform admins) see its audit trail, on every URL.

Each compliance URL (pages, the HTMX fragment, both exports, the manifest, chain verification)
is tried by: nobody signed in, members of acme in every other role, a compliance officer of
another tenant, acme's compliance officer and a platform admin.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from audit.export import ExportRun
from audit.models import AuditAccess
from audit.selectors import AuditFilters
from tenants.models import Role, Tenant
from tests.support.world import TENANT_ROLES, Member, add_members

pytestmark = [
    pytest.mark.django_db,
    # The sync test client drains the async export stream, which Django warns about; the server
    # (ASGI) streams it chunk by chunk.
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators"),
]

PASSWORD = "a compliance password"
OTHER_ROLES = [r for r in Role.values if r not in (Role.COMPLIANCE, Role.PLATFORM_ADMIN)]


@pytest.fixture
def people(world: Any, settings: Any) -> dict[str, User]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    acme, globex = world.acme.copy(), world.globex.copy()
    made = add_members(
        acme,
        [Member(role, f"audit-{role}", "", teams=[], label=role) for role in TENANT_ROLES],
        password=PASSWORD,
    )
    made["other_compliance"] = add_members(
        globex, [Member(Role.COMPLIANCE, "globex-compliance", "", teams=[])], password=PASSWORD
    )["globex-compliance"]
    made["platform"] = add_members(
        globex, [Member(Role.PLATFORM_ADMIN, "audit-platform", "", teams=[])], password=PASSWORD
    )["audit-platform"]
    return made


@pytest.fixture
def acme_trail(make_record: Any, people: dict[str, User], world: Any) -> dict[str, Any]:
    record = make_record(end_user="advisor-secret", prompt="acme confidential allocation")
    run = ExportRun(
        tenant=world.team.tenant,
        filters=AuditFilters(),
        format="jsonl",
        user=people[Role.COMPLIANCE],
    )
    b"".join(run.chunks())
    return {"record": record, "export_id": run.id}


def _urls(slug: str, trail: dict[str, Any]) -> list[str]:
    args = {"tenant_slug": slug}
    return [
        reverse("compliance:search", kwargs=args),
        reverse("compliance:search", kwargs=args) + "?q=confidential&end_user=advisor-secret",
        reverse("compliance:record", kwargs={**args, "request_id": trail["record"].request_id}),
        reverse("compliance:export", kwargs={**args, "fmt": "csv"}),
        reverse("compliance:export", kwargs={**args, "fmt": "jsonl"}),
        reverse("compliance:export_manifest", kwargs={**args, "export_id": trail["export_id"]}),
        reverse("compliance:chain", kwargs=args) + "?verify=1",
    ]


def _client(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _body(response: Any) -> str:
    raw = b"".join(response) if response.streaming else response.content
    return raw.decode()


def test_nobody_signed_in_is_sent_to_sign_in(acme_trail):
    for url in _urls("acme", acme_trail):
        response = _client(None).get(url)
        assert response.status_code == 302, url
        assert "/console/login/" in response["Location"]


@pytest.mark.parametrize("role", OTHER_ROLES)
def test_members_without_the_compliance_role_are_refused(role, people, acme_trail):
    for url in _urls("acme", acme_trail):
        response = _client(people[role]).get(url)
        assert response.status_code == 403, (role, url)
        assert "advisor-secret" not in _body(response)


def test_another_tenants_compliance_officer_sees_nothing_of_acme(people, acme_trail):
    client = _client(people["other_compliance"])
    for url in _urls("acme", acme_trail):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "advisor-secret" not in _body(response)
    # Through their own tenant's URLs, acme's record and export do not exist either.
    own = _urls("globex", acme_trail)
    for url in (own[2], own[5]):
        assert client.get(url).status_code == 404, url
    for url in (own[1], own[3], own[4]):
        response = client.get(url)
        assert response.status_code == 200, url
        body = _body(response)  # the search form echoes the query; the records must not appear
        assert "acme confidential allocation" not in body
        assert acme_trail["record"].request_id not in body


@pytest.mark.parametrize("who", [Role.COMPLIANCE, "platform"])
def test_compliance_and_platform_admins_see_acme(who, people, acme_trail):
    client = _client(people[who])
    for url in _urls("acme", acme_trail):
        response = client.get(url)
        assert response.status_code == 200, url
    found = _body(client.get(_urls("acme", acme_trail)[1]))
    assert acme_trail["record"].request_id in found


def test_every_search_view_and_export_is_itself_recorded(people, acme_trail):
    client = _client(people[Role.COMPLIANCE])
    urls = _urls("acme", acme_trail)

    for url in (urls[1], urls[2], urls[4]):
        _body(client.get(url))

    seen = AuditAccess.objects.filter(user=people[Role.COMPLIANCE]).order_by("id")
    actions = [access.action for access in seen]
    assert actions[-3:] == ["audit.search", "audit.view", "audit.export"]
    search = seen.filter(action="audit.search").last()
    assert search is not None
    assert search.query["end_user"] == "advisor-secret" and search.query["text"] == "confidential"
    assert search.tenant_ids == [Tenant.objects.get(slug="acme").pk]


def test_search_as_you_type_answers_with_the_results_fragment(people, acme_trail):
    client = _client(people[Role.COMPLIANCE])

    response = client.get(_urls("acme", acme_trail)[1], headers={"HX-Request": "true"})

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="results"')
    assert acme_trail["record"].request_id in body


def test_the_record_page_shows_the_conversation_and_a_verified_chain(people, make_record):
    record = make_record(
        end_user="advisor-page",
        tool_calls=[
            {
                "id": "call_9",
                "type": "function",
                "function": {"name": "get_portfolio", "arguments": '{"client_id": "C-9"}'},
            }
        ],
        attempts=[
            {
                "deployment": "mock-gpt-limited",
                "provider": "mock-429",
                "status": 429,
                "error": "rate_limited",
                "latency_ms": 3.0,
            },
            {"deployment": "mock-gpt", "provider": "mock-ok", "status": 200, "latency_ms": 9.0},
        ],
    )
    from audit.sealer import audit_seal_pending

    audit_seal_pending()
    url = reverse(
        "compliance:record", kwargs={"tenant_slug": "acme", "request_id": record.request_id}
    )

    body = _client(people[Role.COMPLIANCE]).get(url).content.decode()

    assert "What is the client&#x27;s allocation?" in body
    assert "get_portfolio" in body and "C-9" in body
    assert "mock-gpt-limited" in body and "rate_limited" in body
    assert "Chain status: verified" in body
