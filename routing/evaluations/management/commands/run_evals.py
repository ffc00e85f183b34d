"""`manage.py run_evals SET.jsonl --route ALIAS | --deployment NAME ...`: score deployments."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit.activity.services import Actor
from routing.core.types import Target
from routing.evaluations.evalset import EvalSetError, load_eval_set
from routing.evaluations.runner import run_eval_set
from routing.evaluations.services import eval_run_record
from routing.table import load_routing_table


class Command(BaseCommand):
    help = (
        "Run an evaluation set (JSONL of prompts and expected answers) against candidate "
        "deployments, straight to their providers, and store each deployment's score per task "
        "category. Routes with the category strategy use the new scores within a minute."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("eval_set", type=Path, help="the JSONL file")
        parser.add_argument(
            "--route", action="append", default=[], help="every deployment of this route"
        )
        parser.add_argument(
            "--deployment", action="append", default=[], help="this deployment (repeatable)"
        )
        parser.add_argument("--concurrency", type=int, default=4)
        parser.add_argument("--max-tokens", type=int, default=256)
        parser.add_argument(
            "--dry-run", action="store_true", help="print the scores, store nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["eval_set"]
        try:
            eval_set = load_eval_set(path)
        except FileNotFoundError:
            raise CommandError(f"{path}: no such file") from None
        except (EvalSetError, UnicodeDecodeError) as exc:
            raise CommandError(f"{path}: {exc}") from None
        targets = self._candidates(options["route"], options["deployment"])
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        self.stdout.write(
            f"{len(eval_set.items)} items in {len(eval_set.categories)} categories "
            f"({', '.join(eval_set.categories)}) x {len(targets)} deployments…"
        )
        started = timezone.now()
        outcome = asyncio.run(
            run_eval_set(
                eval_set,
                targets,
                concurrency=options["concurrency"],
                max_tokens=options["max_tokens"],
            )
        )
        finished = timezone.now()
        for result in sorted(outcome.results, key=lambda r: (r.category, -r.score)):
            errors = f", {result.errors} unanswered" if result.errors else ""
            self.stdout.write(
                f"  {result.category:<20} {result.deployment:<32} {result.score:5.2f} "
                f"({result.passed}/{result.samples}{errors})"
            )
            for failure in result.failures:
                self.stdout.write(f"      {failure}")
        self.stdout.write(f"Cost of the run: ${outcome.cost_usd:.6f}")
        if options["dry_run"]:
            self.stdout.write("Dry run: nothing stored.")
            return
        run = eval_run_record(
            eval_set=eval_set,
            results=outcome.results,
            started_at=started,
            finished_at=finished,
            actor=Actor("command", "manage.py run_evals"),
        )
        self.stdout.write(
            self.style.SUCCESS(f"Stored run {run.pk}: {len(outcome.results)} scores.")
        )

    def _candidates(self, routes: list[str], names: list[str]) -> list[Target]:
        if not routes and not names:
            raise CommandError("name the candidates: --route ALIAS and/or --deployment NAME")
        table = load_routing_table()
        chosen: dict[int, Target] = {}
        for alias in routes:
            resolved = table.resolve(alias)
            if resolved is None or not resolved.route_alias:
                raise CommandError(f"no active route {alias!r}")
            chosen.update((t.deployment_id, t) for t in resolved.targets)
        for name in names:
            resolved = table.resolve(name)
            own = [t for t in resolved.targets if t.deployment_name == name] if resolved else []
            if not own:
                # A route alias may hide a deployment of the same name: look for it in any plan.
                own = [
                    t for r in table.models.values() for t in r.targets if t.deployment_name == name
                ][:1]
            if not own:
                raise CommandError(f"no active deployment {name!r}")
            chosen[own[0].deployment_id] = own[0]
        return list(chosen.values())
