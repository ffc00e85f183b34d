"""The routing quality table of the console: scores, thresholds, and where each category goes."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from routing.core.categories import NoQualifyingDeployment, by_category, price_key
from routing.core.strategy import CATEGORY
from routing.evaluations.models import EvalRun, TaskCategory
from routing.evaluations.selectors import categories, latest_scores
from routing.selectors import models_available
from routing.table import load_routing_table
from tenants.models import Tenant


@dataclass(frozen=True, slots=True)
class ScoreCell:
    score: float | None
    samples: int = 0
    passed: int = 0
    meets: bool = False


@dataclass(frozen=True, slots=True)
class DeploymentRow:
    name: str
    upstream_model: str
    price_per_mtok: Decimal  # input + output: what "cheapest" compares
    cells: list[ScoreCell]


@dataclass(frozen=True, slots=True)
class CategoryChoice:
    route: str
    category: str
    first: str  # the deployment tried first, or "" when the request would be refused
    reason: str


@dataclass(frozen=True, slots=True)
class QualityTable:
    categories: list[TaskCategory]
    rows: list[DeploymentRow]
    choices: list[CategoryChoice]
    runs: list[EvalRun]


def quality_table(*, tenant: Tenant) -> QualityTable:
    """Scores of the deployments this tenant can reach, and where each category goes now."""
    table = load_routing_table()
    allowed = set(models_available(tenant=tenant))
    reachable = [r for name, r in table.models.items() if name in allowed]
    targets = {t.deployment_id: t for r in reachable for t in r.targets}
    known = categories()
    scores = latest_scores(targets)
    rows = []
    for target in sorted(targets.values(), key=lambda t: (price_key(t), t.deployment_name)):
        cells = []
        for category in known:
            row = scores.get((target.deployment_id, category.name))
            cells.append(
                ScoreCell(None)
                if row is None
                else ScoreCell(row.score, row.samples, row.passed, row.score >= category.threshold)
            )
        rows.append(
            DeploymentRow(target.deployment_name, target.upstream_model, price_key(target), cells)
        )
    choices = []
    for resolved in reachable:
        if not resolved.route_alias or resolved.plan.strategy != CATEGORY:
            continue
        for policy in table.categories.values():
            try:
                plan, reason = by_category(resolved.plan, policy, table.scores)
            except NoQualifyingDeployment as refusal:
                choices.append(
                    CategoryChoice(
                        resolved.route_alias,
                        policy.name,
                        "",
                        f"refused (strict); best: {refusal.best}",
                    )
                )
                continue
            choices.append(
                CategoryChoice(
                    resolved.route_alias, policy.name, plan.targets[0].deployment_name, reason
                )
            )
    runs = list(EvalRun.objects.order_by("-started_at")[:5])
    return QualityTable(known, rows, choices, runs)
