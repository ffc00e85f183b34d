"""Task categories and their evaluation scores through the management API (platform keys only)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from audit.activity.models import ActivityEvent
from routing import services as routing
from routing.evaluations import services
from routing.evaluations.evalset import EvalSet
from routing.evaluations.models import TaskCategory
from routing.evaluations.runner import CategoryResult
from routing.models import Provider
from tests.management.conftest import Api

pytestmark = pytest.mark.django_db


def test_a_platform_key_defines_a_category_and_reads_its_scores(platform: Api) -> None:
    put = platform.put(
        "/task-categories/api-extraction",
        {"threshold": 0.9, "strict": True, "pattern": r"\bextract\b", "description": "Fields"},
    )
    assert put.status_code == 200, put.content
    assert TaskCategory.objects.get(name="api-extraction").strict is True
    assert ActivityEvent.objects.filter(action="task_category.create").exists()

    provider = Provider.objects.create(name="api-mock", kind="openai", base_url="http://x/v1")
    big, mini = (
        routing.deployment_upsert(
            name=name,
            provider=provider,
            upstream_model=name,
            input_price_per_mtok=Decimal(1),
            output_price_per_mtok=Decimal(1),
        )
        for name in ("api-big", "api-mini")
    )
    when = datetime(2026, 12, 1, tzinfo=UTC)
    services.eval_run_record(
        eval_set=EvalSet("fields.jsonl", "cd" * 32, ()),
        results=[
            CategoryResult(mini.pk, mini.name, "api-extraction", samples=10, passed=4),
            CategoryResult(big.pk, big.name, "api-extraction", samples=10, passed=9),
        ],
        started_at=when,
        finished_at=when,
    )

    scores = platform.get("/task-categories/api-extraction/scores").json()
    assert [(s["deployment"], s["score"], s["passed"]) for s in scores] == [
        ("api-big", 0.9, 9),
        ("api-mini", 0.4, 4),
    ]
    assert scores[0]["eval_set"] == "fields.jsonl"
    listed = platform.get("/task-categories").json()["items"]
    assert "api-extraction" in [c["name"] for c in listed]


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("Bad Name", {"threshold": 0.5}, "name"),
        ("ok", {"threshold": 1.5}, "threshold"),
        ("ok", {"threshold": 0.5, "pattern": "(unclosed"}, "pattern"),
    ],
)
def test_bad_categories_are_refused_naming_the_field(
    platform: Api, name: str, body: dict[str, object], field: str
) -> None:
    refused = platform.put(f"/task-categories/{name}", body)

    assert refused.status_code == 422, refused.content
    assert field in str(refused.json()["error"]["fields"])
    assert not TaskCategory.objects.filter(name=name).exists()


def test_a_tenant_key_cannot_touch_categories(as_ours: Api) -> None:
    refused = as_ours.put("/task-categories/api-extraction", {"threshold": 0.5})

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "platform_scope_required"
