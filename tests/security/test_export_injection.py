"""CSV exports never hand a spreadsheet a formula: text chosen by a caller or a member comes out
with a leading `'`; JSON Lines keeps every value exact, and the export manifest says which is which.
"""

from __future__ import annotations

import ast
import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from audit.activity.services import Actor
from audit.export import ExportRun
from audit.models import AuditExport, AuditRecord
from audit.selectors import AuditFilters
from billing.models import Granularity
from billing.rollups import rollup_window
from gateway_site.csv_safe import csv_cell
from tenants import services as tenants
from tenants.models import Membership, Role
from tests.audit.conftest import make_record  # noqa: F401  (the fixture)
from tests.billing.support import record
from tests.console.conftest import Acme, make_acme

pytestmark = [pytest.mark.django_db]

# What a caller can put in an end-user id, a feature tag, a username, a key or team name.
ATTACKS = ('=HYPERLINK("http://x","y")', "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1")


def _neutralised(cell: str, attack: str) -> bool:
    return cell == "'" + attack


def _rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode(), newline="")))


@pytest.fixture
def acme(settings: Any) -> Acme:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return make_acme()


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


# Compliance ------------------------------------------------------------------------------------


def _export(world: Any, fmt: str) -> tuple[bytes, AuditExport]:
    user, _ = get_user_model().objects.get_or_create(username="exporter")
    run = ExportRun(tenant=world.team.tenant, filters=AuditFilters(), format=fmt, user=user)
    return b"".join(run.chunks()), AuditExport.objects.get(pk=run.id)


def _attack_records(world: Any, make_record: Any) -> dict[str, AuditRecord]:  # noqa: F811
    made = {}
    for attack in ATTACKS:
        key, _ = tenants.key_create(team=world.team, name=attack)
        made[attack] = make_record(
            end_user=attack, feature=attack, api_key=key, prompt=attack, answer=attack
        )
    return made


def test_it_refuses_to_put_a_formula_in_the_compliance_csv(world, make_record):  # noqa: F811
    made = _attack_records(world, make_record)

    body, _ = _export(world, "csv")

    rows = {row["request_id"]: row for row in _rows(body)}
    for attack, made_record in made.items():
        row = rows[made_record.request_id]
        for column in ("end_user", "feature", "prompt", "response"):
            assert _neutralised(row[column], attack), (column, row[column])
        assert row["api_key"].startswith("'" + attack)


def test_the_json_lines_export_keeps_those_values_exact(world, make_record):  # noqa: F811
    made = _attack_records(world, make_record)

    body, _ = _export(world, "jsonl")

    lines = {line["request_id"]: line for line in map(orjson.loads, body.splitlines())}
    for attack, made_record in made.items():
        line = lines[made_record.request_id]
        assert (line["end_user"], line["feature"], line["api_key"]) == (attack, attack, attack)


def test_the_export_manifest_says_how_cells_were_written(world, make_record):  # noqa: F811
    make_record(end_user="+1")

    for fmt in ("csv", "jsonl"):
        _, export = _export(world, fmt)
        escaping = export.manifest["cell_escaping"]
        assert escaping["csv"]["prefix"] == "'"
        assert set(escaping["csv"]["when_text_starts_with"]) >= {"=", "+", "-", "@", "\t", "\r"}
        assert escaping["jsonl"] == "exact"


# Finance ---------------------------------------------------------------------------------------


def _finance_world(acme: Acme) -> tuple[datetime, list[Any]]:
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    at = today - timedelta(days=1) if today.day > 1 else today
    teams, records = [], []
    for number, attack in enumerate(ATTACKS):
        team = tenants.team_apply(
            tenant=acme.tenant, slug=f"evil-{number}", name=attack, allowed_models=[]
        )
        key, _ = tenants.key_create(team=team, name=f"key-{number}")
        teams.append(team)
        records.append(
            record(
                key,
                at + timedelta(minutes=number),
                cost=Decimal("0.5"),
                user=attack,
                feature=attack,
            )
        )
    # A credit the gateway wrote itself: a negative number, which stays a number.
    records.append(record(acme.key, at, cost=Decimal("-0.5"), user="refunded"))
    AuditRecord.objects.bulk_create(records)
    rollup_window(granularity=Granularity.DAY, start=at, end=at + timedelta(days=1))
    return at, teams


