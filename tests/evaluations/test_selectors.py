"""The routing table reads each deployment's newest score per category, never an older run's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from routing import services as routing
from routing.evaluations import services
from routing.evaluations.evalset import EvalSet
from routing.evaluations.runner import CategoryResult
from routing.evaluations.selectors import latest_scores
from routing.models import Provider

pytestmark = [pytest.mark.django_db]


def _run(deployment, category: str, passed: int, at: datetime) -> None:
    services.eval_run_record(
        eval_set=EvalSet("set.jsonl", "ef" * 32, ()),
        results=[
            CategoryResult(deployment.pk, deployment.name, category, samples=10, passed=passed)
        ],
        started_at=at,
        finished_at=at,
    )


def test_the_newest_run_wins_per_deployment_and_category() -> None:
    provider = Provider.objects.create(name="sel-mock", kind="openai", base_url="http://x/v1")
    model = routing.deployment_upsert(
        name="sel-model",
        provider=provider,
        upstream_model="m",
        input_price_per_mtok=Decimal(1),
        output_price_per_mtok=Decimal(1),
    )
    day = datetime(2026, 12, 1, tzinfo=UTC)
    _run(model, "sel-a", passed=9, at=day)
    _run(model, "sel-a", passed=3, at=day + timedelta(days=1))  # a regression, measured later
    _run(model, "sel-b", passed=7, at=day)

    scores = latest_scores([model.pk])

    assert {key: row.score for key, row in scores.items()} == {
        (model.pk, "sel-a"): 0.3,
        (model.pk, "sel-b"): 0.7,
    }
    assert list(latest_scores([model.pk], category="sel-b")) == [(model.pk, "sel-b")]


@pytest.mark.parametrize("name", ["Extraction", "-lead", "with space", "x" * 65])
def test_a_category_name_is_checked_by_the_service_itself(name: str) -> None:
    with pytest.raises(ValidationError, match="not a category name"):
        services.category_upsert(name=name, threshold=0.5)
