"""Reading categories and the latest evaluation scores."""

from __future__ import annotations

from collections.abc import Iterable

from evaluations.models import EvalScore, TaskCategory


def latest_scores(deployment_ids: Iterable[int] | None = None) -> dict[tuple[int, str], EvalScore]:
    """Each (deployment, category)'s most recent score."""
    rows = EvalScore.objects.order_by("deployment_id", "category", "-measured_at", "-id")
    if deployment_ids is not None:
        rows = rows.filter(deployment_id__in=list(deployment_ids))
    latest: dict[tuple[int, str], EvalScore] = {}
    for row in rows.select_related("run", "deployment"):
        latest.setdefault((row.deployment_id, row.category), row)
    return latest


def categories() -> list[TaskCategory]:
    return list(TaskCategory.objects.order_by("priority", "name"))