def test_it_refuses_to_put_a_formula_in_the_finance_csvs(acme: Acme) -> None:
    _, teams = _finance_world(acme)
    client = _client(acme.users[Role.FINANCE])
    base = f"/console/t/{acme.tenant.slug}/finance/"

    for by in ("team", "feature", "user"):
        rows = _rows(client.get(base, {"format": "csv", "by": by}).content)
        labels = {row[by] for row in rows}
        for attack in ATTACKS:
            assert "'" + attack in labels, (by, labels)
            assert attack not in labels
    for team, attack in zip(teams, ATTACKS, strict=True):
        per_user = _rows(client.get(f"{base}teams/{team.id}/", {"format": "csv"}).content)
        assert [(r["team"], r["end_user"]) for r in per_user] == [("'" + attack,) * 2]
        requests = _rows(
            client.get(
                f"{base}teams/{team.id}/requests/", {"format": "csv", "user": attack}
            ).content
        )
        assert [r["feature"] for r in requests] == ["'" + attack]


def test_numbers_the_gateway_computed_stay_numbers_even_when_negative(acme: Acme) -> None:
    _finance_world(acme)
    client = _client(acme.users[Role.FINANCE])

    rows = _rows(
        client.get(
            f"/console/t/{acme.tenant.slug}/finance/", {"format": "csv", "by": "user"}
        ).content
    )

    refunded = next(row for row in rows if row["user"] == "refunded")
    assert refunded["cost_usd"] == "-0.5000"  # the console's precision (billing/money.py)
    assert Decimal(refunded["cost_usd_exact"]) == Decimal("-0.5")


# Activity --------------------------------------------------------------------------------------


def test_it_refuses_to_put_a_formula_in_the_activity_csv(acme: Acme) -> None:
    for attack in ATTACKS:
        # The console and API refuse such usernames; an account made before that rule, or by
        # single sign-on from another directory's names, can still carry one.
        member = get_user_model().objects.create(username=attack)
        membership = Membership.objects.create(user=member, tenant=acme.tenant, role=Role.DEVELOPER)
        tenants.member_update(membership=membership, teams=[acme.team])  # the member, a target
        tenants.key_create(team=acme.team, name=attack, owner=member, actor=Actor.user(member))
    client = _client(acme.users[Role.TENANT_ADMIN])

    response = client.get(f"/console/t/{acme.tenant.slug}/admin/activity.csv")

    rows = _rows(response.content)
    actors = {row["actor"] for row in rows}
    targets = {row["target"] for row in rows}
    for attack in ATTACKS:
        assert "'" + attack in actors  # the username that made the key
        assert "'" + attack in targets  # the member changed, by username
        assert any(t.startswith("'" + attack + " (") for t in targets)  # the key, by name
        assert attack not in actors | targets


# The one helper --------------------------------------------------------------------------------


def test_the_cell_rule_prefixes_text_and_leaves_numbers():
    assert [csv_cell(a) for a in ATTACKS] == ["'" + a for a in ATTACKS]
    assert csv_cell("'quoted") == "''quoted"  # one leading ' removed always gives the value back
    assert csv_cell("advisor-17") == "advisor-17"
    assert csv_cell(Decimal("-0.5000000000")) == "-0.5000000000"
    assert csv_cell(Decimal("1.15E-7")) == "0.000000115"  # never scientific notation
    assert csv_cell(-3) == -3
    assert csv_cell(None) == ""


def test_no_csv_writer_bypasses_the_helper():
    """Every CSV the project writes goes through gateway_site/csv_safe.py."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for path in root.rglob("*.py"):
        relative = path.relative_to(root)
        if relative.parts[0] in {"tests", ".venv", "node_modules"} or relative == Path(
            "gateway_site/csv_safe.py"
        ):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "csv"
                and node.attr in {"writer", "DictWriter"}
            ):
                offenders.append(f"{relative}:{node.lineno}")
    assert offenders == []
