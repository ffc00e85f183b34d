"""`manage.py quota_bench`: what limits and budgets at every level cost, from Redis's own count."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_it_reports_the_round_trips_and_what_redis_ran_for_every_level() -> None:
    out = io.StringIO()
    call_command("quota_bench", iterations=30, interval_ms=1.0, as_json=True, stdout=out)
    rows = {row["scenario"].split(" (")[0]: row for row in json.loads(out.getvalue())}
    checked = rows["every level"]
    # An admission each, and a settlement each unless it rode with the next admission.
    assert 1.0 <= checked["round_trips"] <= 2.0
    # Tenant, team, key and end-user rules: dozens of commands, in far fewer scripts.
    assert 20 <= checked["redis_commands_per_request"] < 200
    assert checked["redis_us_per_script"] > 0
    assert rows["no rules"]["round_trips"] == 0
