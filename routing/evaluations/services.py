"""Writing task categories and evaluation results (with the activity log)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.activity.services import SYSTEM, Actor, activity_record
from routing.evaluations.evalset import EvalSet
from routing.evaluations.models import CATEGORY_NAME, EvalRun, EvalScore, TaskCategory
from routing.evaluations.scoring import CategoryResult


class CategoryPrecondition(Exception):
    def __init__(self, name: str, *, exists: bool) -> None:
        state = "already exists: edit it instead" if exists else "does not exist: create it"
        super().__init__(f"Task category '{name}' {state} (nothing was changed).")
        self.status = 409 if exists else 412


def category_upsert(
    *,
    name: str,
    threshold: float,
    description: str = "",
    strict: bool = False,
    pattern: str = "",
    priority: int = 100,
    actor: Actor = SYSTEM,
    expect: str = "any",
) -> TaskCategory:
    """Create or update a category; `expect="new"` refuses an existing name and
    `expect="existing"` a missing one (`CategoryPrecondition`, nothing changed)."""
    if not re.fullmatch(CATEGORY_NAME, name):
        raise ValidationError(
            {"name": f"'{name}' is not a category name (lowercase letters, digits, '-', '_')."}
        )
    if not 0 <= threshold <= 1:
        raise ValidationError({"threshold": "A threshold is a score between 0 and 1."})
    if pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValidationError({"pattern": f"Not a valid regular expression: {exc}."}) from None
    with transaction.atomic():
        exists = TaskCategory.objects.select_for_update().filter(name=name).exists()
        if (expect == "new" and exists) or (expect == "existing" and not exists):
            raise CategoryPrecondition(name, exists=exists)
        category, created = TaskCategory.objects.update_or_create(
            name=name,
            defaults={
                "threshold": threshold,
                "description": description,
                "strict": strict,
                "pattern": pattern,
                "priority": priority,
            },
        )
        activity_record(
            actor=actor,
            action="task_category.create" if created else "task_category.update",
            target=category,
            tenant_id=None,
            details={"threshold": threshold, "strict": strict, "pattern": pattern},
        )
    return category


@transaction.atomic
def eval_run_record(
    *,
    eval_set: EvalSet,
    results: Sequence[CategoryResult],
    started_at: datetime,
    finished_at: datetime,
    actor: Actor = SYSTEM,
) -> EvalRun:
    """Store a run's scores: from now on they are each deployment's latest for their category."""
    run = EvalRun.objects.create(
        eval_set=eval_set.name[:300],
        eval_set_sha256=eval_set.sha256,
        items=len(eval_set.items),
        started_at=started_at,
        finished_at=finished_at,
        actor=actor.label[:200],
    )
    EvalScore.objects.bulk_create(
        EvalScore(
            run=run,
            deployment_id=result.deployment_id,
            category=result.category,
            score=result.score,
            samples=result.samples,
            passed=result.passed,
            errors=result.errors,
            measured_at=finished_at,
        )
        for result in results
        if result.samples
    )
    activity_record(
        actor=actor,
        action="eval_run.record",
        target=run,
        tenant_id=None,
        details={
            "sha256": eval_set.sha256,
            "scores": {f"{r.deployment}/{r.category}": round(r.score, 4) for r in results},
        },
    )
    return run
