"""Benchmark-validated routing, end to end: evaluate two deployments, then route by category.

The mock's small model (mock-gpt-mini) echoes only 4 words of a prompt, so on the demo evaluation
set it is as good as the big one at classification and fails extraction. A category route must
then send classification to the cheap model and extraction to the big one.
"""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.activity.models import ActivityEvent
from routing import services as routing
from routing.evaluations import services as evaluations
from routing.evaluations.models import EvalScore
from routing.evaluations.selectors import latest_scores
from routing.models import Deployment, Provider
from tests.conftest import wait_for_record
from tests.support.live import wait_for_config

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

DEMO_SET = Path(__file__).resolve().parents[2] / "config" / "evals" / "demo.jsonl"
ROUTE = "cat-auto"


@pytest.fixture(scope="module")
def evaluated(world: Any, gateway: Any, django_db_blocker: Any) -> str:
    """Scores from a real run of the demo set, then a category route over both deployments."""
    with django_db_blocker.unblock():
        provider = Provider.objects.get(name="mock-ok")
        big = routing.deployment_upsert(
            name="cat-big",
            provider=provider,
            upstream_model="mock-gpt-2026-01-01",
            input_price_per_mtok=Decimal("2.5"),
            output_price_per_mtok=Decimal("10"),
        )
        mini = routing.deployment_upsert(
            name="cat-mini",
            provider=provider,
            upstream_model="mock-gpt-mini",
            input_price_per_mtok=Decimal("0.15"),
            output_price_per_mtok=Decimal("0.6"),
        )
        evaluations.category_upsert(
            name="classification", threshold=0.9, pattern=r"\b(classify|sentiment)\b"
        )
        evaluations.category_upsert(name="extraction", threshold=0.9, pattern=r"\bextract\b")
        evaluations.category_upsert(name="legal-review", threshold=0.99, strict=True)
        out = io.StringIO()
        call_command(
            "run_evals",
            str(DEMO_SET),
            "--deployment",
            "cat-big",
            "--deployment",
            "cat-mini",
            stdout=out,
        )
        assert "Stored run" in out.getvalue(), out.getvalue()
        routing.route_upsert(
            alias=ROUTE, description="", deployments=[big, mini], strategy="category"
        )
    wait_for_config(gateway, world.key, ROUTE)
    return world.key


def _ask(gateway: Any, key: str, text: str, **kwargs: Any) -> Any:
    client = openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)
    return client.chat.completions.with_raw_response.create(
        model=ROUTE, messages=[{"role": "user", "content": text}], **kwargs
    )


def test_the_evaluation_run_stored_each_deployments_score_per_category(evaluated: str) -> None:
    ids = dict(
        Deployment.objects.filter(name__in=["cat-big", "cat-mini"]).values_list("name", "id")
    )
    scores = {(d, c): row.score for (d, c), row in latest_scores(ids.values()).items()}

    assert scores[(ids["cat-big"], "classification")] == 1.0
    assert scores[(ids["cat-mini"], "classification")] == 1.0
    assert scores[(ids["cat-big"], "extraction")] == 1.0
    assert scores[(ids["cat-mini"], "extraction")] == 0.0
    assert ActivityEvent.objects.filter(action="eval_run.record").exists()


def test_classification_goes_to_the_cheap_model_and_extraction_to_the_big_one(
    gateway: Any, evaluated: str
) -> None:
    cheap = _ask(
        gateway, evaluated, "hello", extra_headers={"x-gateway-task-category": "classification"}
    )
    big = _ask(
        gateway, evaluated, "hello", extra_body={"metadata": {"task_category": "extraction"}}
    )

    assert cheap.headers["x-gateway-deployment"] == "cat-mini"
    assert big.headers["x-gateway-deployment"] == "cat-big"
    record = wait_for_record(big.headers["x-request-id"])
    assert record.routing["strategy"] == "category"
    assert record.routing["category"] == "extraction"
    assert "cheapest first: cat-big (score 1.00" in record.routing["reason"]
    assert "from the metadata" in record.routing["reason"]


def test_a_request_without_a_category_is_classified_by_the_rules(
    gateway: Any, evaluated: str
) -> None:
    ruled = _ask(gateway, evaluated, "Please classify the sentiment of this review: superb!")
    unmatched = _ask(gateway, evaluated, "Good morning")

    assert ruled.headers["x-gateway-deployment"] == "cat-mini"
    assert wait_for_record(ruled.headers["x-request-id"]).routing["category"] == "classification"
    # No category: the route's own order, and the record says so.
    assert unmatched.headers["x-gateway-deployment"] == "cat-big"
    record = wait_for_record(unmatched.headers["x-request-id"])
    assert record.routing["category"] is None
    assert "no task category named or matched" in record.routing["reason"]


def test_a_dry_run_says_where_a_category_would_go(gateway: Any, evaluated: str) -> None:
    answer = httpx.post(
        gateway.api_url + "/chat/completions",
        headers={
            "authorization": f"Bearer {evaluated}",
            "x-gateway-dry-run": "1",
            "x-gateway-task-category": "classification",
        },
        json={"model": ROUTE, "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    ).json()

    assert answer["deployments"] == ["cat-mini", "cat-big"]
    assert "task category 'classification'" in answer["routing"]


def test_an_unknown_category_is_a_clear_400(gateway: Any, evaluated: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        _ask(gateway, evaluated, "hi", extra_headers={"x-gateway-task-category": "poetry"})

    error = refused.value.body
    assert refused.value.code == "unknown_task_category"
    assert "Unknown task category 'poetry'" in error["message"]
    assert "classification" in error["message"]


def test_a_strict_category_that_no_deployment_meets_is_refused_not_downgraded(
    gateway: Any, evaluated: str
) -> None:
    with pytest.raises(openai.InternalServerError) as refused:
        _ask(gateway, evaluated, "hi", extra_headers={"x-gateway-task-category": "legal-review"})

    assert refused.value.status_code == 503
    assert refused.value.code == "quality_threshold_unmet"
    record = wait_for_record(refused.value.response.headers["x-request-id"])
    assert record.attempts == []  # nothing was sent to any provider


def test_run_evals_refuses_unknown_candidates_and_broken_files(
    evaluated: str, tmp_path: Path
) -> None:
    with pytest.raises(CommandError, match="no active deployment 'nope'"):
        call_command("run_evals", str(DEMO_SET), "--deployment", "nope")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"category": "x", "prompt": "p"}\n')
    with pytest.raises(CommandError, match="line 1: 'expected'"):
        call_command("run_evals", str(broken), "--deployment", "cat-big")
    before = EvalScore.objects.count()
    call_command("run_evals", str(DEMO_SET), "--route", ROUTE, "--dry-run", stdout=io.StringIO())
    assert EvalScore.objects.count() == before
