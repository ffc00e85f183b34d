"""Reading categories and the latest evaluation scores."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import OuterRef, QuerySet, Subquery

from routing.evaluations.models import EvalScore, TaskCategory


def latest_scores(
    deployment_ids: Iterable[int] | None = None, *, category: str | None = None
) -> dict[tuple[int, str], EvalScore]:
    """Each (deployment, category)'s most recent score; older runs are never read."""
    newest = EvalScore.objects.filter(
        deployment_id=OuterRef("deployment_id"), category=OuterRef("category")
    ).order_by("-measured_at", "-id")
    rows = EvalScore.objects.filter(id=Subquery(newest.values("id")[:1]))
    if deployment_ids is not None:
        rows = rows.filter(deployment_id__in=list(deployment_ids))
    if category is not None:
        rows = rows.filter(category=category)
    return {
        (row.deployment_id, row.category): row for row in rows.select_related("run", "deployment")
    }


def categories_all() -> QuerySet[TaskCategory]:
    return TaskCategory.objects.order_by("priority", "name")


def categories() -> list[TaskCategory]:
    return list(categories_all())


def category_get(*, name: str) -> TaskCategory | None:
    return TaskCategory.objects.filter(name=name).first()
