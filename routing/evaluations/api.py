"""Task categories and their evaluation scores in the management API (platform keys only).

Categories are shared by every tenant, like routes. Scores are written by `manage.py run_evals`;
the API reads them.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.pagination import paginate
from pydantic import ConfigDict

from gateway_site.api.common import one_or_404, platform_scope, put_precondition
from gateway_site.api.errors import invalid
from gateway_site.bounds import StorableInput
from routing.evaluations import selectors, services
from routing.evaluations.models import TaskCategory
from routing.evaluations.selectors import latest_scores

router = Router(tags=["platform"])


class TaskCategoryIn(Schema, StorableInput):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(default="", max_length=300)
    threshold: float = Field(ge=0, le=1, description="The lowest score (0..1) to be chosen first.")
    strict: bool = Field(default=False, description="Never fall back below the threshold.")
    pattern: str = Field(default="", max_length=500, description="Rule on the last user message.")
    priority: int = Field(default=100, ge=0, le=32767)


class TaskCategoryOut(Schema):
    name: str
    description: str
    threshold: float
    strict: bool
    pattern: str
    priority: int


class ScoreOut(Schema):
    deployment: str
    score: float
    samples: int
    passed: int
    errors: int
    measured_at: datetime
    eval_set: str
    eval_set_sha256: str


@router.get(
    "/task-categories", response=list[TaskCategoryOut], summary="List task categories (platform)"
)
@paginate
def category_list(request: HttpRequest) -> QuerySet[TaskCategory]:
    platform_scope(request)
    return selectors.categories_all()


@router.put(
    "/task-categories/{name}",
    response=TaskCategoryOut,
    summary="Create or replace a task category (platform)",
)
def category_put(request: HttpRequest, name: str, payload: TaskCategoryIn) -> TaskCategory:
    scope = platform_scope(request)
    put_precondition(
        request, selectors.categories_all().filter(name=name), f"Task category '{name}'"
    )
    try:
        return services.category_upsert(name=name, **payload.model_dump(), actor=scope.actor)
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        raise invalid(field, messages[0]) from None


@router.get(
    "/task-categories/{name}/scores",
    response=list[ScoreOut],
    summary="The latest evaluation score of each deployment for a task category (platform)",
)
def category_scores(request: HttpRequest, name: str) -> list[ScoreOut]:
    platform_scope(request)
    one_or_404(selectors.categories_all().filter(name=name), f"Task category '{name}'")
    rows = sorted(latest_scores(category=name).values(), key=lambda row: -row.score)
    return [
        ScoreOut(
            deployment=row.deployment.name,
            score=row.score,
            samples=row.samples,
            passed=row.passed,
            errors=row.errors,
            measured_at=row.measured_at,
            eval_set=row.run.eval_set,
            eval_set_sha256=row.run.eval_set_sha256,
        )
        for row in rows
    ]
