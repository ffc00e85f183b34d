"""An invalid filter never widens a search or an export: the page shows the errors and no record,
an export answers 400 and exports nothing (and leaves no export behind)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import DataError
from django.test import Client
from django.urls import reverse

from audit.models import AuditAccess, AuditExport
from tenants import services
from tenants.models import Role, Tenant

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators"),
]


@pytest.fixture
def officer(world: Any) -> User:
    return services.member_apply(
        tenant=Tenant.objects.get(slug="acme"),
        username="filters-compliance",
        email="",
        role=Role.COMPLIANCE,
        teams=[],
        password=None,
    )


@pytest.fixture
def client(officer: User) -> Client:
    client = Client()
    client.force_login(officer)
    return client


@pytest.fixture
def trail(make_record: Any) -> dict[str, Any]:
    carol = [make_record(end_user="carol-42", prompt=f"carol question {i}") for i in range(3)]
    others = [make_record(end_user=f"someone-{i}", prompt="other question") for i in range(4)]
    return {"carol": carol, "others": others}


def _search(query: str) -> str:
    return reverse("compliance:search", kwargs={"tenant_slug": "acme"}) + "?" + query


def _export(fmt: str, query: str) -> str:
    return reverse("compliance:export", kwargs={"tenant_slug": "acme", "fmt": fmt}) + "?" + query


def _csv_rows(response: Any) -> list[dict[str, str]]:
    body = b"".join(response).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_a_valid_end_user_filter_exports_only_that_users_records(
    client: Client, trail: dict[str, Any]
) -> None:
    rows = _csv_rows(client.get(_export("csv", "end_user=carol-42")))

    assert {row["end_user"] for row in rows} == {"carol-42"}
    assert len(rows) == len(trail["carol"])


@pytest.mark.parametrize(
    "bad",
    [
        "status=Success",  # the label, not the value: not a valid choice
        "min_cost=abc",
        "since=yesterday",
        "prompt_version=0",
        "team=999999999",
        "end_usr=carol-42",  # a misspelt filter is not silently ignored either
        "q=!!!",  # no word to search for: it searched everything
        "q=" + "+".join(f"w{i}" for i in range(13)),  # the 13th word was dropped
        "min_cost=1E%2B1000000",  # more digits than a cost has
        "max_cost=1E-1000000",
        "before=page-two",  # not a cursor: it showed page 1 again
        "since=2026-02-01&until=2026-01-01",  # an empty range said nothing
    ],
)
def test_an_invalid_filter_shows_its_error_and_no_record(
    client: Client, trail: dict[str, Any], bad: str
) -> None:
    response = client.get(_search(f"end_user=carol-42&{bad}"))

    body = response.content.decode()
    assert response.status_code == 400
    assert 'data-testid="filter-errors"' in body
    for record in [*trail["carol"], *trail["others"]]:
        assert record.request_id not in body


def test_the_error_names_the_field_and_its_problem(client: Client, trail: Any) -> None:
    body = client.get(_search("end_user=carol-42&status=Success")).content.decode()

    assert "Status: Select a valid choice. Success is not one of the available choices." in body


def test_search_as_you_type_swaps_in_the_errors_not_the_old_results(
    client: Client, trail: dict[str, Any]
) -> None:
    response = client.get(_search("min_cost=abc"), headers={"HX-Request": "true"})

    body = response.content.decode()
    assert response.status_code == 400  # swapped in all the same: see htmx-config in base.html
    assert body.lstrip().startswith('<div id="results"')
    assert "Cost from (USD): Enter a number." in body
    assert trail["carol"][0].request_id not in body


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize(
    "bad",
    [
        "status=Success",
        "min_cost=abc",
        "until=2026-13-01",
        "q=%E2%80%94",  # an em dash alone
        "since=0001-01-01T00:00:00%2B01:00",  # before the calendar's start in UTC
        "min_cost=1E%2B1000000",
    ],
)
def test_an_export_with_an_invalid_filter_answers_400_and_exports_nothing(
    client: Client, officer: User, trail: dict[str, Any], fmt: str, bad: str
) -> None:
    exports_before = AuditExport.objects.count()

    response = client.get(_export(fmt, f"end_user=carol-42&{bad}"))

    body = response.content.decode()  # not streamed: nothing was exported
    assert response.status_code == 400
    assert "These filters are not valid, so nothing was exported." in body
    assert "Content-Disposition" not in response
    assert "carol question" not in body and "other question" not in body
    assert AuditExport.objects.count() == exports_before
    assert not AuditAccess.objects.filter(user=officer, action="audit.export").exists()


def test_no_filter_at_all_still_searches_everything(client: Client, trail: dict[str, Any]) -> None:
    body = client.get(_search("")).content.decode()

    assert all(r.request_id in body for r in [*trail["carol"], *trail["others"]])


def test_chain_verification_with_an_invalid_date_says_so(client: Client, trail: Any) -> None:
    url = reverse("compliance:chain", kwargs={"tenant_slug": "acme"})

    response = client.get(url + "?verify=1&since=2026-02-30")

    body = response.content.decode()
    assert response.status_code == 400
    assert "Enter a valid date/time." in body
    assert 'data-testid="chain-report"' not in body


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_the_database_refuses_answers_400_before_anything_is_sent_or_logged(
    client: Client, officer: User, trail: dict[str, Any], fmt: str, monkeypatch: Any
) -> None:
    from audit import export

    def refused(**kwargs: Any) -> Any:
        raise DataError("value overflows numeric format")

    monkeypatch.setattr(export, "audit_records_search", refused)

    response = client.get(_export(fmt, "end_user=carol-42"))

    assert response.status_code == 400
    assert "outside what the audit trail can be searched by" in response.content.decode()
    assert "Content-Disposition" not in response
    assert not AuditAccess.objects.filter(user=officer, action="audit.export").exists()


@pytest.mark.parametrize("offset", ["%2B23:59", "-20:00"])  # beyond what the database takes
def test_an_offset_is_searched_as_the_same_moment_in_utc(
    client: Client, trail: Any, offset: str
) -> None:
    moment = f"2999-01-01T00:00:00{offset}"
    before = _csv_rows(client.get(_export("csv", f"end_user=carol-42&until={moment}")))
    after = _csv_rows(client.get(_export("csv", f"end_user=carol-42&since={moment}")))
    assert (len(before), len(after)) == (len(trail["carol"]), 0)
